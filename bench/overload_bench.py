"""Overload benchmark: does a server at 256 and 1,024 connections push back instead of queueing?

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/overload_bench.py                       # SQLite, 256 and 1,024 connections
    .venv/bin/python bench/overload_bench.py --baseline            # also without admission control
    .venv/bin/python bench/overload_bench.py --route feedback --connections 1024

One ``learnloop serve`` (as a user starts it: default limits) is driven by a closed-loop load
generator in its own process (``overload_client.py``: N keep-alive connections, each sending
its next request as soon as the previous one is answered, the way ``wrk`` does, but timing
each answer by its status). A third process opens a new connection every 50 ms for
``GET /health``, as a liveness probe would. Printed per run: requests served (200/201) and
their p50/p99 latency, requests refused (503) and how fast, other answers, and /health's
latency. Targets: at 1,024 connections served p99 < 100 ms, /health never above 100 ms.

Everything runs on 127.0.0.1; on a 2-core machine the server, the load generator and the
probe share the cores (and other work on the machine shares them too): the figures say what
one server process does with about one core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from serve_bench import (
    DATA,
    MODEL,
    BenchError,
    Resources,
    Server,
    free_port,
    log,
    read_sentences,
    run_cli,
    serve_argv,
    signals_as_exceptions,
)

HERE = Path(__file__).resolve().parent
SERVED_P99_TARGET_MS = 100.0
HEALTH_MAX_TARGET_MS = 100.0

# The same app without admission control (every bound out of reach), for comparison.
UNBOUNDED_RUNNER = """\
import sys
from dataclasses import replace
from pathlib import Path

import uvicorn

from learnloop.app import create_app
from learnloop.cli.common import settings_for
from learnloop.config import Admission, RouteLimit

home, database_url, port, loop = sys.argv[1:5]
settings = settings_for(Path(home), database_url or None, api_key=None)
huge = RouteLimit(concurrency=1_000_000, queue=1_000_000, queue_seconds=60)
admission = Admission(predict=huge, generate=huge, feedback=huge, admin=huge)
settings = replace(settings, limits=replace(settings.limits, admission=admission))
app = create_app(settings, start_worker=True, freeze_gc=True)
uvicorn.run(app, host="127.0.0.1", port=int(port), loop=loop, http="httptools", log_level="warning", access_log=False)
"""


def request_bodies(route: str) -> tuple[str, list[str]]:
    texts = [t for name in ("amazon_cells", "imdb") for t, _ in read_sentences(name)]
    if route == "predict":
        return f"/v1/models/{MODEL}/predict", [json.dumps({"text": t}) for t in texts]
    labels = ["0", "1"]
    return f"/v1/models/{MODEL}/feedback", [
        json.dumps({"text": t, "label": labels[i % 2]}) for i, t in enumerate(texts)
    ]


def drive(
    port: int, route: str, connections: int, seconds: float, root: Path, honor: bool, probe_port: int | None = None
) -> dict[str, Any]:
    """One run: the load generator and the /health probe (on ``probe_port`` when given), each in
    its own process."""
    path, bodies = request_bodies(route)
    bodies_file = root / f"{route}-bodies.json"
    bodies_file.write_text(json.dumps(bodies))
    client = [sys.executable, str(HERE / "overload_client.py")]
    common = ["--port", str(port), "--seconds", str(seconds)]
    probe_common = ["--port", str(probe_port or port), "--seconds", str(seconds)]
    probe = subprocess.Popen(
        [*client, "probe", *probe_common, "--path", "/health"], stdout=subprocess.PIPE, text=True, cwd=HERE
    )
    try:
        load = subprocess.run(
            [*client, "load", *common, "--path", path, "--bodies", str(bodies_file), "--connections", str(connections)]
            + (["--honor-retry-after"] if honor else []),
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            cwd=HERE,
        )
        probe_out, _ = probe.communicate(timeout=seconds + 60)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait(10)
    if load.returncode != 0:
        raise BenchError(f"load generator failed ({load.returncode}):\n{load.stderr[-3000:]}")
    return {"load": json.loads(load.stdout), "health": json.loads(probe_out)}


def fmt(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("n"):
        return "-"
    rate = f"{stats['n']:>7} ({stats['per_s']:>6.0f}/s)"
    return f"{rate}  p50 {stats['p50_ms']:6.1f}  p99 {stats['p99_ms']:7.1f}  max {stats['max_ms']:7.1f}"


def report(runs: list[dict[str, Any]]) -> str:
    lines = ["", "overload (latencies in ms, measured by the client)", ""]
    for run in runs:
        load, health = run["result"]["load"], run["result"]["health"]
        served = load["by_status"].get("201" if run["route"] == "feedback" else "200")
        refused = load["by_status"].get("503")
        others = {k: v["n"] for k, v in load["by_status"].items() if k not in ("200", "201", "503")}
        title = f"{run['server']} ({run['loop']} loop) {run['route']} c={run['connections']}, clients {run['clients']}"
        lines.append(title)
        lines.append(f"   served   {fmt(served)}")
        lines.append(f"   refused  {fmt(refused)}")
        lines.append(
            f"   other    {others or '-'}; connection errors {load['errors']}; unanswered {load['unanswered']}"
        )
        where = run.get("probe", "API port")
        lines.append(
            f"   /health ({where})  {fmt(health)}; above 100 ms: {health['above_100ms']}; failed: {health['errors']}"
        )
        if run["server"] == "guarded" and run["connections"] >= 1024 and served:
            ok = served["p99_ms"] < SERVED_P99_TARGET_MS and health["max_ms"] < HEALTH_MAX_TARGET_MS
            lines.append(f"   target (served p99 < 100 ms, /health max < 100 ms): {'met' if ok else 'NOT met'}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="256,1024")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--route", choices=("predict", "feedback"), default="predict")
    parser.add_argument("--baseline", action="store_true", help="also run a server without admission control")
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="asyncio",
        help="the server's event loop (learnloop serve's default: asyncio)",
    )
    parser.add_argument(
        "--probe-port",
        action="store_true",
        help="start the server with --probe-port and send the /health probe there instead of the API port",
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL server URL (a fresh database is made)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "overload.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.connections.split(",")]
    runs: list[dict[str, Any]] = []
    with signals_as_exceptions():
        res = Resources(args.database_url or None)
        try:
            home = res.root / "home"
            home.mkdir()
            url = res.database_url(home)
            data = DATA / "yelp_labelled.txt"
            init = ["init", "--home", str(home), "--database-url", url, "--model", MODEL, "--data", str(data)]
            run_cli(
                [*init, "--no-header", "--text-column", "0", "--label-column", "1", "--retrain-every", "1000000000"]
            )
            kinds = ["guarded", "unbounded"] if args.baseline else ["guarded"]
            for kind in kinds:
                port = free_port()
                probe_port = free_port() if args.probe_port and kind == "guarded" else None
                if kind == "guarded":
                    argv_ = serve_argv(home, url, port, args.loop)
                    if probe_port is not None:
                        argv_ += ["--probe-port", str(probe_port)]
                else:
                    runner = res.root / "unbounded.py"
                    runner.write_text(UNBOUNDED_RUNNER)
                    argv_ = [sys.executable, str(runner), str(home), url, str(port), args.loop]
                server = Server(kind, argv_, port, res.root / f"{kind}.log")
                res.servers.append(server)
                server.start()
                drive(port, args.route, 8, 2.0, res.root, False)  # warm-up
                for c in levels:
                    for honor in (False, True):
                        clients = "honoring Retry-After" if honor else "resending at once"
                        log(f"{kind}: {args.route} at {c} connections, clients {clients}, {args.seconds:.0f} s")
                        result = drive(port, args.route, c, args.seconds, res.root, honor, probe_port)
                        runs.append(
                            {
                                "server": kind,
                                "loop": args.loop,
                                "route": args.route,
                                "connections": c,
                                "clients": clients,
                                "probe": "probe port" if probe_port else "API port",
                                "result": result,
                            }
                        )
                server.stop()
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            print(f"bench interrupted ({exc or 'Ctrl-C'}); cleaned up", file=sys.stderr)
            return 130
        finally:
            res.close()
    table = report(runs)
    print(table, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "table": table, "at": time.time()}, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
