"""``learnloop consume``: the intake consumer, a process role of its own."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import Annotated

import typer

from learnloop.cli.common import ArtifactOpt, DbOpt, HomeOpt, console, open_services, settings_for


def consume(
    home: HomeOpt,
    source_url: Annotated[
        str,
        typer.Option(
            "--from",
            help="The broker: nats://HOST:4222, amqp://USER:PASS@HOST:5672/, redis://HOST:6379/0, kafka://HOST:9092[,HOST:9092].",
        ),
    ],
    name: Annotated[
        str,
        typer.Option(
            "--subject",
            "--queue",
            "--topic",
            help="NATS subject (wildcards allowed), RabbitMQ queue, Redis stream or Kafka topic.",
        ),
    ],
    group: Annotated[
        str, typer.Option("--group", help="NATS durable consumer, Redis or Kafka consumer group (RabbitMQ: unused).")
    ] = "learnloop",
    consumer: Annotated[
        str | None,
        typer.Option(
            "--consumer", help="This consumer's name in a Redis group, its client id on Kafka (default: the host name)."
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=10_000, help="Events stored per commit, at most.")
    ] = 1_000,
    ack_wait: Annotated[
        float,
        typer.Option(
            "--ack-wait",
            min=1,
            help=(
                "Seconds before an unacknowledged batch goes to another consumer (NATS, Redis; Kafka: the"
                " session timeout: 6 or more on Apache Kafka; RabbitMQ: at once)."
            ),
        ),
    ] = 30.0,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
) -> None:
    """Store prediction, feedback and generation events from a stream (at least once, acknowledged
    after commit, redeliveries change nothing, refused events to the dead letters)."""
    from learnloop.streams import open_source, stream_consumer

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_for(home, database_url, artifact_url=artifact_url, prediction_log="durable")
    with open_services(settings, create=True) as services:
        source = open_source(source_url, name, group=group, consumer=consumer, batch=batch, ack_wait=ack_wait)
        services.start(worker=False)
        runner = stream_consumer(services, source, batch=batch)
        gc.collect()
        gc.freeze()  # start-up's objects out of the collector's full passes: ~10 us less CPU an event

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, runner.stop)
            console.print(f"consuming {source.description}; Ctrl-C to stop")
            stats = await runner.run()
            console.print(f"stopped: {stats.stored} stored, {stats.dead_lettered} dead-lettered")

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
