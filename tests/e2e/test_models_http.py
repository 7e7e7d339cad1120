"""Creating and deleting models over real HTTP: ``POST /v1/models`` with a multipart upload or a
JSON body of rows (version 1 fitted in the server's training process), ``DELETE
/v1/models/{model}``; admin only, bad data a 422 naming the field, and nothing half-made."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import LiveServer, ServerLauncher, make_settings, uci_rows
from learnloop.domain import Scope
from learnloop.services import build_services
from learnloop.store import tables as t
from learnloop.store.db import Database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

API_KEY = "models-admin-key"
ADMIN = {"X-API-Key": API_KEY}
ROWS = uci_rows("yelp")[:400]


READER: list[str] = []  # a key of every scope but admin, made with the server's home


@pytest.fixture(scope="module")
def server(module_server_launcher: ServerLauncher, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    root = tmp_path_factory.mktemp("models-http")
    url = f"sqlite:///{root}/ll.db"
    services = build_services(make_settings(root / "home", url))
    try:
        READER.append(services.access.create("reader", [s for s in Scope if s != Scope.ADMIN], actor="test")[1])
    finally:
        services.close()
    return module_server_launcher.start(root / "home", url, "--api-key", API_KEY)


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """A client with a key of every scope but admin: admin calls send ``ADMIN``."""
    with server.client(timeout=120.0, headers={"X-API-Key": READER[-1]}) as client:
        yield client


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([("review", "sentiment"), *rows])
    return out.getvalue().encode()


def upload(
    http: httpx.Client, fields: dict[str, str], data: bytes, *, headers: dict[str, str] = ADMIN
) -> httpx.Response:
    return http.post("/v1/models", data=fields, files={"file": ("reviews.csv", data, "text/csv")}, headers=headers)


def rows_body(name: str, rows: list[tuple[str, str]] = ROWS, **extra: Any) -> dict[str, Any]:
    return {"name": name, "rows": [{"text": text, "label": label} for text, label in rows], **extra}


def problem(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def absent(http: httpx.Client, name: str) -> bool:
    return http.get(f"/v1/models/{name}").status_code == 404


def test_an_uploaded_csv_becomes_a_serving_model_without_stalling_the_server(
    http: httpx.Client, server: LiveServer
) -> None:
    fields = {
        "name": "reviews",
        "text_column": "review",
        "label_column": "sentiment",
        "golden_fraction": "0.25",
        "policy": json.dumps({"retrain_every": 40}),
    }
    answered: dict[str, Any] = {}
    done = threading.Event()

    def post() -> None:
        answered["response"] = upload(http, fields, csv_bytes(ROWS))
        done.set()

    thread = threading.Thread(target=post)
    thread.start()
    # While the creation runs (a training process starts, imports, fits, scores), /health answers.
    healthy_while_training = False
    with server.client(timeout=60.0) as other:
        while not done.is_set() and not healthy_while_training:
            healthy_while_training = other.get("/health").status_code == 200 and not done.is_set()
    thread.join(120)

    response = answered["response"]
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["champion_version"], body["labels"]) == ("reviews", 1, ["0", "1"])
    assert body["policy"]["retrain_every"] == 40
    assert body["data"] == {"source": "reviews.csv", "rows": 400, "skipped": {}, "train": 300, "golden": 100}
    assert healthy_while_training, "the server did not answer /health while a model was being created"
    answer = http.post("/v1/models/reviews/predict", json={"text": "The food was wonderful."})
    assert (answer.status_code, answer.json()["version"]) == (200, 1)


def test_a_json_body_of_rows_creates_a_model_with_its_family_parameters(http: httpx.Client) -> None:
    response = http.post("/v1/models", json=rows_body("rows-model", params={"C": 2.0}), headers=ADMIN)
    assert response.status_code == 201, response.text
    version = http.get("/v1/models/rows-model/versions/1").json()
    assert version["params"]["C"] == 2.0 and version["status"] == "champion"
    assert "rows-model" in [m["name"] for m in http.get("/v1/models").json()]


def test_label_names_in_a_json_body_or_an_upload_name_the_models_labels(http: httpx.Client) -> None:
    names = {"0": "negative", "1": "positive"}
    from_rows = http.post("/v1/models", json=rows_body("named-rows", ROWS[:200], label_names=names), headers=ADMIN)
    fields = {
        "name": "named-file",
        "text_column": "review",
        "label_column": "sentiment",
        "label_names": json.dumps(names),
    }
    from_file = upload(http, fields, csv_bytes(ROWS[:200]))

    for response, name in ((from_rows, "named-rows"), (from_file, "named-file")):
        assert response.status_code == 201, response.text
        assert response.json()["labels"] == ["negative", "positive"]
        answer = http.post(f"/v1/models/{name}/predict", json={"text": "The food was wonderful."}).json()
        assert answer["label"] in {"negative", "positive"}
        sent = {"prediction_id": answer["prediction_id"], "label": "positive"}
        assert http.post(f"/v1/models/{name}/feedback", json=sent).status_code == 201


def test_the_families_are_listed_with_their_parameters(http: httpx.Client) -> None:
    response = http.get("/v1/families")
    assert response.status_code == 200
    listed = {family["family"]: family for family in response.json()}
    assert {"tfidf-logreg", "embedding-logreg", "incremental"} <= set(listed)
    params = {p["name"]: p for p in listed["tfidf-logreg"]["parameters"]}
    assert params["C"] == {
        "name": "C",
        "type": "float",
        "default": 10.0,
        "description": "Inverse regularisation strength of the logistic regression.",
    }


def test_creating_needs_the_admin_key_and_a_free_name(http: httpx.Client) -> None:
    problem(http.post("/v1/models", json=rows_body("nokey")), 403, "forbidden")
    problem(upload(http, {"name": "nokey"}, csv_bytes(ROWS), headers={}), 403, "forbidden")
    problem(http.post("/v1/models", json=rows_body("nokey"), headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    assert absent(http, "nokey")
    assert http.post("/v1/models", json=rows_body("taken"), headers=ADMIN).status_code == 201
    problem(http.post("/v1/models", json=rows_body("taken", ROWS[:50]), headers=ADMIN), 409, "conflict", "name")


@pytest.mark.parametrize(
    ("send", "status", "code", "field"),
    [
        ("one class", 422, "data_error", "data"),
        ("a missing column", 422, "data_error", "text_column"),
        ("an unknown family", 422, "validation_error", "family"),
        ("an unknown parameter", 422, "validation_error", "params"),
        ("a parameter of the wrong type", 422, "validation_error", "params.C"),
        ("an empty text", 422, "validation_error", "rows.text"),
        ("an unknown form field", 422, "validation_error", "colour"),
        ("params that are not JSON", 422, "validation_error", "params"),
        ("no file part", 422, "validation_error", "file"),
        ("a bad name", 422, "validation_error", "name"),
        ("a label name for a value the data lacks", 422, "data_error", "label_names"),
        ("two values given one name", 422, "validation_error", "label_names"),
        ("label names that are not JSON", 422, "validation_error", "label_names"),
        ("label names of a generative model", 422, "validation_error", "label_names"),
        ("plain text", 415, "unsupported_media_type", None),
    ],
)
def test_bad_requests_are_problems_naming_the_field_and_leave_nothing(
    http: httpx.Client, send: str, status: int, code: str, field: str | None
) -> None:
    name = "bad-" + send.replace(" ", "-")[:40]
    columns = {"name": name, "text_column": "review", "label_column": "sentiment"}
    post = http.post
    one_class = [(text, "1") for text, _ in ROWS]
    no_file = {"other": ("x.csv", b"a,b\n")}
    requests = {
        "one class": lambda: post("/v1/models", json=rows_body(name, one_class), headers=ADMIN),
        "a missing column": lambda: upload(http, {**columns, "text_column": "text"}, csv_bytes(ROWS)),
        "an unknown family": lambda: post("/v1/models", json=rows_body(name, family="gpt"), headers=ADMIN),
        "an unknown parameter": lambda: upload(http, {**columns, "params": '{"depth": 3}'}, csv_bytes(ROWS)),
        "a parameter of the wrong type": lambda: post(
            "/v1/models", json=rows_body(name, params={"C": "2"}), headers=ADMIN
        ),
        "an empty text": lambda: post("/v1/models", json=rows_body(name, [("", "1"), *ROWS]), headers=ADMIN),
        "an unknown form field": lambda: upload(http, {**columns, "colour": "blue"}, csv_bytes(ROWS)),
        "params that are not JSON": lambda: upload(http, {**columns, "params": "C=2"}, csv_bytes(ROWS)),
        "no file part": lambda: post("/v1/models", data=columns, files=no_file, headers=ADMIN),
        "a bad name": lambda: post("/v1/models", json=rows_body("Not A Name"), headers=ADMIN),
        "a label name for a value the data lacks": lambda: post(
            "/v1/models", json=rows_body(name, label_names={"0": "negative", "2": "positive"}), headers=ADMIN
        ),
        "two values given one name": lambda: post(
            "/v1/models", json=rows_body(name, label_names={"0": "same", "1": "same"}), headers=ADMIN
        ),
        "label names that are not JSON": lambda: upload(
            http, {**columns, "label_names": "0=neg,1=pos"}, csv_bytes(ROWS)
        ),
        "label names of a generative model": lambda: post(
            "/v1/models",
            json={"name": name, "task": "generation", "backend": "external", "label_names": {"0": "negative"}},
            headers=ADMIN,
        ),
        "plain text": lambda: post("/v1/models", content=b"t,l", headers={**ADMIN, "content-type": "text/plain"}),
    }
    problem(requests[send](), status, code, field)
    assert absent(http, name)


def test_after_bad_data_the_same_name_can_be_created(http: httpx.Client) -> None:
    wordless = [(c, "ab"[i % 2]) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789")]
    body = problem(http.post("/v1/models", json=rows_body("again", wordless), headers=ADMIN), 422, "data_error", "data")
    assert "empty vocabulary" in body["detail"]
    assert absent(http, "again")
    assert http.post("/v1/models", json=rows_body("again"), headers=ADMIN).status_code == 201


def test_an_upload_over_the_size_limit_is_refused_whether_declared_or_streamed(
    http: httpx.Client, server: LiveServer
) -> None:
    url = httpx.URL(server.url)
    with socket.create_connection((url.host, url.port or 80), timeout=30) as sock:  # a length no client sends
        sock.sendall(
            f"POST /v1/models HTTP/1.1\r\nHost: {url.host}\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10**9}\r\n\r\n{{}}".encode()
        )
        answer = b""
        while b"payload_too_large" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        head = answer.decode(errors="replace")
    assert head.startswith("HTTP/1.1 413 "), head
    assert "payload_too_large" in head

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "huge", "rows": ['
        row = b'{"text": "' + b"x" * 1_000_000 + b'", "label": "a"},'
        for _ in range(70):
            yield row

    streamed = http.post("/v1/models", content=chunks(), headers={**ADMIN, "content-type": "application/json"})
    problem(streamed, 413, "payload_too_large")
    assert absent(http, "huge")


def test_deleting_a_model_over_http_removes_it_everywhere_and_is_audited(
    http: httpx.Client, server: LiveServer
) -> None:
    assert http.post("/v1/models", json=rows_body("gone"), headers=ADMIN).status_code == 201
    answers = [http.post("/v1/models/gone/predict", json={"text": text}).json() for text, _ in ROWS[:20]]
    for answer in answers:
        sent = {"prediction_id": answer["prediction_id"], "label": "1"}
        assert http.post("/v1/models/gone/feedback", json=sent).status_code == 201
    problem(http.delete("/v1/models/gone"), 403, "forbidden")

    response = http.delete("/v1/models/gone", params={"reason": "test over"}, headers=ADMIN)

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["model"], report["versions"], report["rows"]["feedback"]) == ("gone", [1], 20)
    assert report["rows"]["predictions"] == 20 and report["artifacts"] >= 1
    problem(http.post("/v1/models/gone/predict", json={"text": "hello"}), 404, "not_found")
    assert absent(http, "gone")
    problem(http.delete("/v1/models/gone", headers=ADMIN), 404, "not_found")
    db = Database(server.database_url)
    try:
        with db.read() as conn:
            events = conn.execute(select(t.events.c.kind, t.events.c.reason).where(t.events.c.model == "gone")).all()
            left = {
                table.name: conn.execute(select(table).where(table.c.model == "gone")).first()
                for table in t.metadata.sorted_tables
                if "model" in table.c and table.name != "events"
            }
    finally:
        db.dispose()
    assert events[-1] == ("model_deleted", "test over")
    assert {name: row for name, row in left.items() if row is not None} == {}
    artifacts = server.home / "artifacts"
    assert not [p for p in artifacts.rglob("*") if "gone" in p.relative_to(artifacts).parts]


def test_the_openapi_document_shows_both_bodies(http: httpx.Client) -> None:
    operation = http.get("/openapi.json").json()["paths"]["/v1/models"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert "file" in content["multipart/form-data"]["schema"]["required"]
    assert "$ref" not in json.dumps(content)
    assert set(http.get("/openapi.json").json()["paths"]["/v1/models/{model}"]) >= {"get", "delete"}
