"""CPU per event of one intake consumer: process CPU seconds (the consumer and its writer
thread) / events stored, and where they go (``--profile``: cProfile, top functions).

``--events`` feedback events (ratings on predictions, as ``stream_bench.py`` sends) are
published first; one consumer then drains them in batches of ``--batch`` after ``gc.freeze()``,
as ``learnloop consume`` does. The CPU counted is the drain's only (the publishing is done).

Run: .venv/bin/python bench/stream_cpu_bench.py --broker nats [--database-url postgresql+psycopg://...]
The brokers must run at their standard ports on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_bench import drop_database, event, fresh_database, services_for

from learnloop.streams import stream_consumer
from stream_brokers import Broker


def drain(
    broker_kind: str, database_url: str | None, events: int, batch: int, profile: Path | None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database(database_url) if database_url else None
        services = services_for(Path(tmp) / "home", url)
        broker = Broker.fresh(broker_kind)
        try:
            broker.publish([event(False) for _ in range(events)], [f"u{i % 100}" for i in range(events)])
            consumer = stream_consumer(services, broker.source(batch=batch), batch=batch, wait=1.0)
            gc.collect()
            gc.freeze()
            profiler = cProfile.Profile() if profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            stats = asyncio.run(consumer.run(until_idle=True))
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall - 1.0  # the last fetch waited 1 s
            gc.unfreeze()
            assert stats.stored == events, stats
            if profiler and profile:
                profiler.dump_stats(profile)
                pstats.Stats(str(profile)).sort_stats("tottime").print_stats(35)
        finally:
            broker.cleanup()
            services.close()
            if url:
                drop_database(url)
    return {
        "broker": broker_kind,
        "database": "postgresql" if database_url else "sqlite",
        "events": events,
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
        "events_per_s": round(events / wall),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    p = argparse.ArgumentParser(description="CPU per event of one stream intake consumer (module docstring)")
    p.add_argument("--broker", default="nats", choices=["nats", "rabbitmq", "redis"])
    p.add_argument("--database-url", default="", help="a PostgreSQL server URL: a fresh database on it (else SQLite)")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument("--profile", type=Path, default=None, help="write cProfile stats here and print the top")
    args = p.parse_args()
    print(json.dumps(drain(args.broker, args.database_url or None, args.events, args.batch, args.profile)))


if __name__ == "__main__":
    main()
