"""A live server under database faults: a table lock held by another connection, a database
that stops taking connections, a SQLite file deleted underneath, a SIGKILL in durable mode.

No timing assertions: the server must keep answering (liveness within the client's timeout),
push back with 503 and Retry-After, and never acknowledge what it did not store."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from conftest import ServerLauncher, fresh_postgres_database, init_home, predictions_locked, wait_for
from learnloop.store.db import Database
from learnloop.store.repositories import predictions as prediction_repo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

M = "/v1/models/m"
LOCK_SECONDS = 20.0  # the longest the lock is held; released as soon as the test has seen enough
QUEUE_MAX = 200


@dataclass
class Flood:
    """Clients sending predictions until told to stop or a 503 arrives."""

    url: str
    answered: list[str] = field(default_factory=list)
    refused: list[httpx.Response] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=LOCK_SECONDS + 10) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    response = http.post(f"{M}/predict", json={"text": f"client {n}, review {i}: works well"})
                except httpx.HTTPError as exc:
                    if not self.stop.is_set():  # after a stop: a killed server's cut connections
                        self.unexpected.append(repr(exc))
                    return
                if response.status_code == 200:
                    self.answered.append(response.json()["prediction_id"])
                elif response.status_code == 503:
                    self.refused.append(response)
                    return
                else:
                    self.unexpected.append(f"{response.status_code} {response.text}")
                    return


def logged_ids(database_url: str, ids: list[str]) -> set[str]:
    db = Database(database_url)
    try:
        with db.read() as conn:
            return {pid for pid in ids if prediction_repo.get_prediction(conn, pid) is not None}
    finally:
        db.dispose()


def health_ok(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/health", timeout=5.0)  # a frozen event loop would time out here
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_locked_predictions_table_keeps_health_answering_and_turns_overload_into_503(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    server = live_server.start(home, database_url, "--prediction-queue-max", str(QUEUE_MAX))
    flood = Flood(server.url)
    with server.client() as http:
        assert http.get("/ready").status_code == 200
        with predictions_locked(database_url):
            threads = [threading.Thread(target=flood.run, args=(n,), daemon=True) for n in range(4)]
            for thread in threads:
                thread.start()
            health_during: list[dict[str, Any]] = []

            def stalled_and_refusing() -> bool:
                health_during.append(health_ok(http))
                return bool(flood.refused or flood.unexpected) and http.get("/ready").status_code == 503

            wait_for(stalled_and_refusing, timeout=LOCK_SECONDS, interval=0.2, what="503s and /ready 503")
            flood.stop.set()
            if database_url.startswith("postgres"):  # feedback has a thread of its own
                fb = http.post(f"{M}/feedback", json={"text": "Feedback during the lock.", "label": "1"})
                assert fb.status_code == 201, fb.text
            ready = http.get("/ready").json()
            for thread in threads:
                thread.join(LOCK_SECONDS + 15)
        assert flood.unexpected == []
        refusal = flood.refused[0]
        assert refusal.json()["code"] == "overloaded" and int(refusal.headers["Retry-After"]) >= 1
        assert len(health_during) >= 2 and max(h["prediction_log_backlog"] for h in health_during) > 0
        assert ready["status"] == "not_ready" and ready["checks"]["prediction_log"].startswith("stalled")
        assert "/" not in str(ready)  # no paths to unauthenticated clients

        # The lock is gone: the backlog drains, every answered prediction is logged.
        wait_for(lambda: http.get("/ready").status_code == 200, timeout=30, interval=0.2, what="ready again")
        wait_for(lambda: health_ok(http)["prediction_log_backlog"] == 0, timeout=30, what="an empty backlog")
        assert http.post(f"{M}/predict", json={"text": "After the lock."}).status_code == 200
    assert len(flood.answered) >= QUEUE_MAX // 4
    assert logged_ids(database_url, flood.answered) == set(flood.answered)


@pytest.mark.postgres
def test_ready_is_503_while_the_database_refuses_connections_and_200_once_it_is_back(
    live_server: ServerLauncher, tmp_path: Path
) -> None:
    with fresh_postgres_database() as database_url:
        database_stops_and_comes_back(live_server, tmp_path / "home", database_url)


def database_stops_and_comes_back(live_server: ServerLauncher, home: Path, database_url: str) -> None:
    init_home(home, database_url)
    server = live_server.start(home, database_url)
    name = make_url(database_url).database
    admin = create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.client() as http:
            assert http.get("/ready").status_code == 200
            with admin.connect() as conn:  # the database stops: connections cut, new ones refused
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            try:
                wait_for(lambda: http.get("/ready").status_code == 503, timeout=30, interval=0.2, what="/ready 503")
                body = http.get("/ready").json()
                assert body["checks"]["database"].startswith("unreachable"), body
                assert health_ok(http)["status"] == "degraded"
                read = http.get(f"{M}/events")  # a read is a 503 to retry too, not a 500
                assert read.status_code == 503 and read.json()["code"] == "storage_unavailable", read.text
                assert "Retry-After" in read.headers
                fb = http.post(f"{M}/feedback", json={"text": "While the database is down.", "label": "1"})
                assert fb.status_code == 503 and fb.json()["code"] == "storage_unavailable", fb.text
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            wait_for(lambda: http.get("/ready").status_code == 200, timeout=30, interval=0.2, what="/ready 200")
            fb = http.post(f"{M}/feedback", json={"text": "The database is back.", "label": "1"})
            assert fb.status_code == 201, fb.text
    finally:
        admin.dispose()


def test_a_deleted_sqlite_file_stops_every_acknowledgement_until_restart(
    live_server: ServerLauncher, tmp_path: Path
) -> None:
    home, db_file = tmp_path / "home", tmp_path / "ll.db"
    url = f"sqlite:///{db_file}"
    init_home(home, url)
    server = live_server.start(home, url)
    with server.client() as http:
        assert http.post(f"{M}/feedback", json={"text": "Before the deletion.", "label": "1"}).status_code == 201
        db_file.unlink()
        after = [http.post(f"{M}/feedback", json={"text": f"After the deletion {i}.", "label": "1"}) for i in range(20)]
        assert {r.status_code for r in after} == {503}, after[0].text
        assert after[0].json()["code"] == "storage_unavailable" and "Retry-After" in after[0].headers
        predicted = http.post(f"{M}/predict", json={"text": "After the deletion."})
        assert predicted.status_code == 503, predicted.text
        assert http.get("/ready").status_code == 503
        assert health_ok(http)["database"] == "gone"
        assert str(tmp_path) not in http.get("/ready").text + http.get("/health").text


def test_durable_prediction_log_loses_no_acknowledged_prediction_across_a_sigkill(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    server = live_server.start(home, database_url, "--prediction-log", "durable")
    flood = Flood(server.url)
    threads = [threading.Thread(target=flood.run, args=(n,), daemon=True) for n in range(6)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(flood.answered) >= 300 or flood.unexpected, timeout=60, interval=0.01, what="300 answers")
    flood.stop.set()
    server.kill()
    for thread in threads:
        thread.join(30)
    answered = list(flood.answered)
    assert flood.unexpected == [] and flood.refused == []
    assert len(answered) >= 300
    assert logged_ids(database_url, answered) == set(answered)
