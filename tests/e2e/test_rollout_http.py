"""Canary rollouts through two real server processes sharing PostgreSQL, with users who keep
asking and correcting:

* a canary of a deliberately broken version (trained on flipped labels) is rolled back by the
  servers' own workers, with no user action;
* then a canary of a better version (it learned phone and film reviews) is promoted;
* during both, no request fails, both replicas send every subject to the same arm, and both
  pick up every routing change within seconds.
"""

from __future__ import annotations

import itertools
import random
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, make_settings, register_version, run_cli, uci_rows, wait_for
from learnloop.curation import split_golden
from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

M = "/v1/models/m"
# The live test decides here; the answer-mix guardrail (which a flipped model can also trip,
# first when the machine is slow and answers pile up before feedback) is left out of the race.
FAST = {"canary_steps": "50", "canary_min_feedback": 40, "canary_step_seconds": 0, "guardrail_max_label_shift": 1.0}


def flipped(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(text, "1" if label == "0" else "0") for text, label in rows]


@dataclass
class Users:
    """A thread of users who ask both replicas in turn and correct every answer."""

    urls: list[str]
    rows: list[tuple[str, str]]
    failures: list[str] = field(default_factory=list)
    served: list[tuple[str, int, str]] = field(default_factory=list)  # (subject, version, route)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        clients = [httpx.Client(base_url=url, timeout=30) for url in self.urls]
        try:
            for i, (text, label) in enumerate(itertools.cycle(self.rows)):
                if self.stop.is_set():
                    return
                subject = f"user-{i % 400}"
                http = clients[i % len(clients)]
                try:
                    answer = http.post(f"{M}/predict", json={"text": text, "subject": subject})
                    if answer.status_code != 200:
                        self.failures.append(f"predict {answer.status_code}: {answer.text}")
                        continue
                    body = answer.json()
                    self.served.append((subject, body["version"], body["route"]))
                    sent = clients[(i + 1) % len(clients)].post(
                        f"{M}/feedback", json={"prediction_id": body["prediction_id"], "label": label}
                    )
                    if sent.status_code != 201:
                        self.failures.append(f"feedback {sent.status_code}: {sent.text}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            for c in clients:
                c.close()


def setup_home(tmp_path: Path, database_url: str) -> tuple[Path, int, int]:
    """``learnloop init`` on restaurant reviews, then a broken and a better version registered
    beside it. Returns the home and the two version numbers."""
    home = tmp_path / "home"
    shutil.copy(uci_sentiment_path("yelp"), tmp_path / "yelp.txt")
    run_cli(
        "init",
        "--home",
        home,
        "--database-url",
        database_url,
        "--model",
        "m",
        "--data",
        "yelp.txt",
        "--text-column",
        "0",
        "--label-column",
        "1",
        "--no-header",
        "--retrain-every",
        "1000000",
        cwd=tmp_path,
    )  # fmt: skip  (no automatic retrain: the test drives the rollouts by hand)
    services = build_services(make_settings(home, database_url))
    try:
        train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
        broken = register_version(services, "m", flipped(train), note="trained on flipped labels")
        better = register_version(services, "m", train + learned_rows(), note="knows phones and films")
    finally:
        services.close()
    return home, broken.version, better.version


def other_domains() -> list[tuple[str, str]]:
    pool = uci_rows("amazon_cells") + uci_rows("imdb")
    random.Random(0).shuffle(pool)
    return pool


def learned_rows() -> list[tuple[str, str]]:
    return other_domains()[:1000]


def traffic_rows() -> list[tuple[str, str]]:
    return other_domains()[1000:]


def rollout_state(http: httpx.Client, rollout_id: int) -> dict[str, Any]:
    response = http.get(f"{M}/rollouts/{rollout_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def serves_only(server: LiveServer, version: int) -> bool:
    with server.client() as http:
        versions = {
            http.post(f"{M}/predict", json={"text": "Fine.", "subject": f"probe-{i}"}).json()["version"]
            for i in range(40)
        }
    return versions == {version}


def canarying(server: LiveServer, version: int) -> bool:
    with server.client() as http:
        return any(
            http.post(f"{M}/predict", json={"text": "Fine.", "subject": f"probe-{i}"}).json()["version"] == version
            for i in range(40)
        )


def arms_agree(a: LiveServer, b: LiveServer, subjects: int = 60) -> dict[str, int]:
    """Each subject's version on replica a, checked to be the same on replica b."""
    arms: dict[str, int] = {}
    with a.client() as ha, b.client() as hb:
        for i in range(subjects):
            subject = f"check-{i}"
            va = ha.post(f"{M}/predict", json={"text": "Okay.", "subject": subject}).json()["version"]
            vb = hb.post(f"{M}/predict", json={"text": "Okay.", "subject": subject}).json()["version"]
            assert va == vb, f"{subject}: replica a sent it to {va}, replica b to {vb}"
            arms[subject] = va
    return arms


def test_two_replicas_roll_a_broken_canary_back_and_promote_a_better_one(
    live_server: ServerLauncher, tmp_path: Path
) -> None:
    from conftest import fresh_postgres_database

    with fresh_postgres_database() as database_url:
        home, broken, better = setup_home(tmp_path, database_url)
        a = live_server.start(home, database_url)
        b = live_server.start(home, database_url)
        users = Users([a.url, b.url], traffic_rows())
        thread = threading.Thread(target=users.run, daemon=True)
        with a.client() as http_a, b.client() as http_b:
            started = http_a.post(f"{M}/rollouts", json={"version": broken, "strategy": "canary", "settings": FAST})
            assert started.status_code == 201, started.text
            first = started.json()
            assert (first["share"], first["status"]) == (0.5, "running")
            # The change made through replica a reaches replica b within seconds (it polls).
            wait_for(lambda: canarying(b, broken), timeout=10, what="replica b to canary")
            arms = arms_agree(a, b)
            assert 10 <= sum(v == broken for v in arms.values()) <= 50  # ~half of 60 subjects

            thread.start()
            try:
                done = wait_for(
                    lambda: (s := rollout_state(http_b, first["id"]))["status"] != "running" and s,
                    timeout=90,
                    interval=0.5,
                    what="the broken canary to be decided",
                )
                assert done["status"] == "rolled_back", done
                assert done["actor"] == "api" and done["reason"].startswith("shown worse"), done
                assert done["stats"]["test"]["ci_high"] < 0
                assert http_a.get(f"{M}/versions/{broken}").json()["status"] == "rejected"
                wait_for(lambda: serves_only(a, 1) and serves_only(b, 1), timeout=10, what="both back on 1")
                events = http_a.get(f"{M}/events", params={"limit": 20}).json()
                rolled = [e for e in events if e["kind"] == "rolled_back"]
                assert len(rolled) == 1 and rolled[0]["actor"] == f"rollout:{first['id']}", rolled

                started = http_b.post(
                    f"{M}/rollouts",
                    json={"version": better, "strategy": "canary", "settings": FAST},
                )
                assert started.status_code == 201, started.text
                second = started.json()
                done = wait_for(
                    lambda: (s := rollout_state(http_a, second["id"]))["status"] != "running" and s,
                    timeout=120,
                    interval=0.5,
                    what="the better canary to be decided",
                )
                assert done["status"] == "promoted", done
                wait_for(
                    lambda: serves_only(a, better) and serves_only(b, better), timeout=10, what="both on the new one"
                )
            finally:
                users.stop.set()
                thread.join(30)
            assert users.failures == [], users.failures[:5]
            # Both challengers really answered users (on the canary route) before they were decided.
            canaried = {version for _, version, route in users.served if route == "canary"}
            assert canaried == {broken, better}
            model = http_a.get(M).json()
            assert (model["champion_version"], model["deployment"]["previous_version"]) == (better, 1)
            assert model["rollout"] is None

        db = ["-m", "m", "--home", home, "--database-url", database_url]
        status = run_cli("rollout", "status", str(second["id"]), *db).stdout
        assert "promoted" in status and "always-valid" in status, status
        # By hand from the CLI: start a shadow of version 1 beside the new champion, pause, stop.
        started_cli = run_cli("rollout", "start", "1", "--strategy", "shadow", "--reason", "compare", *db).stdout
        assert "shadow of version 1" in started_cli, started_cli
        assert "paused" in run_cli("rollout", "pause", *db).stdout
        assert "stopped" in run_cli("rollout", "stop", *db).stdout
        listing = run_cli("rollout", "list", *db).stdout
        for state in ("rolled_back", "promoted", "stopped"):
            assert state in listing, listing
        assert run_cli("rollout", "resume", *db, check=False).returncode == 1  # nothing running
        assert "per arm" in run_cli("sample-size", "--baseline", "0.85", "--delta", "0.02").stdout
