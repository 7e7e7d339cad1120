"""RabbitMQ: a durable queue.

The queue and its dead letters' queue ``<queue>.dead`` are declared durable if missing. The
broker pushes up to two batches of unacknowledged messages (``prefetch_count``: the next batch
arrives while one is being stored); a batch is acknowledged at once (``multiple``: its last
delivery tag, so none of the next batch's) after it is stored, and a message never
acknowledged goes back to its place in the queue when the connection drops. Dead letters are published
persistent, with publisher confirms, carrying the headers ``x-learnloop-code`` and
``x-learnloop-reason``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from learnloop.streams.consumer import Delivery
from learnloop.streams.intake import Refusal

LINGER = 0.005  # seconds a batch waits for more messages once one has come


class RabbitSource:
    def __init__(self, url: str, queue: str, *, batch: int) -> None:
        self.url = url
        self.queue = queue
        self.batch = batch
        self.dead_queue = f"{queue}.dead"
        self.description = f"RabbitMQ {url.split('@')[-1]} queue {queue}"
        self._connection: Any = None
        self._channel: Any = None
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()

    async def connect(self) -> None:
        import aio_pika

        self._inbox = asyncio.Queue()
        self._connection = await aio_pika.connect(self.url, timeout=5)
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=2 * self.batch)
        queue = await self._channel.declare_queue(self.queue, durable=True)
        await self._channel.declare_queue(self.dead_queue, durable=True)
        await queue.consume(self._inbox.put)

    async def fetch(self, max_items: int, wait: float) -> list[Delivery]:
        if self._connection is None or self._connection.is_closed:
            raise ConnectionError("the RabbitMQ connection is closed")
        try:
            first = await asyncio.wait_for(self._inbox.get(), wait)
        except TimeoutError:
            return []
        messages = [first]
        while len(messages) < max_items:
            try:
                messages.append(self._inbox.get_nowait())
            except asyncio.QueueEmpty:
                try:
                    messages.append(await asyncio.wait_for(self._inbox.get(), LINGER))
                except TimeoutError:
                    break
        return [Delivery(m.body, m) for m in messages]

    async def dead_letter(self, delivery: Delivery, refusal: Refusal) -> None:
        import aio_pika

        message = aio_pika.Message(
            delivery.data,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"x-learnloop-code": refusal.code, "x-learnloop-reason": refusal.reason},
        )
        await self._channel.default_exchange.publish(message, routing_key=self.dead_queue)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await deliveries[-1].handle.ack(multiple=True)

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await connection.close()
