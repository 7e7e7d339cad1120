"""A broker's ``Source`` by the URL's scheme, and the intake consumer a process runs."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from learnloop.errors import MissingExtraError, ValidationError
from learnloop.services import Services
from learnloop.streams.consumer import Source, StreamConsumer
from learnloop.streams.intake import StreamIntake

SCHEMES = {
    "nats": "NATS JetStream",
    "amqp": "RabbitMQ",
    "amqps": "RabbitMQ",
    "redis": "Redis",
    "rediss": "Redis",
    "kafka": "Kafka",
}
_CLIENTS = {
    "nats": "nats",
    "amqp": "aio_pika",
    "amqps": "aio_pika",
    "redis": "redis",
    "rediss": "redis",
    "kafka": "aiokafka",
}


def open_source(
    url: str,
    name: str,
    *,
    group: str = "learnloop",
    consumer: str | None = None,
    batch: int = 1_000,
    ack_wait: float = 30.0,
) -> Source:
    """The source for ``url`` (``nats://``, ``amqp://``, ``redis://``, ``kafka://``): ``name`` is
    the NATS subject, the RabbitMQ queue, the Redis stream or the Kafka topic; ``group`` the
    NATS durable consumer, the Redis or the Kafka consumer group; ``consumer`` this consumer's
    name in a Redis group (Kafka: its client id); ``ack_wait`` the seconds before what a
    consumer was given and never acknowledged goes to another (NATS: redelivered; Redis:
    claimed from a consumer gone for that long; Kafka: the group's session timeout)."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValidationError(f"no stream source for {scheme or url!r}: use one of {known}", field="from")
    _require(_CLIENTS[scheme])
    if scheme == "nats":
        from learnloop.streams.nats import NatsSource

        return NatsSource(url, name, group, batch=batch, ack_wait=ack_wait)
    if scheme == "kafka":
        from learnloop.streams.kafka import KafkaSource

        return KafkaSource(url, name, group, consumer, batch=batch, ack_wait=ack_wait)
    if scheme.startswith("amqp"):
        from learnloop.streams.rabbitmq import RabbitSource

        return RabbitSource(url, name, batch=batch)
    from learnloop.streams.redis import RedisSource

    return RedisSource(url, name, group, consumer or socket.gethostname(), claim_idle=ack_wait)


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"reading streams needs the {module} package: pip install 'learnloop[streams]'", extra="streams"
        )


def stream_intake(services: Services) -> StreamIntake:
    return StreamIntake(
        services.feedback,
        services.predictions,
        services.generations,
        services.ingest,
        max_items=services.settings.limits.max_batch_items,
    )


def stream_consumer(services: Services, source: Source, *, batch: int = 1_000, wait: float = 0.5) -> StreamConsumer:
    return StreamConsumer(source, stream_intake(services), batch=batch, wait=wait)
