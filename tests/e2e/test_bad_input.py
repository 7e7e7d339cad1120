"""Bad input over real HTTP: clear 4xx problem+json answers, nothing half-stored.

One server per module (SQLite) keeps this quick; no test here depends on another's data.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    LiveServer,
    ServerLauncher,
    create_model,
    free_port,
    learnloop_executable,
    make_settings,
    subprocess_env,
    wait_for,
)
from learnloop.domain import Prediction, Scope
from learnloop.feedback.intake import hash_subject
from learnloop.services import build_services
from learnloop.store.db import Database
from learnloop.store.repositories import predictions as prediction_repo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

API_KEY = "s3cret-admin-key"
M = "/v1/models/m"
USER_SCOPES = [Scope.PREDICT, Scope.FEEDBACK, Scope.READ, Scope.LABEL]  # everything but admin


@pytest.fixture(scope="module")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("bad-input")
    url = f"sqlite:///{root}/ll.db"
    services = build_services(make_settings(root / "home", url))
    try:
        create_model(services, "m")
        key = services.access.create("user", USER_SCOPES, actor="test")[1]
    finally:
        services.close()
    return root, url, key


@pytest.fixture(scope="module")
def server(module_server_launcher: ServerLauncher, user_key: tuple[Path, str, str]) -> LiveServer:
    root, url, _ = user_key
    return module_server_launcher.start(root / "home", url, "--api-key", API_KEY)


@pytest.fixture
def http(server: LiveServer, user_key: tuple[Path, str, str]) -> Iterator[httpx.Client]:
    """A client with a key of every scope but admin: admin routes answer it 403."""
    with server.client(headers={"X-API-Key": user_key[2]}) as client:
        yield client


@pytest.fixture
def bare(server: LiveServer) -> Iterator[httpx.Client]:
    """A client without a key."""
    with server.client() as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] and body["detail"]
    return body


def invalid(response: httpx.Response, field: str) -> dict[str, Any]:
    body = problem(response, 422)
    assert body["code"] == "validation_error"
    assert body["field"] == field, body
    return body


def predict(http: httpx.Client, text: str = "Works great.") -> str:
    response = http.post(f"{M}/predict", json={"text": text})
    assert response.status_code == 200, response.text
    return str(response.json()["prediction_id"])


# -- not found -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/models/nope/predict"),
        ("GET", "/v1/models/nope"),
        ("GET", f"{M}/versions/99"),
        ("GET", f"{M}/feedback/{uuid.UUID(int=0x5EED)}"),  # a fixed id: xdist workers must collect alike
        ("GET", "/v1/jobs/no-such-job"),
        ("POST", "/v1/models/nope/feedback"),
    ],
)
def test_unknown_model_version_feedback_or_job_is_404(http: httpx.Client, method: str, path: str) -> None:
    body = {"text": "hello"} if method == "POST" and path.endswith("predict") else None
    if path.endswith("feedback"):
        body = {"text": "hello", "label": "1"}
    assert problem(http.request(method, path, json=body), 404)["code"] == "not_found"


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_422(http: httpx.Client, text: str) -> None:
    invalid(http.post(f"{M}/predict", json={"text": text}), "text")
    invalid(http.post(f"{M}/feedback", json={"text": text, "label": "1"}), "text")


def test_oversized_text_is_422(http: httpx.Client) -> None:
    long = "word " * 2001  # 10 005 characters
    assert "10000" in invalid(http.post(f"{M}/predict", json={"text": long}), "text")["detail"]
    invalid(http.post(f"{M}/feedback", json={"text": long, "label": "1"}), "text")
    assert http.post(f"{M}/predict", json={"text": "x" * 10_000}).status_code == 200  # the limit itself is fine


def test_unknown_label_is_422(http: httpx.Client) -> None:
    body = invalid(http.post(f"{M}/feedback", json={"prediction_id": predict(http), "label": "maybe"}), "label")
    assert "maybe" in body["detail"]


@pytest.mark.parametrize("rating", [0, 6, 2.5, True])
def test_rating_outside_1_to_5_is_422(http: httpx.Client, rating: object) -> None:
    invalid(http.post(f"{M}/feedback", json={"prediction_id": predict(http), "rating": rating}), "rating")


def test_thumbs_sideways_is_422(http: httpx.Client) -> None:
    invalid(http.post(f"{M}/feedback", json={"prediction_id": predict(http), "thumbs": "sideways"}), "thumbs")


def test_feedback_with_neither_prediction_id_nor_text_is_422(http: httpx.Client) -> None:
    invalid(http.post(f"{M}/feedback", json={"label": "1"}), "prediction_id")


def test_malformed_prediction_id_is_422(http: httpx.Client) -> None:
    invalid(http.post(f"{M}/feedback", json={"prediction_id": "not-a-uuid", "label": "1"}), "prediction_id")


def test_unknown_field_is_422(http: httpx.Client) -> None:
    invalid(http.post(f"{M}/predict", json={"text": "hi", "txet": "typo"}), "txet")


@pytest.mark.parametrize("path", [f"{M}/predict", f"{M}/feedback", f"{M}/feedback/batch", f"{M}/predict/batch"])
def test_malformed_json_is_422(http: httpx.Client, path: str) -> None:
    response = http.post(path, content=b'{"text": "unterminated', headers={"content-type": "application/json"})
    body = problem(response, 422)
    assert body["code"] == "validation_error"
    assert "field" in body


def test_oversized_batches_are_422(http: httpx.Client) -> None:
    predictions = {"items": [{"text": f"sentence {i}"} for i in range(1001)]}
    invalid(http.post(f"{M}/predict/batch", json=predictions), "items")
    feedback = {"items": [{"text": f"sentence {i}", "label": "1"} for i in range(1001)]}
    invalid(http.post(f"{M}/feedback/batch", json=feedback), "items")
    unique = f"never-stored-{uuid.uuid4()}"
    feedback["items"][0]["feedback_id"] = unique
    invalid(http.post(f"{M}/feedback/batch", json=feedback), "items")
    problem(http.get(f"{M}/feedback/{unique}"), 404)  # a refused batch stores nothing


def test_an_oversized_body_a_deep_body_and_a_huge_id_are_4xx_over_http(http: httpx.Client) -> None:
    """Through uvicorn: a body past the cap (4 MiB) is refused unread and the connection
    still serves the next request; so are deep JSON and integers past 64 bits."""
    json_type = {"content-type": "application/json"}
    big = http.post(f"{M}/feedback/batch", content=b"[" + b" " * (5 * 1024 * 1024) + b"]", headers=json_type)
    assert problem(big, 413)["code"] == "payload_too_large"
    invalid(http.post(f"{M}/predict", content=b"[" * 10_000, headers=json_type), "body")
    invalid(http.get(f"{M}/versions/{2**64}"), "version")
    assert http.post(f"{M}/predict", json={"text": "Still serving."}).status_code == 200


# -- accepted edge cases ---------------------------------------------------------------------


def test_feedback_for_an_unknown_prediction_id_is_stored_and_retrievable(http: httpx.Client) -> None:
    prediction_id = str(uuid.uuid4())
    client_id = f"client-{uuid.uuid4()}"
    response = http.post(f"{M}/feedback", json={"prediction_id": prediction_id, "label": "0", "feedback_id": client_id})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["prediction_id"], stored["label"], stored["kind"]) == (prediction_id, "0", "label")
    for key in (stored["feedback_id"], client_id):
        got = http.get(f"{M}/feedback/{key}")
        assert got.status_code == 200
        assert got.json() == stored


def test_same_feedback_id_twice_over_http_is_one_event(http: httpx.Client) -> None:
    body = {"prediction_id": predict(http), "thumbs": "up", "feedback_id": f"once-{uuid.uuid4()}"}
    first = http.post(f"{M}/feedback", json=body)
    second = http.post(f"{M}/feedback", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()


def test_batch_with_one_bad_item_stores_the_others_and_reports_its_index(http: httpx.Client) -> None:
    pid = predict(http)
    tag = uuid.uuid4().hex
    items = [
        {"prediction_id": pid, "label": "1", "feedback_id": f"{tag}-0"},
        {"text": "Nice screen, poor battery.", "label": "0", "feedback_id": f"{tag}-1"},
        {"prediction_id": pid, "rating": 9, "feedback_id": f"{tag}-2"},
        {"prediction_id": pid, "label": "banana", "feedback_id": f"{tag}-3"},
        {"prediction_id": pid, "thumbs": "down", "feedback_id": f"{tag}-4"},
    ]
    response = http.post(f"{M}/feedback/batch", json={"items": items})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["stored"], result["rejected"]) == (3, 2)
    by_index = {item["index"]: item for item in result["items"]}
    assert sorted(by_index) == [0, 1, 2, 3, 4]
    assert [by_index[i]["status"] for i in range(5)] == ["stored", "stored", "rejected", "rejected", "stored"]
    assert by_index[2]["error"]["field"] == "items.2.rating"
    assert by_index[3]["error"]["field"] == "items.3.label"
    assert by_index[3]["error"]["code"] == "validation_error"
    for i in (0, 1, 4):
        assert http.get(f"{M}/feedback/{tag}-{i}").status_code == 200
    for i in (2, 3):
        problem(http.get(f"{M}/feedback/{tag}-{i}"), 404)
    # Refused items are counted by reason (other tests refuse more; the count only grows).
    line = 'learnloop_feedback_rejected_total{code="validation_error",model="m"}'
    counted = [ln for ln in http.get("/metrics").text.splitlines() if ln.startswith(line)]
    assert counted and float(counted[0].split()[-1]) >= 2, counted


# -- admin routes ----------------------------------------------------------------------------


def wait_for_job(http: httpx.Client, job_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(finished, timeout=60, interval=0.2, what=f"job {job_id}")
    return result


def test_admin_routes_need_the_api_key(http: httpx.Client, bare: httpx.Client) -> None:
    key = {"X-API-Key": API_KEY}
    for path in (f"{M}/retrain", f"{M}/versions/1/promote", f"{M}/rollback"):
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = bare.post(path, headers=headers)
            assert problem(response, 401)["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        assert problem(http.post(path), 403)["code"] == "forbidden"  # a key, without the admin scope
    assert http.get("/v1/jobs", params={"model": "m"}).json() == []  # the refused retrain queued nothing

    accepted = http.post(f"{M}/retrain", headers=key, json={"reason": "test"})
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(http, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["requested_by"] == "api-key"
    version = job["result"]["version"]

    promoted = bare.post(  # a retrain with no feedback is rejected by the gate: forced here
        f"{M}/versions/{version}/promote", headers={"Authorization": f"Bearer {API_KEY}"}, json={"force": True}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["champion_version"] == version
    rolled = http.post(f"{M}/rollback", headers=key, json={"reason": "test done"})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["champion_version"] == 1
    assert http.post(f"{M}/predict", json={"text": "fine"}).json()["version"] == 1


def test_reads_and_feedback_need_a_key_but_not_the_admin_key(http: httpx.Client, bare: httpx.Client) -> None:
    for method, path in (("GET", M), ("GET", "/v1/models"), ("POST", f"{M}/predict"), ("POST", f"{M}/feedback")):
        assert problem(bare.request(method, path, json={"text": "x"}), 401)["code"] == "unauthorized"
    assert bare.get("/health").status_code == 200
    assert http.get(M).status_code == 200
    listed = http.get("/v1/models")  # Model is unhashable (it holds dicts): this once answered 500
    assert listed.status_code == 200 and [m["name"] for m in listed.json()] == ["m"], listed.text
    assert http.get(f"{M}/versions/1").status_code == 200
    assert http.post(f"{M}/feedback", json={"text": "Solid build.", "label": "1"}).status_code == 201


def test_policy_changes_need_the_key_and_are_validated(http: httpx.Client) -> None:
    key = {"X-API-Key": API_KEY}
    assert problem(http.patch(f"{M}/policy", json={"changes": {"alpha": 0.01}}), 403)["code"] == "forbidden"
    invalid(http.patch(f"{M}/policy", headers=key, json={"changes": {"alpha": 2}}), "policy.alpha")
    invalid(http.patch(f"{M}/policy", headers=key, json={"changes": {"alhpa": 0.01}}), "policy")
    changed = http.patch(f"{M}/policy", headers=key, json={"changes": {"min_recent_gain": 0.01}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["policy"]["min_recent_gain"] == 0.01
    assert http.get(M).json()["policy"]["min_recent_gain"] == 0.01


def test_policy_value_of_the_wrong_type_is_422(http: httpx.Client) -> None:
    response = http.patch(f"{M}/policy", headers={"X-API-Key": API_KEY}, json={"changes": {"retrain_every": "often"}})
    invalid(response, "policy.retrain_every")


def test_batch_predictions_are_logged_with_each_items_own_subject(http: httpx.Client, server: LiveServer) -> None:
    subjects = ["alice", "bob", None]
    items = [{"text": f"Sentence for {s}", **({"subject": s} if s else {})} for s in subjects]
    response = http.post(f"{M}/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    ids = [item["prediction_id"] for item in response.json()["items"]]
    db = Database(server.database_url)
    try:

        def stored() -> list[Prediction] | None:
            with db.read() as conn:
                rows = [prediction_repo.get_prediction(conn, pid) for pid in ids]
            return None if None in rows else rows  # type: ignore[return-value]

        rows = wait_for(stored, timeout=10, what="the prediction log")
    finally:
        db.dispose()
    assert [row.subject for row in rows] == [hash_subject(s) for s in subjects]


# -- serve refuses to be exposed without a key -------------------------------------------------


def test_serve_on_a_public_interface_without_a_key_exits_with_a_clear_message(tmp_path: Path) -> None:
    args = [
        learnloop_executable(),
        "serve",
        "--home",
        str(tmp_path / "home"),
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
    ]
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=30, env=subprocess_env(), stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:  # run() has killed it already
        pytest.fail("learnloop serve --host 0.0.0.0 without an API key kept running")
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "refusing to serve" in output and "0.0.0.0" in output and "--api-key" in output


# -- rollouts --------------------------------------------------------------------------------


def test_rollout_routes_need_the_key_validate_and_answer_404_and_409(http: httpx.Client) -> None:
    key = {"X-API-Key": API_KEY}
    start = {"version": 1, "strategy": "canary"}
    assert problem(http.post(f"{M}/rollouts", json=start), 403)["code"] == "forbidden"
    for path in ("pause", "resume", "promote", "rollback", "stop"):
        assert problem(http.post(f"{M}/rollouts/1/{path}"), 403)["code"] == "forbidden"
    invalid(http.post(f"{M}/rollouts", headers=key, json={"version": 1, "strategy": "bluegreen"}), "strategy")
    invalid(http.post(f"{M}/rollouts", headers=key, json={**start, "share": 1.5}), "share")
    bad_steps = {**start, "settings": {"canary_steps": "50,5"}}
    invalid(http.post(f"{M}/rollouts", headers=key, json=bad_steps), "policy.canary_steps")
    assert problem(http.post(f"{M}/rollouts", headers=key, json={**start, "version": 99}), 404)["code"] == "not_found"
    champion = http.get(M).json()["champion_version"]
    against_itself = http.post(f"{M}/rollouts", headers=key, json={**start, "version": champion})
    assert problem(against_itself, 409)["code"] == "conflict"
    assert problem(http.get(f"{M}/rollouts/12345"), 404)["code"] == "not_found"
    assert problem(http.post(f"{M}/rollouts/12345/pause", headers=key), 404)["code"] == "not_found"
    assert http.get(f"{M}/rollouts").json() == [] or all(
        r["status"] != "running" for r in http.get(f"{M}/rollouts").json()
    )


def test_sample_size_helper_answers_and_refuses_nonsense(http: httpx.Client) -> None:
    answer = http.get("/v1/stats/sample-size", params={"baseline": 0.85, "delta": 0.02})
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert 3000 < plan["fixed_per_arm"] < plan["sequential_per_arm"]
    assert "per arm" in plan["summary"]
    problem(http.get("/v1/stats/sample-size", params={"baseline": 0.99, "delta": 0.02}), 422)
    problem(http.get("/v1/stats/sample-size", params={"baseline": 0.85, "delta": 0}), 422)


def test_training_data_export_needs_the_key(http: httpx.Client) -> None:
    path = f"{M}/versions/1/training-data"
    assert problem(http.get(path), 403)["code"] == "forbidden"
    answer = http.get(path, params={"format": "csv"}, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines()[0] == "text,label,source,feedback_id,validation_block"
    assert len(answer.text.splitlines()) > 500  # the bootstrap training rows
    invalid(http.get(path, params={"format": "xlsx"}, headers={"X-API-Key": API_KEY}), "format")
    assert problem(http.get(f"{M}/versions/99/training-data", headers={"X-API-Key": API_KEY}), 404)


def test_a_subject_is_exported_and_erased_over_http_with_the_key(http: httpx.Client) -> None:
    key = {"X-API-Key": API_KEY}
    answer = http.post(f"{M}/predict", json={"text": "Battery died in a day.", "subject": "carol@example.com"}).json()
    assert http.post(f"{M}/feedback", json={"prediction_id": answer["prediction_id"], "label": "0"}).status_code == 201
    path = "/v1/subjects/carol@example.com"
    assert problem(http.get(f"{path}/export"), 403)["code"] == "forbidden"
    assert problem(http.delete(path), 403)["code"] == "forbidden"
    exported = wait_for(
        lambda: (e := http.get(f"{path}/export", headers=key).json())["predictions"] and e,
        timeout=10,
        what="the prediction to be logged",
    )
    assert [p["id"] for p in exported["predictions"]] == [answer["prediction_id"]]
    assert len(exported["feedback"]) == 1  # feedback on the subject's prediction goes with it
    erased = http.delete(path, headers=key, params={"reason": "user request"})
    assert erased.status_code == 200, erased.text
    assert (erased.json()["predictions"], erased.json()["feedback"]) == (1, 1)
    assert http.get(f"{path}/export", headers=key).json()["predictions"] == []
    invalid(http.delete("/v1/subjects/" + "x" * 300, headers=key), "subject")
