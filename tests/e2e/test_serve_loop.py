"""`learnloop serve` runs on asyncio unless asked otherwise (uvloop starved some connections for
seconds when overloaded: README, "Overload pushes back"); the loop it runs is logged at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ServerLauncher, init_home, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _loop_line(log: str) -> str:
    lines = [line for line in log.splitlines() if "event loop:" in line]
    assert len(lines) == 1, log
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [((), "asyncio.unix_events"), (("--loop", "uvloop"), "uvloop.Loop")],
    ids=["default", "uvloop"],
)
def test_the_server_runs_the_loop_asked_for(
    live_server: ServerLauncher, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    home, database_url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    init_home(home, database_url)
    server = live_server.start(home, database_url, "--log-level", "info", *args)
    with server.client() as http:
        assert http.post("/v1/models/m/predict", json={"text": "a fine day"}).status_code == 200
    assert expected in _loop_line(server.log_tail(200_000))


def test_an_unknown_loop_is_refused_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "never-made"
    proc = run_cli("serve", "--home", home, "--loop", "trio", check=False, timeout=60)
    assert proc.returncode == 2
    assert "'trio' is not one of 'asyncio', 'uvloop', 'auto'" in proc.stderr.replace("\n", " ").replace("│", "")
    assert not home.exists()
