"""Pausing, resuming and cancelling a retrain at the edges, on real processes:

* ``POST /v1/jobs/{id}/pause|resume`` on a real server (admin key; 401 without, 409 when the
  job is not in a state the action takes), ``learnloop jobs pause|resume|list`` on the same
  home, and the dashboard's buttons on the model page (refused cross-site, done same-origin);
  every action an event naming its actor (the key's name, the CLI's user);
* a ``learnloop worker`` SIGKILLed while its retrain is paused: its stopped training process
  dies with it, the next worker reclaims the job once the lease expires and leaves it paused
  (a person paused it), and once resumed it retrains from scratch to a valid version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from conftest import (
    ServerLauncher,
    WorkerLauncher,
    alive,
    descendants,
    init_home,
    kill_leftovers,
    make_settings,
    on_postgres,
    wait_for,
    wait_until_worker_searches,
)
from learnloop.domain import JobStatus
from learnloop.ids import short_id
from learnloop.policy import Policy
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

API_KEY = "jobs-admin-key-of-some-length"
ADMIN = {"X-API-Key": API_KEY}
SHORT_LEASE = {"LEARNLOOP_JOB_LEASE_SECONDS": "3", "LEARNLOOP_JOB_HEARTBEAT_SECONDS": "0.5"}
# A retrain whose fit lasts: a search of a fixed number of trials (a budget it never reaches).
SEARCHING = Policy.of(search_families="tfidf-logreg", search_budget_seconds=3600, search_trials=20, selection_blocks=3)


def test_pause_and_resume_over_http_from_the_cli_and_the_dashboard(
    live_server: ServerLauncher, cli: Callable[..., CompletedProcess[str]], tmp_path: Path
) -> None:
    home, database_url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    init_home(home, database_url)
    where = ("--home", home, "--database-url", database_url)
    # No worker: a queued retrain stays queued, so each action's effect is the database's.
    server = live_server.start(home, database_url, "--no-worker", "--api-key", API_KEY)
    with server.client() as http:
        job_id = http.post("/v1/models/m/retrain", headers=ADMIN).json()["job_id"]
        end = short_id(job_id)
        assert http.post(f"/v1/jobs/{end}/pause").status_code == 401
        refused = http.post(f"/v1/jobs/{end}/resume", headers=ADMIN)
        assert refused.status_code == 409 and refused.json()["code"] == "conflict"
        assert "only a paused job can be resumed" in refused.json()["detail"]

        paused = http.post(f"/v1/jobs/{end}/pause", json={"reason": "not during the sale"}, headers=ADMIN)
        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "paused"
        assert paused.json()["message"] == "paused by api-key: not during the sale; it waits in the queue"
        assert http.post(f"/v1/jobs/{end}/pause", headers=ADMIN).status_code == 409
        assert http.post("/v1/models/m/retrain", headers=ADMIN).status_code == 409  # it keeps the slot

        listing = cli("jobs", "list", *where).stdout
        assert end in listing and "paused" in listing and "not during the sale" in listing
        resumed = cli("jobs", "resume", end, *where, "--reason", "sale over").stdout
        assert f"job {job_id} (retrain of m) queued: resumed by cli" in resumed
        assert http.get(f"/v1/jobs/{end}", headers=ADMIN).json()["status"] == "queued"
        assert "paused by cli" in cli("jobs", "pause", end, *where).stdout

        # The dashboard: the model page offers Resume on the paused job; a cross-site post is refused.
        page = http.get("/dashboard/models/m", headers=ADMIN).text
        action = f"/dashboard/models/m/jobs/{job_id}/resume"
        assert f'action="{action}"' in page and f"/jobs/{job_id}/pause" not in page
        foreign = http.post(action, headers={**ADMIN, "Origin": "https://evil.example"})
        assert foreign.status_code == 403 and http.get(f"/v1/jobs/{end}", headers=ADMIN).json()["status"] == "paused"
        done = http.post(action, data={"reason": "from the page"}, headers={**ADMIN, "Origin": server.url})
        assert done.status_code == 303 and "resumed" in done.headers["location"]
        assert http.get(f"/v1/jobs/{end}", headers=ADMIN).json()["status"] == "queued"
        assert f"/jobs/{job_id}/pause" in http.get("/dashboard/models/m", headers=ADMIN).text
        cancel = f"/dashboard/models/m/jobs/{job_id}/cancel"
        form = {"reason": ""}  # what the page's button posts
        assert http.post(cancel, data=form, headers={**ADMIN, "Origin": server.url}).status_code == 303
        assert http.get(f"/v1/jobs/{end}", headers=ADMIN).json()["status"] == "cancelled"
        again = http.post(
            f"/dashboard/models/m/jobs/{job_id}/pause", data=form, headers={**ADMIN, "Origin": server.url}
        )
        assert again.status_code == 303 and "error" in again.headers["location"]  # said on the page, not done

        events = http.get("/v1/models/m/events?limit=20", headers=ADMIN).json()
    said = [(e["kind"], e["actor"]) for e in (events["items"] if isinstance(events, dict) else events)]
    control = [s for s in said if s[0] in ("retrain_paused", "retrain_resumed", "retrain_cancelled")]
    assert [kind for kind, _ in control] == [
        "retrain_cancelled",
        "retrain_resumed",
        "retrain_paused",
        "retrain_resumed",
        "retrain_paused",
    ]
    actors = [actor for _, actor in control]
    assert actors[0] == actors[1] == "dashboard:api-key"  # the dashboard, and the key behind it
    assert actors[2].startswith("cli") and actors[3].startswith("cli") and actors[4] == "api-key"


@on_postgres
def test_a_worker_killed_while_its_retrain_is_paused_leaves_it_paused_to_restart_once_resumed(
    live_worker: WorkerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url, policy=SEARCHING)
    services = build_services(make_settings(home, database_url))  # this test's view of the queue
    orphans: list[int] = []
    try:
        job_id = services.jobs.enqueue("m", "retrain", requested_by="test").id
        first = live_worker.start(home, database_url, env=SHORT_LEASE)

        taken = wait_until_worker_searches(services, job_id, first, timeout=120)
        services.jobs.pause(job_id, actor="alice", reason="need the machine")
        orphans = descendants(first.process.pid)
        wait_for(
            lambda: any(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T" for pid in orphans),
            timeout=30,
            what="the training process to be stopped",
        )
        first.kill()
        wait_for(lambda: not any(alive(pid) for pid in orphans), timeout=10, what="its stopped process to die")

        live_worker.start(home, database_url, env=SHORT_LEASE)
        left = wait_for(
            lambda: (j := services.jobs.get(job_id)).worker is None and j,
            timeout=60,
            interval=0.1,
            what="the second worker to reclaim the paused job",
        )
        assert left.status == JobStatus.PAUSED and left.attempts == 1
        assert left.last_error is not None and f"worker {taken.worker} stopped renewing" in left.last_error
        resumed = services.jobs.resume(job_id, actor="alice", reason="go")
        assert resumed.status == JobStatus.QUEUED and resumed.message is not None
        assert "attempt 2 restarts from scratch" in resumed.message
        assert "candidate search keeps the trials its study finished" in resumed.message
        done = wait_for(
            lambda: (j := services.jobs.get(job_id)).status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and j,
            timeout=180,
            interval=0.2,
            what="the second worker to finish the retrain",
        )
        assert done.status == JobStatus.SUCCEEDED and done.attempts == 2, done.error
        assert done.result is not None and done.result["version"] == 2
        kinds = [e.kind for e in services.registry.events("m", 20)]
        assert kinds.index("retrain_resumed") < kinds.index("retrain_reclaimed") < kinds.index("retrain_paused")
    finally:
        services.close()
        kill_leftovers(orphans)
