"""The Python client against a real server (``learnloop serve`` on 127.0.0.1, one per module):
predictions, feedback stored once however often it is retried, the answers worth a label, a
model's status, logged generations, errors raised with the server's problem code, a real
overload retried after its Retry-After, the asyncio client, the analytics (fairness,
explanations, error patterns, the value of retrains) and job control, and every result type
checked against the server's OpenAPI document."""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from conftest import LiveServer, ServerLauncher, create_model, make_settings, wait_for
from learnloop.client import (
    APIError,
    AsyncClient,
    Client,
    RetryPolicy,
    TransportError,
    reports,
    results,
)
from learnloop.domain import Scope
from learnloop.models import NewModel
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

API_KEY = "client-test-key"
USER_KEY: list[str] = []  # made with the server's home


def user_key() -> str:
    return USER_KEY[-1]


FAST = RetryPolicy(base=0.05, factor=2.0, cap=0.2, max_attempts=3, jitter=0.0, max_retry_after=5.0)
PREDICT_SLOTS = 64  # config.Admission().predict.concurrency: the server's default bound


@pytest.fixture(scope="module")
def server(module_server_launcher: ServerLauncher, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    root = tmp_path_factory.mktemp("client")
    url = f"sqlite:///{root}/ll.db"
    services = build_services(make_settings(root / "home", url))
    try:
        create_model(services, "m")
        services.creation.create(NewModel("ext", task="generation", backend="external"), None, actor="test")
        # an application's key: everything but admin (the server has the admin key too)
        USER_KEY.append(services.access.create("app", [s for s in Scope if s != Scope.ADMIN], actor="test")[1])
    finally:
        services.close()
    # No worker: a queued retrain stays queued, so the job actions are each the database's effect.
    return module_server_launcher.start(root / "home", url, "--api-key", API_KEY, "--no-worker")


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, api_key=user_key(), timeout=10.0, retry=FAST) as made:
        yield made


class Relay(httpx.BaseTransport):
    """Sends every request to the real server and records the answers' statuses; the first
    ``lose`` answers are lost on the way back (the server did the work, the client hears a
    dropped connection), and ``on_answer`` sees each answer that arrives."""

    def __init__(self, lose: int = 0, on_answer: Callable[[httpx.Response], None] | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.on_answer = on_answer
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.statuses.append(response.status_code)
        if self.lose > 0:
            self.lose -= 1
            raise httpx.ReadError("the answer was lost", request=request)
        if self.on_answer is not None:
            self.on_answer(response)
        return response

    def close(self) -> None:
        self.inner.close()


def answered(relay: Relay) -> list[int]:
    """The statuses a relay saw, but for overload refusals (a loaded test machine may refuse
    now and then; the client retries them)."""
    return [status for status in relay.statuses if status != 503]


def feedback_total(client: Client, model: str = "m") -> int:
    return sum(client.status(model).feedback_counts.values())


def test_predict_and_predict_batch_answer_typed_predictions(client: Client) -> None:
    one = client.predict("m", "The food was great and the staff lovely.", subject="u1")
    assert isinstance(one, results.Prediction)
    assert (one.model, one.version, one.route) == ("m", 1, "champion")
    assert one.label in one.probabilities and abs(sum(one.probabilities.values()) - 1) < 1e-6
    texts = ["Awful service.", "Loved every minute.", "Cold food, rude waiter."]
    many = client.predict_batch("m", texts, subjects=["u1", None, "u2"])
    assert [p.model for p in many] == ["m"] * 3 and len({p.prediction_id for p in many}) == 3
    assert [p.label for p in many] == [client.predict("m", t).label for t in texts]  # in order


def test_feedback_gets_a_key_and_the_same_key_twice_is_one_event(client: Client) -> None:
    prediction = client.predict("m", "Decent pizza.")
    before = feedback_total(client)
    made = client.feedback("m", prediction.prediction_id, label="1")
    assert made.client_feedback_id and made.kind == "label" and made.prediction_id == prediction.prediction_id
    first = client.feedback("m", prediction.prediction_id, thumbs="up", feedback_id="click-42")
    again = client.feedback("m", prediction.prediction_id, thumbs="up", feedback_id="click-42")
    assert again == first and first.client_feedback_id == "click-42"
    assert feedback_total(client) == before + 2
    with pytest.raises(APIError) as reused:  # the key names another event: refused, not overwritten
        client.feedback("m", prediction.prediction_id, thumbs="down", feedback_id="click-42")
    assert (reused.value.status, reused.value.code, reused.value.field) == (409, "idempotency_conflict", "feedback_id")


def test_feedback_given_by_mistake_is_retracted_by_an_admin_and_counts_no_more(
    client: Client, server: LiveServer
) -> None:
    prediction = client.predict("m", "Soggy fries.")
    before = feedback_total(client)
    mistake = client.feedback("m", prediction.prediction_id, label="1", feedback_id="oops-1")
    with pytest.raises(APIError) as anonymous:
        client.retract_feedback("m", mistake.feedback_id)
    assert (anonymous.value.status, anonymous.value.code) == (403, "forbidden")  # not an admin key

    with Client(server.url, api_key=API_KEY, retry=FAST) as admin:
        taken = admin.retract_feedback("m", "oops-1", reason="wrong label")  # the client's key names it too
        assert isinstance(taken, results.FeedbackRetracted) and taken.feedback == mistake
        assert taken.in_snapshots == []
        assert feedback_total(client) == before
        with pytest.raises(APIError) as again:
            admin.retract_feedback("m", mistake.feedback_id)
        assert (again.value.status, again.value.code) == (404, "not_found")
    with server.client(headers={"X-API-Key": user_key()}) as http:
        events = http.get("/v1/models/m/events", params={"limit": 5}).json()
    assert (events[0]["kind"], events[0]["reason"]) == ("feedback_retracted", "wrong label")
    # the key is free again: the event can be given anew, now rightly
    assert client.feedback("m", prediction.prediction_id, label="0", feedback_id="oops-1").label == "0"


def test_feedback_whose_answer_was_lost_is_sent_again_and_stored_once(server: LiveServer) -> None:
    relay = Relay(lose=1)
    with (
        Client(server.url, api_key=user_key(), retry=FAST, transport=relay) as lossy,
        Client(server.url, api_key=user_key()) as plain,
    ):
        prediction = plain.predict("m", "Fine coffee.")
        before = feedback_total(plain)
        stored = lossy.feedback("m", prediction.prediction_id, rating=4)
        assert answered(relay) == [201, 201]  # stored, its answer lost; sent again: the same event
        assert feedback_total(plain) == before + 1 and stored.rating == 4

        relay.lose = 1
        with pytest.raises(TransportError, match="ReadError"):  # a prediction is not sent twice
            lossy.predict("m", "Once only.")
        assert answered(relay)[2:] == [200]


def test_feedback_batch_gives_each_item_a_key_and_reports_rejections_by_index(client: Client) -> None:
    a, b = client.predict_batch("m", ["Nice.", "Bad."])
    result = client.feedback_batch(
        "m", [{"prediction_id": a.prediction_id, "label": "1"}, {"prediction_id": b.prediction_id, "rating": 9}]
    )
    assert (result.stored, result.rejected) == (1, 1)
    stored, rejected = result.items
    assert stored.status == "stored" and stored.client_feedback_id
    assert rejected.index == 1 and rejected.error is not None and rejected.error.field == "items.1.rating"


def test_ask_lists_answers_worth_a_label_and_status_summarises_the_model(client: Client) -> None:
    client.predict_batch("m", ["It was fine I guess.", "Not sure how I feel.", "Okay-ish food."])
    asked = client.ask("m", limit=2, strategy="entropy")
    assert (asked.model, asked.version, asked.strategy) == ("m", 1, "entropy")
    assert 1 <= len(asked.items) <= 2 and asked.considered >= len(asked.items)
    assert all(isinstance(item, results.AskItem) and item.label in item.probabilities for item in asked.items)
    status = client.status("m")
    assert (status.name, status.task, status.labels) == ("m", "binary", ["0", "1"])
    assert status.champion_version == status.deployment.champion_version == 1
    assert [v.version for v in status.versions] == [1] and status.rollout is None


def test_errors_are_raised_with_the_problems_status_code_and_field(client: Client, server: LiveServer) -> None:
    with pytest.raises(APIError) as unknown:
        client.predict("nope", "hi")
    assert (unknown.value.status, unknown.value.code) == (404, "not_found")
    with pytest.raises(APIError) as empty:
        client.predict("m", "")
    assert (empty.value.status, empty.value.code, empty.value.field) == (422, "validation_error", "text")
    assert empty.value.problem["errors"] and "text" in str(empty.value)
    with pytest.raises(APIError) as anonymous:
        client.retrain("ext")
    assert (anonymous.value.status, anonymous.value.code) == (403, "forbidden")  # not an admin key
    with Client(server.url, api_key=API_KEY) as admin, pytest.raises(APIError) as refused:
        admin.retrain("ext")  # past the key: an external model has nothing to retrain
    assert (refused.value.status, refused.value.code) == (409, "not_supported")
    with Client("http://127.0.0.1:9", retry=FAST) as nowhere, pytest.raises(TransportError, match="ConnectError"):
        nowhere.status("m")


def test_a_generation_made_elsewhere_is_logged_and_takes_feedback(client: Client) -> None:
    question = "Can you fix my sword?"
    logged = client.log_generation("ext", "Aye, leave it on the anvil.", prompt=question)
    assert (logged.model, logged.version, logged.route) == ("ext", 1, "champion")
    other = client.log_generation(
        "ext",
        "No.",
        messages=[{"role": "user", "content": question}],
        source_model="claude-sonnet",
        usage={"prompt_tokens": 12, "completion_tokens": 1},
        latency_ms=310.5,
    )
    rated = client.feedback("ext", other.prediction_id, rating=2)
    assert (rated.kind, rated.rating) == ("rating", 2)
    preferred = client.feedback(
        "ext", chosen_prediction_id=logged.prediction_id, rejected_prediction_id=other.prediction_id
    )
    assert preferred.kind == "preference" and preferred.rejected_prediction_id == other.prediction_id
    with pytest.raises(APIError) as elsewhere:
        client.generate("ext", "Hello?")
    assert elsewhere.value.code == "not_supported"


# -- analytics and job control --------------------------------------------------------------------

GROUPED = [
    ("Wonderful food and a friendly welcome.", "1", "a"),
    ("The soup was cold and the waiter rude.", "0", "a"),
    ("Best burger in town.", "1", "a"),
    ("Terrible, never again.", "0", "b"),
    ("Lovely place, lovely staff.", "1", "b"),
    ("Overpriced and bland.", "0", "b"),
]


def test_fairness_explanations_error_patterns_value_and_job_control(client: Client, server: LiveServer) -> None:
    texts = [t for t, _, _ in GROUPED]
    answers = client.predict_batch("m", texts, metadata=[{"group": g} for _, _, g in GROUPED])
    client.feedback_batch(
        "m", [{"prediction_id": a.prediction_id, "label": y} for a, (_, y, _) in zip(answers, GROUPED, strict=True)]
    )

    def grouped() -> reports.FairnessField | None:  # no version listed until a labelled answer is joined
        versions = client.fairness("m", fields=["group"]).versions
        fields = versions[0].fields if versions else []
        return fields[0] if fields and fields[0].n == len(GROUPED) else None

    by_group = wait_for(grouped, timeout=30, interval=0.2, what="the labelled answers to be joined")
    assert [g.group for g in by_group.groups] == ["a", "b"] and [g.n for g in by_group.groups] == [3, 3]
    for group in by_group.groups:
        mine = [(y, a.label) for a, (_, y, g) in zip(answers, GROUPED, strict=True) if g == group.group]
        assert group.accuracy.value == pytest.approx(sum(y == p for y, p in mine) / 3)

    explained = client.explain("m", answers[0].prediction_id)
    assert (explained.prediction_id, explained.method) == (answers[0].prediction_id, "linear")
    assert explained.label == answers[0].label
    assert explained.text == texts[0] and [t.text for t in explained.tokens][:2] == ["Wonderful", "food"]
    fresh = client.explain_text("m", texts[0])
    assert fresh.prediction_id is None and fresh.probabilities == pytest.approx(explained.probabilities)
    top = client.weights("m", 1, top=5)
    assert set(top.top) == {"0", "1"} and all(len(terms) == 5 for terms in top.top.values())
    same = client.weight_changes("m", 1, 1, top=3)
    assert (same.new_terms, same.dropped_terms) == (0, 0)
    assert all(c.change == 0 for changes in same.labels.values() for c in changes.gained + changes.lost)
    patterns = client.error_patterns("m", version=1)
    assert (patterns.model, patterns.version) == ("m", 1) and patterns.judged >= len(GROUPED)
    value = client.retrain_value("m")
    assert [(r.version, r.verdict) for r in value.retrains] == [(1, "first version")]

    with Client(server.url, api_key=API_KEY, retry=FAST) as admin:
        assert admin.check_error_patterns("m").patterns.model == "m"
        job = admin.retrain("m", reason="client test")
        paused = admin.pause_job(job.job_id, reason="not now")
        assert (paused.job_id, paused.status) == (job.job_id, "paused") and "not now" in (paused.message or "")
        with pytest.raises(APIError) as twice:
            admin.pause_job(job.job_id)
        assert (twice.value.status, twice.value.code) == (409, "conflict")
        assert admin.resume_job(job.job_id).status == "queued"
        assert admin.cancel_job(job.job_id, reason="done testing").status == "cancelled"
        assert client.job(job.job_id).status == "cancelled"
    with pytest.raises(APIError) as refused:
        client.pause_job(job.job_id)
    assert (refused.value.status, refused.value.code) == (403, "forbidden")  # not an admin key


# -- a real overload ---------------------------------------------------------------------------


class SlowClients:
    """Connections that send a prediction's headers and never its body: each holds one of the
    server's predict slots until it is closed (the edge guard admits, then waits for the body)."""

    def __init__(self, url: str, n: int) -> None:
        host, port = httpx.URL(url).host, httpx.URL(url).port
        head = f"POST /v1/models/m/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        self.sockets = [socket.create_connection((host, port)) for _ in range(n)]
        for s in self.sockets:
            s.sendall(f"{head}Content-Length: 100\r\n\r\n{{".encode())

    def first_answer(self, timeout: float) -> bytes:
        """The first answer any of them gets: a refusal, once every slot is taken."""
        with selectors.DefaultSelector() as waiting:
            for s in self.sockets:
                waiting.register(s, selectors.EVENT_READ)
            ready = waiting.select(timeout)
        assert ready, "no slow connection was refused: the predict slots were never all taken"
        return ready[0][0].fileobj.recv(4096)  # type: ignore[union-attr]

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets = []


def test_an_overloaded_server_is_retried_after_its_retry_after_then_answers(server: LiveServer) -> None:
    slow = SlowClients(server.url, PREDICT_SLOTS + 1)
    try:
        assert b" 503 " in slow.first_answer(timeout=30)  # one too many: every slot is held now
        impatient = Client(server.url, api_key=user_key(), retry=RetryPolicy(max_attempts=2, max_retry_after=5))
        with impatient, pytest.raises(APIError) as refused:
            impatient.predict("m", "Still there?")
        error = refused.value
        assert (error.status, error.code, error.retry_after) == (503, "overloaded", 1.0)
        assert error.problem["route_class"] == "predict" and error.problem["reason"] in ("full", "busy")

        def free_the_slots(answer: httpx.Response) -> None:
            if answer.status_code == 503:
                slow.close()

        relay = Relay(on_answer=free_the_slots)
        with Client(server.url, api_key=user_key(), transport=relay) as patient:
            answer = patient.predict("m", "Still there?")
        assert relay.statuses[0] == 503 and answered(relay) == [200] and answer.model == "m"
    finally:
        slow.close()


# -- asyncio -------------------------------------------------------------------------------------


def test_the_async_client_does_the_same_over_asyncio(server: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.url, api_key=user_key(), retry=FAST) as client:
            texts = [f"Meal number {i} was good." for i in range(5)]
            answers = await asyncio.gather(*(client.predict("m", t) for t in texts))
            assert len({a.prediction_id for a in answers}) == 5
            batch = await client.predict_batch("m", texts[:2])
            first = await client.feedback("m", batch[0].prediction_id, label="1", feedback_id="async-1")
            assert await client.feedback("m", batch[0].prediction_id, label="1", feedback_id="async-1") == first
            result = await client.feedback_batch(
                "m", [{"prediction_id": a.prediction_id, "thumbs": "up"} for a in answers]
            )
            assert result.stored == 5
            assert (await client.status("m")).name == "m"
            async with AsyncClient(server.url, api_key=API_KEY, retry=FAST) as admin:
                assert (await admin.retract_feedback("m", "async-1")).feedback == first
            assert (await client.ask("m", limit=3)).model == "m"
            logged = await client.log_generation("ext", "Hello, traveller.", prompt="Hi")
            assert logged.model == "ext"
            with pytest.raises(APIError) as unknown:
                await client.status("nope")
            assert unknown.value.code == "not_found"
            explained, weights, patterns, value, fairness = await asyncio.gather(
                client.explain_text("m", "Good food."),
                client.weights("m", 1, top=2),
                client.error_patterns("m"),
                client.retrain_value("m"),
                client.fairness("m", fields=["group"]),
            )
            assert (explained.version, weights.version, patterns.model, value.model) == (1, 1, "m", "m")
            assert fairness.fields == ["group"]
            assert (await client.explain("m", answers[0].prediction_id)).prediction_id == answers[0].prediction_id
            assert (await client.weight_changes("m", 1, 1)).a == 1
            async with AsyncClient(server.url, api_key=API_KEY, retry=FAST) as admin:
                assert (await admin.check_error_patterns("m")).patterns.model == "m"
                job = await admin.retrain("m")
                assert (await admin.pause_job(job.job_id)).status == "paused"
                assert (await admin.resume_job(job.job_id)).status == "queued"
                assert (await admin.cancel_job(job.job_id)).status == "cancelled"
                assert (await client.job(job.job_id)).status == "cancelled"

    asyncio.run(scenario())


# -- the result types match the server's schemas -------------------------------------------------

SERVER_SCHEMA = {
    results.Prediction: "PredictionPublic",
    results.Feedback: "FeedbackPublic",
    results.ItemError: "ItemError",
    results.FeedbackItemResult: "FeedbackItemResult",
    results.FeedbackBatchResult: "FeedbackBatchResult",
    results.FeedbackRetracted: "FeedbackRetracted",
    results.AskItem: "AskItemPublic",
    results.AskResult: "AskPublic",
    results.VersionSummary: "VersionSummary",
    results.Deployment: "DeploymentPublic",
    results.Rollout: "RolloutPublic",
    results.Job: "JobPublic",
    results.JobAccepted: "JobAccepted",
    results.ModelStatus: "ModelDetail",
    results.Generation: "GeneratePublic",
    results.LoggedGeneration: "GenerationLogged",
    reports.Estimate: "EstimatePublic",
    reports.FairnessGroup: "GroupPublic",
    reports.FairnessGap: "GapPublic",
    reports.FairnessField: "FieldPublic",
    reports.VersionFairness: "VersionFairnessPublic",
    reports.Fairness: "FairnessPublic",
    reports.TermContribution: "TermContributionPublic",
    reports.Token: "TokenPublic",
    reports.Explanation: "ExplanationPublic",
    reports.TermWeight: "TermWeightPublic",
    reports.VersionWeights: "VersionWeightsPublic",
    reports.WeightChange: "WeightChangePublic",
    reports.LabelChanges: "LabelChangesPublic",
    reports.WeightsDiff: "WeightsDiffPublic",
    reports.Excess: "ExcessPublic",
    reports.PatternExample: "PatternExamplePublic",
    reports.ErrorPattern: "ErrorPatternPublic",
    reports.ErrorSlice: "ErrorSlicePublic",
    reports.ErrorPatterns: "ErrorPatternsPublic",
    reports.ErrorPatternCheck: "ErrorPatternCheckPublic",
    reports.TrainingCost: "TrainingCostPublic",
    reports.OnlineGain: "OnlineGainPublic",
    reports.RetrainValue: "RetrainValuePublic",
    reports.ValueReport: "RetrainValueReport",
}


def shape(schema: dict[str, Any], names: dict[str, str]) -> Any:
    """A property's type without its documentation and bounds; references by server name."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1].removesuffix("-Output")
        return ("ref", names.get(name, name))
    if "anyOf" in schema:
        return frozenset(shape(s, names) for s in schema["anyOf"])
    kind = schema.get("type")
    inner = schema.get("items") or schema.get("additionalProperties")
    enum = tuple(sorted(schema["enum"])) if "enum" in schema else None
    return (kind, schema.get("format"), enum, shape(inner, names) if isinstance(inner, dict) else None)


def test_every_result_type_matches_the_servers_openapi_schema(client: Client, server: LiveServer) -> None:
    with server.client() as http:
        components = http.get("/openapi.json").json()["components"]["schemas"]
    client_names = {cls.__name__: name for cls, name in SERVER_SCHEMA.items()}
    covered = {
        cls
        for module in (results, reports)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel)
    }
    assert covered - {BaseModel, results._Result} == set(SERVER_SCHEMA)  # every result type is checked
    for cls, name in SERVER_SCHEMA.items():
        server_schema = components.get(name) or components[f"{name}-Output"]
        mine = cls.model_json_schema(ref_template="#/$defs/{model}")
        theirs, ours = server_schema["properties"], mine["properties"]
        assert set(ours) <= set(theirs), f"{cls.__name__} reads fields {set(ours) - set(theirs)} {name} lacks"
        assert set(mine.get("required", [])) <= set(server_schema.get("required", [])), cls.__name__
        for field in ours:
            assert shape(ours[field], client_names) == shape(theirs[field], {}), f"{cls.__name__}.{field}"
