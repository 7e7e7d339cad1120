"""What auth and rate limiting cost on predict: requests/s of one `learnloop serve` without
keys, with a scoped key, with a bearer JWT (HS256), and with a key under a rate limit (never
reached: the cost of the bucket, not of refusals), in this process and through Redis; then
the CPU time of the rate limiter alone per take (steadier than a whole server's requests/s on
a busy machine).

    .venv/bin/python bench/auth_bench.py [--seconds 5] [--rounds 3] [--connections 32]
                                         [--redis-url redis://127.0.0.1:6379/0]

Every server runs at once on 127.0.0.1 (`--no-worker`, SQLite, the same shipped Yelp model);
the rounds go through the scenarios in turn, so that the machine's noise falls on each alike,
and the median of the rounds is reported. The load comes from this process: keep-alive
HTTP/1.1 connections over asyncio streams, each sending a request once the last is answered.
Needs the jwt and redis extras. The servers are stopped (SIGTERM) even on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serve_bench import DATA, HOST, MODEL, Server, free_port, learnloop_cmd, log, run_cli

SECRET = "auth-bench-hs256-secret-0123456789abcdef"
ISSUER, AUDIENCE = "https://id.bench/", "learnloop"
TEXTS = ["Great food and friendly staff.", "The service was slow and rude.", "Not bad at all.", "Never again."]


def request_bytes(port: int, headers: dict[str, str]) -> list[bytes]:
    out = []
    for text in TEXTS:
        body = json.dumps({"text": text}).encode()
        head = [f"POST /v1/models/{MODEL}/predict HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        out.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return out


async def load(port: int, requests: list[bytes], connections: int, seconds: float) -> tuple[int, int]:
    """(answers 200, other answers) within ``seconds``."""
    ok = bad = 0
    seen: set[bytes] = set()
    deadline = time.monotonic() + seconds

    async def one(index: int) -> None:
        nonlocal ok, bad
        reader, writer = await asyncio.open_connection(HOST, port)
        i = index
        try:
            while time.monotonic() < deadline:
                writer.write(requests[i % len(requests)])
                i += 1
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200"):
                    ok += 1
                else:
                    bad += 1
                    seen.add(head.split(b"\r\n")[0])
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))
    if seen:
        log(f"answers other than 200: {sorted(seen)}")
    return ok, bad


def limiter_cost(redis_url: str, takes: int = 20_000, concurrency: int = 16) -> dict[str, float]:
    """Microseconds of this process per take of the rate limiter alone (no HTTP), in process and
    through Redis, ``concurrency`` coroutines at once on a rate never reached: the part of a
    request's cost the limiter is, measured apart from the noise of a whole server."""
    from learnloop.access.limits import LocalBuckets, RedisBuckets
    from learnloop.domain import Rate

    rate = Rate(10**9, 1.0)
    out = {}
    for name, buckets in (("in process", LocalBuckets()), ("Redis", RedisBuckets(redis_url, LocalBuckets()))):

        async def run(b: Any = buckets) -> float:
            async def worker(n: int) -> None:
                for _ in range(n):
                    await b.take(f"bench-{os.getpid()}", rate)

            await worker(100)  # connect, load the script
            started = time.process_time()
            await asyncio.gather(*(worker(takes // concurrency) for _ in range(concurrency)))
            spent = time.process_time() - started
            await b.aclose()
            return spent

        out[name] = 1e6 * asyncio.run(run()) / takes
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    import jwt

    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "scope": "predict", "exp": now + 86400},
                       SECRET, algorithm="HS256")  # fmt: skip
    os.environ["LEARNLOOP_JWT_SECRET"] = SECRET  # read only by the server given --jwt-issuer
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="auth_bench_") as tmp:
        root = Path(tmp)
        homes = {}
        for name in ("open", "keys"):
            homes[name] = root / name
            data = str(DATA / "yelp_labelled.txt")
            columns = ["--no-header", "--text-column", "0", "--label-column", "1", "--retrain-every", str(10**9)]
            run_cli(["init", "--home", str(homes[name]), "--model", MODEL, "--data", data, *columns])
        _, output = run_cli(["keys", "create", "--home", str(homes["keys"]), "--name", "bench", "--scope", "predict"])
        key = output.strip().splitlines()[-1]
        unlimited = ["--rate-limit", "1000000/s"]
        scenarios: dict[str, tuple[str, list[str], dict[str, str]]] = {
            "no auth": ("open", [], {}),
            "scoped key": ("keys", [], {"X-API-Key": key}),
            "JWT (HS256)": (
                "keys",
                ["--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE],
                {"Authorization": f"Bearer {token}"},
            ),
            "key + rate limit (in process)": ("keys", unlimited, {"X-API-Key": key}),
            "key + rate limit (Redis)": ("keys", [*unlimited, "--redis-url", args.redis_url], {"X-API-Key": key}),
        }
        results: dict[str, list[float]] = {name: [] for name in scenarios}
        try:
            started: dict[str, Server] = {}
            for name, (home, extra, _) in scenarios.items():
                port = free_port()
                argv = [*learnloop_cmd(), "serve", "--home", str(homes[home]), "--host", HOST, "--port", str(port),
                        "--no-worker", "--log-level", "warning", *extra]  # fmt: skip
                server = Server(name, argv, port, root / f"{len(started)}.log")
                servers.append(server)
                server.start()
                started[name] = server
            for round_ in range(args.rounds + 1):  # round 0 warms each server up
                for name, server in started.items():
                    requests = request_bytes(server.port, scenarios[name][2])
                    seconds = 1.0 if round_ == 0 else args.seconds
                    ok, bad = asyncio.run(load(server.port, requests, args.connections, seconds))
                    if bad > ok / 20:  # admission's 503s under a busy machine are noise; more is a fault
                        raise SystemExit(f"{name}: {bad} answers other than 200:\n{server.log_tail()}")
                    if round_:
                        results[name].append(ok / seconds)
                        log(f"round {round_} {name}: {ok / seconds:,.0f} predict/s")
        finally:
            for server in servers:
                server.stop()
    costs = [limiter_cost(args.redis_url) for _ in range(args.rounds)]
    base = statistics.median(results["no auth"])
    print(f"\npredict requests/s, median of {args.rounds} rounds of {args.seconds:g} s, {args.connections} connections")
    for name, values in results.items():
        median = statistics.median(values)
        each = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {name:32s} {median:8,.0f}   {100 * (median / base - 1):+6.1f}%   ({each})")
    print(f"\nthe rate limiter alone: CPU microseconds of this process per take, median of {args.rounds}")
    for name in costs[0]:
        values = [c[name] for c in costs]
        print(f"  {name:32s} {statistics.median(values):8.1f} us   ({', '.join(f'{v:.1f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
