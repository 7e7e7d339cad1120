"""The intake consumer: prediction, feedback and generation events from NATS JetStream,
RabbitMQ, Redis Streams and Kafka into learnloop's store (``learnloop consume``)."""

from learnloop.streams.consumer import ConsumerStats, Delivery, Source, StreamConsumer
from learnloop.streams.events import stream_event_schema
from learnloop.streams.intake import Refusal, StreamIntake
from learnloop.streams.sources import open_source, stream_consumer, stream_intake

__all__ = [
    "ConsumerStats",
    "Delivery",
    "Refusal",
    "Source",
    "StreamConsumer",
    "StreamIntake",
    "open_source",
    "stream_consumer",
    "stream_event_schema",
    "stream_intake",
]
