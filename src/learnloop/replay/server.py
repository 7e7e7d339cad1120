"""A real ``learnloop serve`` process on loopback, for HTTP replays and the demo."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from learnloop.errors import LearnloopError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_port_free(port: int) -> None:
    """A busy port is a clear error before anything is written (another demo still serving)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise LearnloopError(
                f"port {port} is in use (a demo or server still running there?); stop it, or choose another port "
                "(--port, or PORT for scripts/demo)"
            ) from None


def live_pid(pid_file: Path) -> int | None:
    """The pid a server's pid file names, if that process is still alive."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class ServerProcess:
    """``learnloop serve`` on 127.0.0.1 in a child process, with its log in ``log_path``."""

    def __init__(
        self,
        home: Path,
        *,
        database_url: str | None,
        port: int | None = None,
        log_path: Path,
        pid_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.env = dict(env or {})  # added to this process's environment
        self.database_url = database_url
        self.port = port or free_port()
        self.log_path = log_path
        self.pid_path = pid_path  # written while the server runs, so a second demo can tell
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers. Ready means that /health answers from
        the process started here (its pid): a server already on the port is never mistaken for it."""
        command = [sys.executable, "-m", "learnloop", "serve", "--home", str(self.home), "--port", str(self.port)]
        if self.database_url:
            command += ["--database-url", self.database_url]
        env = {**os.environ, **self.env, "HF_HUB_OFFLINE": "1"}
        env.pop("LEARNLOOP_API_KEY", None)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        import httpx  # lazily: the CLI starts without it

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LearnloopError(f"the server exited with code {self._process.returncode}; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = httpx.get(f"{self.url}/health", timeout=2.0)
                if response.status_code == 200:
                    answering = response.json().get("pid")
                    if answering != self._process.pid:
                        self.stop()
                        raise LearnloopError(
                            f"another process (pid {answering}) answers on port {self.port}, not the server "
                            f"started here; stop it or choose another port"
                        )
                    if self.pid_path is not None:
                        self.pid_path.write_text(f"{self._process.pid}\n")
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
        if self.pid_path is not None:
            self.pid_path.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None
