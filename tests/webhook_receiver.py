"""A real HTTP receiver for webhook tests: a server on 127.0.0.1 in a thread that answers
with a scripted list of statuses (then ``default``) and records every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

Answer = int | tuple[int, dict[str, str]]  # a status, or a status and headers


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    def __init__(self, answers: Sequence[Answer] = (), *, default: int = 200, delay: float = 0.0) -> None:
        self._answers = list(answers)
        self._default = default
        self._delay = delay
        self._lock = threading.Lock()
        self.requests: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = receiver._record(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if receiver._delay:
                    time.sleep(receiver._delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _record(self, received: Received) -> tuple[int, dict[str, str]]:
        with self._lock:
            self.requests.append(received)
            answer: Answer = self._answers.pop(0) if self._answers else self._default
        return (answer, {}) if isinstance(answer, int) else answer

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(self.requests)} requests, not {count}, in {timeout}s")
            time.sleep(0.02)
        return list(self.requests)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@contextmanager
def receiving(answers: Sequence[Answer] = (), *, default: int = 200, delay: float = 0.0) -> Iterator[Receiver]:
    """A running receiver, stopped when the block ends (or the test fails)."""
    receiver = Receiver(answers, default=default, delay=delay).start()
    try:
        yield receiver
    finally:
        receiver.stop()
