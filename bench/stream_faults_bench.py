"""Stream intake under faults: a consumer SIGKILLed every few seconds through a long run, and
the broker stopped for a while mid-run; each time, is every event stored exactly once?

* **kills** (each broker in ``--brokers``, at its standard port): ``--events`` feedback events
  (100,000 by default) are published, then ``learnloop consume`` processes are started one
  after another, each SIGKILLed ``--kill-every`` seconds after it starts, until every event is
  stored (the last one is stopped with SIGTERM). Printed: kills, seconds, events stored, and
  the distinct event ids stored (both must equal the events published).
* **outage** (NATS, on a ``nats-server`` this script starts on a free port with its own
  JetStream store): ``--outage-events`` events published, a consumer started, and once it has
  stored some, the server is stopped (SIGTERM) for ``--outage`` seconds (10 by default) and
  started again on the same store. Printed: events stored before the stop, during the
  outage, after; the reconnects the consumer logged; whether every event was stored once.

Run: .venv/bin/python bench/stream_faults_bench.py [--brokers nats rabbitmq redis] [--events 100000]
SQLite in a temporary home. Each consumer is a real ``learnloop consume`` process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from learnloop.config import Settings
from learnloop.models import NewModel
from learnloop.services import Services, build_services
from stream_brokers import Broker, OwnNatsServer


def events(n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "id": str(uuid.uuid4()),
                "type": "feedback",
                "model": "npc",
                "event": {"prediction_id": str(uuid.uuid4()), "rating": 1 + i % 5},
            }
        )
        for i in range(n)
    ]


def make_home(root: Path) -> Path:
    home = root / "home"
    with closing(build_services(Settings(home=home))) as services:
        services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="bench")
    return home


def stored(services: Services) -> int:
    return int(services.registry.overview("npc").feedback_counts.get("rating", 0))


def distinct_ids(services: Services, limit: int) -> int:
    return len({f.feedback.client_id for f in services.feedback.recent("npc", limit)})


def consumer(home: Path, broker: Broker, log: Path, batch: int, ack_wait: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "learnloop", "consume", "--home", str(home), "--from", broker.url]
    argv += ["--subject", broker.name, "--group", "bench", "--consumer", "c1", "--batch", str(batch)]
    argv += ["--ack-wait", str(ack_wait)]
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kills(kind: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    broker = Broker.fresh(kind)
    try:
        home = make_home(root / kind)
        published = events(args.events)
        started = time.perf_counter()
        broker.publish(published)
        publish_s = time.perf_counter() - started
        log = root / kind / "consumer.log"
        killed = 0
        with closing(build_services(Settings(home=home))) as services:
            started = time.perf_counter()
            while stored(services) < args.events:
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"{kind}: {stored(services)} of {args.events} stored after {args.timeout} s")
                process = consumer(home, broker, log, args.batch, args.ack_wait)
                if wait(lambda: stored(services) >= args.events, args.kill_every):
                    process.send_signal(signal.SIGTERM)
                    process.wait(30)
                    break
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                killed += 1
            seconds = time.perf_counter() - started
            return {
                "broker": kind,
                "events": args.events,
                "publish_s": round(publish_s, 1),
                "kills": killed,
                "seconds": round(seconds, 1),
                "stored": stored(services),
                "distinct_ids": distinct_ids(services, args.events + 1000),
            }
    finally:
        broker.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def outage(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    server = OwnNatsServer(root / "jetstream", free_port())
    if server.binary is None:
        raise SystemExit("the outage run needs a nats-server binary (apt-get install nats-server)")
    server.start()
    running: subprocess.Popen[bytes] | None = None
    try:
        broker = Broker("nats", f"bench.{uuid.uuid4().hex[:8]}.>", endpoint=server.url)
        home = make_home(root / "outage")
        broker.publish(events(args.outage_events))
        log = root / "outage" / "consumer.log"
        with closing(build_services(Settings(home=home))) as services:
            running = consumer(home, broker, log, args.batch, args.ack_wait)
            wait(lambda: stored(services) >= args.outage_events // 10, 120)
            server.stop()
            at_stop = stored(services)
            time.sleep(args.outage)
            during = stored(services) - at_stop
            server.start()
            restarted = time.perf_counter()
            done = wait(lambda: stored(services) >= args.outage_events, args.timeout)
            running.send_signal(signal.SIGTERM)
            running.wait(30)
            return {
                "events": args.outage_events,
                "outage_s": args.outage,
                "stored_before_stop": at_stop,
                "stored_during_outage": during,
                "all_stored_s_after_restart": round(time.perf_counter() - restarted, 1) if done else None,
                "stored": stored(services),
                "distinct_ids": distinct_ids(services, args.outage_events + 1000),
                "reconnect_lines_logged": log.read_text().count("reconnect"),
            }
    finally:
        if running is not None and running.poll() is None:
            running.kill()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", nargs="*", default=["nats", "rabbitmq", "redis"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds a consumer lives before its SIGKILL")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--ack-wait", type=float, default=2.0)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the NATS server is down")
    parser.add_argument("--outage-events", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"load average before: {os.getloadavg()}", flush=True)
    results: dict[str, Any] = {"kills": [], "outage": None}
    with tempfile.TemporaryDirectory(prefix="llstreamfaults-") as tmp:
        root = Path(tmp)
        for kind in args.brokers:
            figures = kills(kind, args, root)
            print(json.dumps(figures), flush=True)
            results["kills"].append(figures)
        if args.outage > 0:
            results["outage"] = outage(args, root)
            print(json.dumps(results["outage"]), flush=True)
    results["load_after"] = os.getloadavg()
    print(f"load average after: {results['load_after']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
