"""The Python client's pure parts: what each call sends, which failures it sends again and after
how long, and how an error answer becomes an ``APIError`` (real ``httpx`` responses and
exceptions, no server; ``tests/e2e/test_client_http.py`` runs the client against one)."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from types import ModuleType

import httpx
import pytest

import learnloop
import learnloop.client
from learnloop.client import APIError, AsyncClient, Client, ClientError, RetryPolicy, TransportError, calls
from learnloop.client.errors import api_error
from learnloop.client.sending import DEFAULT_RETRY, Retrying, read

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/models/m/predict")
NO_JITTER = RetryPolicy(base=0.5, factor=2.0, cap=8.0, max_attempts=4, jitter=0.0, max_retry_after=30.0)


def problem(status: int, code: str, retry_after: str | None = None, **extra: object) -> httpx.Response:
    body = {"type": f"https://learnloop.dev/problems/{code}", "title": code.replace("_", " "), "status": status}
    body |= {"detail": f"it went {code}", "code": code, **extra}
    headers = {"content-type": "application/problem+json"} | ({"retry-after": retry_after} if retry_after else {})
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


def test_the_package_exports_what_it_lists_and_the_root_exports_the_clients_lazily() -> None:
    public = {name for name, value in vars(learnloop.client).items() if not name.startswith("_")}
    assert sorted(learnloop.client.__all__) == sorted(
        n for n in public if not isinstance(vars(learnloop.client)[n], ModuleType)
    )
    assert learnloop.Client is Client and learnloop.AsyncClient is AsyncClient
    with pytest.raises(AttributeError, match="Nope"):
        learnloop.Nope  # noqa: B018


def test_importing_learnloop_loads_no_client_and_the_client_loads_no_server() -> None:
    probe = (
        "import sys, learnloop; before = set(sys.modules); from learnloop import Client; "
        "print(','.join(sorted(before))); print(','.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    before, after = (set(line.split(",")) for line in out.stdout.splitlines())
    assert not {"httpx", "pydantic", "learnloop.client"} & before
    assert {"httpx", "pydantic"} <= after
    assert not {"numpy", "sqlalchemy", "fastapi", "starlette", "uvicorn", "sklearn", "scipy", "torch"} & after


def test_feedback_gets_an_idempotency_key_made_once_and_a_given_key_is_kept() -> None:
    made = calls.feedback("m", "p1", {"label": "1"})
    assert made.resend_safe and made.path == "/v1/models/m/feedback"
    assert made.body["prediction_id"] == "p1" and made.body["label"] == "1"
    assert uuid.UUID(made.body["feedback_id"])  # one key in the call: every resend of it carries the same
    assert calls.feedback("m", "p1", {"label": "1"}).body["feedback_id"] != made.body["feedback_id"]
    assert calls.feedback("m", None, {"text": "t", "label": "1", "feedback_id": "mine"}).body == {
        "text": "t",
        "label": "1",
        "feedback_id": "mine",
    }
    batch = calls.feedback_batch("m", [{"prediction_id": "a", "thumbs": "up"}, {"feedback_id": "k", "rating": 2}])
    keys = [item["feedback_id"] for item in batch.body["items"]]
    assert keys[1] == "k" and uuid.UUID(keys[0]) and batch.resend_safe


def test_analytics_reads_are_resent_and_job_actions_are_not() -> None:
    fairness = calls.fairness("m", ["region", "plan"])
    assert (fairness.method, fairness.params, fairness.resend_safe) == ("GET", {"fields": "region,plan"}, True)
    assert calls.fairness("m", None).params is None
    with pytest.raises(TypeError, match="not one string"):
        calls.fairness("m", "region")
    explain = calls.explain_prediction("m", "p/1")
    assert explain.path == "/v1/models/m/predictions/p%2F1/explain" and explain.resend_safe
    assert calls.explain_text("m", "hi", None).body == {"text": "hi"}  # nothing logged: safe twice
    assert calls.weight_changes("m", 1, 2, 5).params == {"a": 1, "b": 2, "top": 5}
    assert calls.error_patterns("m", None, None).params == {}
    pause = calls.job_action("j/1", "pause", "later")
    assert (pause.method, pause.path, pause.body) == ("POST", "/v1/jobs/j%2F1/pause", {"reason": "later"})
    assert not pause.resend_safe and not calls.check_error_patterns("m").resend_safe  # a second would differ


def test_calls_send_only_what_is_set_and_refuse_a_malformed_request_before_sending() -> None:
    assert calls.predict("a b/c", "hi", None).path == "/v1/models/a%20b%2Fc/predict"
    assert calls.predict("m", "hi", None).body == {"text": "hi"} and not calls.predict("m", "hi", None).resend_safe
    batch = calls.predict_batch("m", ["x", "y"], ["u1", None])
    assert batch.body == {"items": [{"text": "x", "subject": "u1"}, {"text": "y"}]}
    with pytest.raises(TypeError, match="not one string"):
        calls.predict_batch("m", "xy", None)
    with pytest.raises(ValueError, match="2 texts but 1 subjects"):
        calls.predict_batch("m", ["x", "y"], ["u"])
    assert calls.generate("m", "hi", {"max_new_tokens": 8}).body == {"prompt": "hi", "max_new_tokens": 8}
    for bad in ({}, {"messages": [{"role": "user", "content": "hi"}]}):
        with pytest.raises(ValueError, match="either a prompt or messages"):
            calls.generate("m", "hi" if bad else None, bad)
    logged = calls.log_generation("m", "Aye.", {"messages": ({"role": "user", "content": "Hi"},)})
    assert logged.body == {"messages": [{"role": "user", "content": "Hi"}], "response": "Aye."}
    assert calls.ask("m", 5, "entropy", 100).params == {"limit": 5, "strategy": "entropy", "window": 100}
    retract = calls.retract_feedback("m", "click/42", "wrong")
    assert (retract.method, retract.path, retract.params) == (
        "DELETE",
        "/v1/models/m/feedback/click%2F42",
        {"reason": "wrong"},
    )
    assert calls.retract_feedback("m", "f", None).params == {} and not retract.resend_safe  # a resend would be a 404


def test_an_overloaded_answer_is_retried_after_its_retry_after_and_backoff_grows_without_it() -> None:
    retrying = Retrying(NO_JITTER)
    predict = calls.predict("m", "hi", None)
    assert retrying.wait(predict, 1, problem(503, "overloaded", "3")) == 3.0  # longer than the backoff: wins
    assert [retrying.wait(predict, n, problem(429, "too_many_requests")) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    with pytest.raises(APIError) as spent:
        retrying.wait(predict, 4, problem(503, "overloaded", "1"))
    assert (spent.value.status, spent.value.code, spent.value.retry_after) == (503, "overloaded", 1.0)
    with pytest.raises(APIError, match="overloaded"):  # asked to wait longer than max_retry_after: not waited for
        retrying.wait(predict, 1, problem(503, "overloaded", "120"))
    jittered = Retrying(DEFAULT_RETRY, random.Random(0))
    assert all(0.4 <= jittered.wait(predict, 1, problem(503, "model_unavailable")) <= 0.6 for _ in range(50))


def test_only_calls_safe_to_resend_are_sent_again_after_an_unclear_failure() -> None:
    retrying = Retrying(NO_JITTER)
    predict, feedback = calls.predict("m", "hi", None), calls.feedback("m", "p", {"label": "1"})
    lost = httpx.ReadTimeout("timed out", request=REQUEST)
    with pytest.raises(TransportError, match="ReadTimeout") as raised:  # the server may have logged it
        retrying.wait(predict, 1, lost)
    assert raised.value.__cause__ is lost
    assert retrying.wait(feedback, 1, lost) == 0.5  # its key makes the resend the same event
    refused = httpx.ConnectError("connection refused", request=REQUEST)
    assert retrying.wait(predict, 1, refused) == 0.5  # nothing was sent
    assert retrying.wait(feedback, 1, problem(502, "http_error")) == 0.5
    with pytest.raises(APIError, match="502"):
        retrying.wait(predict, 1, problem(502, "http_error"))


def test_an_error_answer_is_raised_at_once_with_the_problems_code_title_detail_and_field() -> None:
    with pytest.raises(APIError) as raised:
        Retrying(NO_JITTER).wait(calls.predict("m", "", None), 1, problem(422, "validation_error", field="text"))
    error = raised.value
    assert (error.status, error.code, error.title, error.field) == (422, "validation_error", "validation error", "text")
    assert error.detail == "it went validation_error" and error.problem["status"] == 422
    assert str(error) == "422 validation_error: it went validation_error (field text)"
    assert isinstance(error, ClientError)


def test_an_answer_that_is_not_learnloops_still_makes_a_clear_error() -> None:
    page = httpx.Response(502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}, request=REQUEST)
    error = api_error(page)
    assert (error.status, error.code, error.title, error.detail) == (502, "http_error", "Bad Gateway", page.text)
    garbled = httpx.Response(200, text="{not json", headers={"content-type": "application/json"}, request=REQUEST)
    with pytest.raises(ClientError, match="unexpected answer"):
        read(calls.status("m"), garbled)


def test_predict_sends_metadata_only_when_given() -> None:
    assert calls.predict("m", "hi", None, {"region": "emea"}).body == {"text": "hi", "metadata": {"region": "emea"}}
    batch = calls.predict_batch("m", ["x", "y"], None, [{"region": "emea"}, None])
    assert batch.body == {"items": [{"text": "x", "metadata": {"region": "emea"}}, {"text": "y"}]}
    with pytest.raises(ValueError, match="2 texts but 1 metadata"):
        calls.predict_batch("m", ["x", "y"], None, [{"region": "emea"}])
