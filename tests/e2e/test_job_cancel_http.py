"""Cancelling a job at the edges: ``POST /v1/jobs/{id}/cancel`` on a real server (admin only;
the job named by its id or the end of it; who and why on the job; 409 once finished, 404 when
unknown) and ``learnloop jobs cancel``
and ``learnloop jobs list`` on the same home."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from conftest import ServerLauncher, init_home
from learnloop.ids import short_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

API_KEY = "jobs-admin-key"
ADMIN = {"X-API-Key": API_KEY}


def test_a_queued_retrain_is_cancelled_over_http_and_from_the_cli(
    live_server: ServerLauncher, cli: Callable[..., CompletedProcess[str]], tmp_path: Path
) -> None:
    home, database_url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    init_home(home, database_url)
    # No worker: a queued retrain stays queued until someone cancels it.
    server = live_server.start(home, database_url, "--no-worker", "--api-key", API_KEY)
    with server.client() as http:
        queued = http.post("/v1/models/m/retrain", headers=ADMIN)
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        assert http.post(f"/v1/jobs/{job_id}/cancel").status_code == 401

        end = short_id(job_id)  # as jobs list shows it
        cancelled = http.post(f"/v1/jobs/{end}/cancel", json={"reason": "wrong data"}, headers=ADMIN)
        assert cancelled.status_code == 200, cancelled.text
        body = cancelled.json()
        assert (body["job_id"], body["status"], body["cancelled_by"]) == (job_id, "cancelled", "api-key")
        assert body["cancel_reason"] == "wrong data"
        assert http.get(f"/v1/jobs/{end}", headers=ADMIN).json()["job_id"] == job_id
        assert http.get(f"/v1/jobs/{job_id}", headers=ADMIN).json()["status"] == "cancelled"

        again = http.post(f"/v1/jobs/{job_id}/cancel", headers=ADMIN)
        assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
        assert "is cancelled already" in again.json()["detail"]
        assert http.post("/v1/jobs/no-such-job/cancel", headers=ADMIN).status_code == 404
        assert http.get("/v1/jobs/1234", headers=ADMIN).json()["code"] == "not_found"  # too short to name one

        second = http.post("/v1/models/m/retrain", headers=ADMIN)  # the model's slot is free
        assert second.status_code == 202, second.text
        second_id = second.json()["job_id"]

    done = cli("jobs", "cancel", second_id, "--home", home, "--database-url", database_url, "--reason", "not today")
    assert f"job {second_id} (retrain of m) cancelled while queued" in done.stdout
    assert "not today" in done.stdout
    listing = cli("jobs", "list", "--home", home, "--database-url", database_url).stdout
    assert short_id(second_id) in listing and short_id(job_id) in listing  # by the ends of their ids
    assert "cancelled by api-key: wrong data" in listing and "not today" in listing
    missing = cli("jobs", "cancel", job_id, "--home", home, "--database-url", database_url, check=False)
    assert missing.returncode == 1 and "is cancelled already" in missing.stderr
