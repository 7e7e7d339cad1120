"""Liveness and readiness on a port of their own, answered by a thread, not the event loop.

On the API port a probe's new connection waits its turn behind every busy connection: at 1,024
connections that was 0.4-0.6 s on asyncio, up to 10 s on uvloop (README, "Overload pushes
back"), long enough for a liveness probe to kill a server that is only busy. This listener
(``learnloop serve --probe-port``) runs on a thread of its own: the event loop never sees its
connections, and the thread needs the GIL only for the few microseconds an answer takes (the
interpreter hands it over within its switch interval, 5 ms).

A probe that skipped the event loop would call a wedged loop alive, so ``/health`` here also
reads the loop's own timer (``LoopLag``): once the loop has not run for ``live_stall_seconds``,
``/health`` answers 503 ``stalled`` and a supervisor restarts the process; ``/ready`` adds an
``event_loop`` check (not ready once the loop is ``ready_stall_seconds`` late) to what the API
port's ``/ready`` reports. Both bodies are the API port's, plus
``event_loop_late_seconds``; nothing else is served here.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from learnloop.api.admission import LoopLag
    from learnloop.services import Services

logger = logging.getLogger(__name__)


class _ProbeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, probes: ProbeServer) -> None:
        super().__init__(sock.getsockname()[:2], _ProbeHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock  # bound and listening already (a busy port failed before start-up)
        self.probes = probes


class _ProbeHandler(BaseHTTPRequestHandler):
    server: _ProbeHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as kubelet and load balancers probe
    timeout: ClassVar[float] = 5.0  # a silent client never holds a thread for long

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        probes = self.server.probes
        if path == "/health":
            self._answer(*probes.health())
        elif path == "/ready":
            self._answer(*probes.ready())
        else:
            problem = {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "code": "not_found",
                "detail": "the probe port serves GET /health and GET /ready only",
            }
            self._answer(404, problem, "application/problem+json")

    def _answer(self, status: int, body: dict[str, Any], content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes arrive every few seconds: not worth a log line each."""


class ProbeServer:
    """``/health`` and ``/ready`` of ``services`` on ``sock``, from a daemon thread."""

    def __init__(
        self,
        sock: socket.socket,
        services: Services,
        lag: LoopLag,
        *,
        live_stall_seconds: float,
        ready_stall_seconds: float,
    ) -> None:
        self.services = services
        self.lag = lag
        self.live_stall_seconds = live_stall_seconds
        self.ready_stall_seconds = ready_stall_seconds
        self._server = _ProbeHTTPServer(sock, self)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="learnloop-probes", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=2.0)
            self._thread = None
        self._server.server_close()

    def _late(self) -> float:
        return round(self.lag.seconds(), 3)

    def health(self) -> tuple[int, dict[str, Any]]:
        late = self._late()
        body = self.services.health() | {"event_loop_late_seconds": late}
        if late >= self.live_stall_seconds:
            body["status"] = "stalled"
            return HTTPStatus.SERVICE_UNAVAILABLE, body
        return HTTPStatus.OK, body

    def ready(self) -> tuple[int, dict[str, Any]]:
        late = self._late()
        state = self.services.readiness()
        checks = dict(state.checks)
        checks["event_loop"] = "ok" if late < self.ready_stall_seconds else f"stalled for {late:.1f} s"
        ready = state.ready and checks["event_loop"] == "ok"
        body = {"status": "ready" if ready else "not_ready", "checks": checks, "event_loop_late_seconds": late}
        return (HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE), body
