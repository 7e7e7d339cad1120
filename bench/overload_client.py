"""Load generator and liveness probe of ``overload_bench.py`` (each runs in its own process).

``load``: N keep-alive HTTP/1.1 connections, closed loop (each sends its next request as soon
as the previous one is answered; with ``--honor-retry-after``, a connection answered 503 waits
its Retry-After first, times a random 1-1.5, as a well-behaved client does), asyncio protocols on uvloop: a few
microseconds per answer, so the server, not the client, is what saturates. Every answer is
timed and kept by status.
``probe``: a new connection every 50 ms for one GET, as a liveness probe opens one.
Both print one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import random
import time
from collections import defaultdict
from typing import Any

HOST = "127.0.0.1"


def stats(latencies: list[float], seconds: float) -> dict[str, Any]:
    if not latencies:
        return {"n": 0}
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "n": len(ordered),
        "per_s": len(ordered) / seconds,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": ordered[-1] * 1000,
    }


class Load:
    def __init__(self, port: int, path: str, bodies: list[str], *, honor_retry_after: bool) -> None:
        self.honor_retry_after = honor_retry_after
        head = f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        self.requests = [(head + f"Content-Length: {len(b.encode())}\r\n\r\n").encode() + b.encode() for b in bodies]
        self.next = itertools.cycle(range(len(self.requests)))
        self.by_status: dict[int, list[float]] = defaultdict(list)
        self.errors = 0
        self.running = True


class Connection(asyncio.Protocol):
    def __init__(self, load: Load) -> None:
        self.load = load
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.load.requests[next(self.load.next)])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        at = head.find(b"content-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop > 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        self.load.by_status[status].append(time.perf_counter() - self.sent_at)
        del self.buffer[: end + 4 + length]
        if not self.load.running:
            if self.transport is not None:
                self.transport.close()
        elif status == 503 and self.load.honor_retry_after and (at := head.find(b"retry-after:")) >= 0:
            stop = head.find(b"\r\n", at)
            delay = float(head[at + 12 : stop if stop > 0 else len(head)]) * random.uniform(1.0, 1.5)  # jitter
            asyncio.get_running_loop().call_later(delay, self.send_if_running)
        else:
            self.send()

    def send_if_running(self) -> None:
        if self.load.running and self.transport is not None and not self.transport.is_closing():
            self.send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.load.running:
            self.load.errors += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def run_load(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.bodies, encoding="utf-8") as f:
        load = Load(args.port, args.path, json.load(f), honor_retry_after=args.honor_retry_after)
    loop = asyncio.get_running_loop()
    conns: list[Connection] = []
    for _ in range(args.connections):  # every connection open before the load starts, as wrk does
        try:
            _, proto = await loop.create_connection(lambda: Connection(load), HOST, args.port)
            conns.append(proto)
        except OSError:
            load.errors += 1
    started = time.perf_counter()
    for conn in conns:
        conn.send()
    await asyncio.sleep(args.seconds)
    load.running = False
    seconds = time.perf_counter() - started
    waiting = [c for c in conns if c.transport is not None and not c.transport.is_closing()]
    if waiting:
        await asyncio.wait([c.closed for c in waiting], timeout=30)
    unanswered = sum(1 for c in waiting if not c.closed.done())
    return {
        "connections": args.connections,
        "seconds": seconds,
        "errors": load.errors,
        "unanswered": unanswered,
        "by_status": {str(k): stats(v, seconds) for k, v in sorted(load.by_status.items())},
    }


def run_probe(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(HOST, args.port, timeout=30)
        try:
            conn.request("GET", args.path, headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
        except OSError:
            errors += 1
        finally:
            conn.close()
        time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
    result = stats(latencies, time.perf_counter() - started)
    result.update(errors=errors, above_100ms=sum(1 for x in latencies if x > 0.1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("load", "probe"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--bodies")
    parser.add_argument("--honor-retry-after", action="store_true", help="wait Retry-After before resending")
    args = parser.parse_args()
    if args.mode == "probe":
        result = run_probe(args)
    else:
        import uvloop

        result = uvloop.run(run_load(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
