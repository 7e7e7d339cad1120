"""Stream intake benchmark: what one intake consumer sustains from each broker into each
database, and how long an event takes from publish to durable (acknowledged after commit).

For every broker (NATS JetStream, RabbitMQ, Redis Streams; Kafka with ``--brokers ... kafka``:
Tansu, the Kafka-compatible broker the tests use, started on a free port) and database
(SQLite, and PostgreSQL when ``--database-url`` names a server):

* **throughput**: ``--events`` feedback events (ratings on predictions, the standalone
  kind the HTTP API takes) are published first, then one consumer (batches of ``--batch``)
  drains them; events/s = events stored / seconds from the first fetch to the last ack.
* **latency**: a publisher thread sends ``--rate`` events/s for ``--seconds`` while the
  consumer runs; each event carries its publish time, and its latency is the time its batch
  was acknowledged (after the commit) minus that. p50 and p99 are printed.

Run: .venv/bin/python bench/stream_bench.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
The brokers must run at their standard ports on 127.0.0.1 (guest/guest for RabbitMQ).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import free_port
from learnloop.config import Settings
from learnloop.models import NewModel
from learnloop.services import Services, build_services
from learnloop.streams import Delivery, stream_consumer
from stream_brokers import Broker, OwnKafkaServer


def event(stamp: bool) -> bytes:
    body: dict[str, Any] = {"prediction_id": str(uuid.uuid4()), "rating": 4}
    if stamp:
        body["metadata"] = {"t": time.time()}
    return orjson.dumps({"id": str(uuid.uuid4()), "type": "feedback", "model": "npc", "event": body})


def fresh_database(server_url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(server_url)
    name = f"llbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname="postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')


def services_for(home: Path, database_url: str | None) -> Services:
    services = build_services(Settings(home=home, database_url=database_url, prediction_log="durable"))
    services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="bench")
    services.start(worker=False)
    return services


def throughput(services: Services, broker: Broker, events: int, batch: int) -> dict[str, float]:
    broker.publish([event(False) for _ in range(events)], [f"u{i % 100}" for i in range(events)])
    consumer = stream_consumer(services, broker.source(batch=batch), batch=batch, wait=1.0)
    started = time.perf_counter()
    stats = asyncio.run(consumer.run(until_idle=True))
    seconds = time.perf_counter() - started - 1.0  # the last, empty fetch waited 1 s
    assert stats.stored == events, stats
    return {"events": events, "seconds": round(seconds, 3), "events_per_s": round(events / seconds)}


def latency(services: Services, broker: Broker, rate: int, seconds: float, batch: int) -> dict[str, float]:
    source = broker.source(batch=batch)
    latencies: list[float] = []
    ack = source.ack

    async def timed_ack(deliveries: Sequence[Delivery]) -> None:
        await ack(deliveries)
        now = time.time()
        latencies.extend(now - orjson.loads(d.data)["event"]["metadata"]["t"] for d in deliveries)

    source.ack = timed_ack  # type: ignore[method-assign]
    total = int(rate * seconds)

    def publish() -> None:
        tick = 0.05
        per_tick = max(1, int(rate * tick))
        sent, start = 0, time.perf_counter()
        while sent < total:
            n = min(per_tick, total - sent)
            broker.publish([event(True) for _ in range(n)], [f"u{(sent + i) % 100}" for i in range(n)])
            sent += n
            time.sleep(max(0.0, start + sent / rate - time.perf_counter()))

    publisher = threading.Thread(target=publish)
    consumer = stream_consumer(services, source, batch=batch, wait=2.0)
    publisher.start()
    stats = asyncio.run(consumer.run(until_idle=True))
    publisher.join()
    assert stats.stored == total, stats
    ms = np.array(latencies) * 1000
    return {
        "latency_rate": rate,
        "latency_events": total,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description="learnloop stream intake benchmark (see the module docstring)")
    p.add_argument("--database-url", default="", help="a PostgreSQL server URL: fresh databases on it (and SQLite)")
    p.add_argument("--brokers", nargs="+", default=["nats", "rabbitmq", "redis"])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument("--rate", type=int, default=2_000, help="latency: events/s published")
    p.add_argument("--seconds", type=float, default=5.0, help="latency: seconds of publishing")
    p.add_argument("--out", type=Path, default=Path("bench/results/stream.json"))
    args = p.parse_args()
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    databases = ["sqlite"] + (["postgresql"] if args.database_url else [])
    kafka = OwnKafkaServer(free_port())
    if "kafka" in args.brokers:
        kafka.start()
    try:
        results = run_all(args, databases, kafka.url)
    finally:
        kafka.stop()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"load_before": load, "results": results}, indent=2) + "\n")


def run_all(args: argparse.Namespace, databases: list[str], kafka_url: str) -> list[dict[str, Any]]:
    results = []
    for database in databases:
        for kind in args.brokers:
            with tempfile.TemporaryDirectory() as tmp:
                url = fresh_database(args.database_url) if database == "postgresql" else None
                services = services_for(Path(tmp) / "home", url)
                broker = Broker.fresh(kind, kafka_url if kind == "kafka" else None)
                try:
                    row = {"database": database, "broker": kind}
                    row.update(throughput(services, broker, args.events, args.batch))
                    row.update(latency(services, broker, args.rate, args.seconds, args.batch))
                finally:
                    broker.cleanup()
                    services.close()
                    if url:
                        drop_database(url)
                print(json.dumps(row))
                results.append(row)
    return results


if __name__ == "__main__":
    main()
