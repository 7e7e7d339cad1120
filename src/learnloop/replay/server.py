"""A real ``learnloop serve`` process on loopback, for HTTP replays and the demo."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from learnloop.errors import LearnloopError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``learnloop serve`` on 127.0.0.1 in a child process, with its log in ``log_path``."""

    def __init__(self, home: Path, *, database_url: str | None, port: int | None = None, log_path: Path) -> None:
        self.home = home
        self.database_url = database_url
        self.port = port or free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        command = [sys.executable, "-m", "learnloop", "serve", "--home", str(self.home), "--port", str(self.port)]
        if self.database_url:
            command += ["--database-url", self.database_url]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        env.pop("LEARNLOOP_API_KEY", None)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LearnloopError(f"the server exited with code {self._process.returncode}; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise LearnloopError(f"the server did not answer /health within {timeout:.0f}s; see {self.log_path}")

    def wait(self) -> int:
        """Block until the server exits (Ctrl-C stops it gracefully)."""
        assert self._process is not None
        try:
            return self._process.wait()
        except KeyboardInterrupt:
            self.stop()
            return 0

    def stop(self, timeout: float = 30.0) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
