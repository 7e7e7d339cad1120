"""Kafka: a consumer group on a topic (aiokafka).

``kafka://HOST:9092[,HOST2:9092]`` names the bootstrap servers. The topic and its dead letters'
topic ``<topic>.dead`` are made if missing (one partition, replicated up to three times as the
cluster allows); a team's own topic keeps its partitions. The group (``group``) shares the
topic's partitions among its consumers; events keyed by user land on one partition, so one
consumer reads them, in order. Offsets are committed by hand (``enable_auto_commit`` off),
after each batch is stored: the next offset of every partition in the batch. A consumer that
dies, or loses its partitions to a rebalance before its commit, leaves them to be read again
from the last committed offset, in order (each event's id makes a second delivery change
nothing); a refused commit (the group moved on) closes the connection and the loop opens it
again. ``ack_wait`` is the group's session timeout: a consumer silent that long loses its
partitions to another (a broker refuses one under its ``group.min.session.timeout.ms``, 6 s on
Apache Kafka by default: the consumer logs the refusal and tries again, with backoff). Dead letters are
produced (``acks="all"``) to ``<topic>.dead`` with the message's key and the headers
``learnloop-error-code``, ``learnloop-error-reason`` and ``learnloop-source``
(``topic/partition/offset``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from learnloop.streams.consumer import Delivery
from learnloop.streams.intake import Refusal


def bootstrap_servers(url: str) -> str:
    """``kafka://a:9092,b:9092`` -> ``a:9092,b:9092`` (the port defaults to 9092)."""
    hosts = [h.strip() for h in urlsplit(url).netloc.split(",") if h.strip()]
    return ",".join(h if ":" in h.rsplit("]", 1)[-1] else f"{h}:9092" for h in hosts) or "127.0.0.1:9092"


class KafkaSource:
    def __init__(
        self, url: str, topic: str, group: str, consumer: str | None, *, batch: int, ack_wait: float = 30.0
    ) -> None:
        self.servers = bootstrap_servers(url)
        self.topic = topic
        self.group = group
        self.client_id = consumer or "learnloop"
        self.batch = batch
        self.session_ms = int(ack_wait * 1000)
        self.dead_topic = f"{topic}.dead"
        self.description = f"Kafka {self.servers} topic {topic} (group {group})"
        self._consumer: Any = None
        self._producer: Any = None

    async def connect(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        await self._ensure_topics()
        self._producer = AIOKafkaProducer(bootstrap_servers=self.servers, client_id=self.client_id, acks="all")
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.servers,
            group_id=self.group,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch,
            session_timeout_ms=self.session_ms,
            heartbeat_interval_ms=self.session_ms // 3,
        )
        await self._consumer.start()

    async def _ensure_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers, client_id=self.client_id)
        await admin.start()
        try:
            missing = [t for t in (self.topic, self.dead_topic) if t not in set(await admin.list_topics())]
            if missing:
                brokers = len((await admin.describe_cluster()).get("brokers") or [None])
                replicas = max(1, min(3, brokers))
                answer = await admin.create_topics([NewTopic(t, 1, replicas) for t in missing])
                for name, code, *_ in answer.topic_errors:
                    if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (another consumer made it)
                        raise ConnectionError(f"Kafka refused to create topic {name!r} (error code {code})")
        finally:
            await admin.close()

    async def fetch(self, max_items: int, wait: float) -> list[Delivery]:
        if self._consumer is None:
            raise ConnectionError("the Kafka consumer is closed")
        batches = await self._consumer.getmany(timeout_ms=int(wait * 1000), max_records=max_items)
        return [Delivery(r.value or b"", r) for records in batches.values() for r in records]

    async def dead_letter(self, delivery: Delivery, refusal: Refusal) -> None:
        record = delivery.handle
        headers = [
            ("learnloop-error-code", refusal.code.encode()),
            ("learnloop-error-reason", refusal.reason.encode()),
            ("learnloop-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self._producer.send_and_wait(self.dead_topic, delivery.data, key=record.key, headers=headers)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        from aiokafka import TopicPartition

        offsets: dict[Any, int] = {}
        for delivery in deliveries:
            record = delivery.handle
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        if offsets:
            await self._consumer.commit(offsets)

    async def close(self) -> None:
        consumer, producer, self._consumer, self._producer = self._consumer, self._producer, None, None
        for client in (consumer, producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
