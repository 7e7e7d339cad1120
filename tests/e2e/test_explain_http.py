"""Explanations through a real server, on models really trained on the shipped UCI sentences:
a linear family's contributions add up to its decision function (checked against scikit-learn
on the version's own artifact), a logged answer is explained by the version that gave it, an
embedding model's answer by occlusion, a version's weights and the changes between two versions
match the coefficients, the dashboard highlights an answer's words with the user's text
escaped, and the CLI prints the same."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conftest import LiveServer, ServerLauncher, make_settings, register_version, run_cli, uci_rows, wait_for
from learnloop.curation import split_golden
from learnloop.families import Predictor
from learnloop.families.manifest import load_predictor
from learnloop.policy import Policy
from learnloop.services import build_services

pytestmark = [pytest.mark.timeout(300)]

TEXT = "The food was not good and the service was terrible, but the dessert was great!"
HOSTILE = 'Loved it <script>alert("x")</script> "><img src=x onerror=alert(1)> &amp; great'


@dataclass
class Home:
    server: LiveServer
    home: Path
    database_url: str

    def predictor(self, model: str, version: int) -> Predictor:
        services = build_services(make_settings(self.home, self.database_url))
        try:
            return load_predictor(services.store, services.registry.version(model, version).artifact_uri)
        finally:
            services.close()


def _create(services: Any, name: str, family: str, rows: list[tuple[str, str]]) -> None:
    train, golden = split_golden(rows, 0.2, 0)
    services.registry.create_model(
        name=name, labels=["0", "1"], family=family, params={}, policy=Policy(), train=train, golden=golden,
        source=f"uci:{name}",
    )  # fmt: skip
    services.training.bootstrap(name)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, module_server_launcher: ServerLauncher) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("explain")
    home, database_url = root / "home", f"sqlite:///{root}/ll.db"
    services = build_services(make_settings(home, database_url))
    try:
        yelp = uci_rows("yelp")
        _create(services, "m", "tfidf-logreg", yelp)
        register_version(services, "m", yelp[:500] + uci_rows("amazon_cells"), note="more data")  # v2
        _create(services, "inc", "incremental", yelp)
        _create(services, "emb", "embedding-logreg", yelp[:150] + yelp[-150:])
    finally:
        services.close()
    yield Home(module_server_launcher.start(home, database_url), home, database_url)


def _explain(http: httpx.Client, model: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"/v1/models/{model}/explain", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _decision(predictor: Any, text: str) -> dict[str, float]:
    """scikit-learn's own decision function, per label (two labels: the second's log-odds)."""
    raw = np.atleast_1d(predictor.classifier.decision_function(predictor.features([text]))[0])
    classes = [str(c) for c in predictor.classifier.classes_]
    if len(classes) == 2:
        return {classes[0]: -float(raw[0]), classes[1]: float(raw[0])}
    return dict(zip(classes, map(float, raw), strict=True))


@pytest.mark.parametrize("model", ["m", "inc"])
def test_linear_contributions_add_up_to_the_decision_function(served: Home, model: str) -> None:
    with served.server.client() as http:
        body = _explain(http, model, text=TEXT)
        answered = http.post(f"/v1/models/{model}/predict", json={"text": TEXT}).json()
    assert body["method"] == "linear" and body["target"] == "logit" and body["version"] == 1
    assert body["label"] == answered["label"] and body["probabilities"] == pytest.approx(answered["probabilities"])
    decision = _decision(served.predictor(model, 1), TEXT)
    for label in ("0", "1"):
        summed = body["intercept"][label] + sum(t["contributions"][label] for t in body["terms"])
        assert summed == pytest.approx(decision[label], abs=1e-9)
        assert body["scores"][label] == pytest.approx(decision[label], abs=1e-9)
    # The words carry every term's share of the answered label, at their offsets in the text.
    label = body["label"]
    assert sum(t["contribution"] for t in body["tokens"]) == pytest.approx(
        sum(t["contributions"][label] for t in body["terms"]), abs=1e-9
    )
    assert [TEXT[t["start"] : t["end"]] for t in body["tokens"]] == [t["text"] for t in body["tokens"]]
    by_word = {t["text"]: t["contribution"] for t in body["tokens"]}
    assert by_word["not"] < 0 < by_word["great"] if label == "1" else by_word["not"] > 0 > by_word["great"]


def test_a_logged_answer_is_explained_by_the_version_that_gave_it(served: Home) -> None:
    with served.server.client() as http:
        answer = http.post("/v1/models/m/predict", json={"text": TEXT}).json()
        path = f"/v1/models/m/predictions/{answer['prediction_id']}/explain"
        found = wait_for(lambda: (r := http.get(path)).status_code == 200 and r, timeout=30, what="the answer logged")
        body = found.json()
        assert body["prediction_id"] == answer["prediction_id"] and body["version"] == answer["version"]
        assert body["text"] == TEXT and body["served_label"] == body["label"] == answer["label"]
        # Version 2 answers the same text with weights of its own.
        other = _explain(http, "m", text=TEXT, version=2)
        assert other["version"] == 2 and other["scores"] != body["scores"]
        missing = http.get("/v1/models/m/predictions/0193f1a2-7c4e-7b31-9a52-3f0c2d9e8a11/explain")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        elsewhere = http.get(f"/v1/models/inc/predictions/{answer['prediction_id']}/explain")
        assert elsewhere.status_code == 404  # another model's answer


def test_an_embedding_models_answer_is_explained_by_occlusion(served: Home) -> None:
    with served.server.client() as http:
        body = _explain(http, "emb", text=TEXT)
        weights = http.get("/v1/models/emb/versions/1/weights")
    assert body["method"] == "occlusion" and body["target"] == "probability" and body["scores"] is None
    words = [t["text"] for t in body["tokens"]]
    assert words == ["The", "food", "was", "not", "good", "and", "the", "service", "was", "terrible", "but", "the",
                     "dessert", "was", "great"]  # fmt: skip
    # A word's contribution is the answered label's probability lost without it: recompute one.
    predictor = served.predictor("emb", 1)
    label, full = body["label"], body["probabilities"][body["label"]]
    without = TEXT.replace("terrible", "", 1)
    column = predictor.labels.index(label)
    dropped = full - float(predictor.predict_proba([without])[0][column])
    assert body["tokens"][9]["contribution"] == pytest.approx(dropped, abs=1e-5)
    assert weights.status_code == 409 and weights.json()["code"] == "not_supported"


def test_weights_and_their_changes_are_the_coefficients(served: Home) -> None:
    with served.server.client() as http:
        v1 = http.get("/v1/models/m/versions/1/weights", params={"top": 5}).json()
        diff = http.get("/v1/models/m/weights/changes", params={"a": 1, "b": 2, "top": 5}).json()
    p1, p2 = served.predictor("m", 1), served.predictor("m", 2)

    def weight(p: Any, term: str, label: str) -> float | None:
        j = p.vectorizer.vocabulary_.get(term)
        if j is None:
            return None
        w = float(p.classifier.coef_[0][j])
        return w if label == "1" else -w

    for label in ("0", "1"):
        top = v1["top"][label]
        assert len(top) == 5 and [t["weight"] for t in top] == sorted((t["weight"] for t in top), reverse=True)
        assert all(t["weight"] == pytest.approx(weight(p1, t["term"], label)) for t in top)
        changes = diff["labels"][label]
        assert changes["gained"] and changes["lost"]
        for c in changes["gained"] + changes["lost"]:
            assert c["before"] == pytest.approx(weight(p1, c["term"], label))
            assert c["after"] == pytest.approx(weight(p2, c["term"], label))
            assert c["change"] == pytest.approx((c["after"] or 0.0) - (c["before"] or 0.0))
        assert all(c["change"] > 0 for c in changes["gained"]) and all(c["change"] < 0 for c in changes["lost"])
    assert v1["top"]["1"][0]["term"] in {"great", "good", "delicious", "amazing"}
    assert diff["new_terms"] > 0  # version 2 also read phone reviews


def test_the_dashboard_highlights_an_answer_and_escapes_its_text(served: Home) -> None:
    with served.server.client() as http:
        answer = http.post("/v1/models/m/predict", json={"text": HOSTILE}).json()
        sent = http.post("/v1/models/m/feedback", json={"prediction_id": answer["prediction_id"], "label": "0"})
        assert sent.status_code == 201
        page_path = f"/dashboard/models/m/predictions/{answer['prediction_id']}"
        page = wait_for(lambda: (r := http.get(page_path)).status_code == 200 and r, timeout=30, what="the page")
        html = page.text
        model_page = http.get("/dashboard/models/m").text
        version_page = http.get("/dashboard/models/m/versions/2").text
    assert "<script>alert" not in html and "<img src=x" not in html
    shown = re.search(r'<p class="explained" id="explained-text">(.*?)</p>', html, re.S)
    assert shown is not None
    assert "&lt;" in shown.group(1) and "&#34;&gt;&lt;" in shown.group(1)
    assert unescape(re.sub(r'<span class="tok"[^>]*>|</span>', "", shown.group(1))) == HOSTILE
    assert 'class="tok" style="background: rgba(22,163,74,' in html  # "Loved", "great": towards positive
    assert page_path in model_page  # the feedback table links the answer to its explanation
    assert 'id="weights"' in version_page and 'id="weight-changes"' in version_page and "Since v1" in version_page


def test_the_cli_explains_a_text_and_a_logged_answer_and_compares_weights(served: Home) -> None:
    db = ["--home", str(served.home), "--database-url", served.database_url]
    shown = run_cli("explain", *db, "--model", "m", "--text", TEXT).stdout
    assert "method linear" in shown and "intercept" in shown and "terrible" in shown
    with served.server.client() as http:
        answer = http.post("/v1/models/inc/predict", json={"text": TEXT}).json()
    pid = answer["prediction_id"]
    logged = wait_for(lambda: (r := run_cli("explain", *db, "-m", "inc", "--prediction", pid, "--json",
                                            check=False)).returncode == 0 and r,
                      timeout=30, what="the answer logged")  # fmt: skip
    as_json = logged.stdout
    assert f'"prediction_id": "{pid}"' in as_json and '"method": "linear"' in as_json
    compared = run_cli("weights", *db, "--model", "m", "--compare", "1", "2", "--top", "3").stdout
    assert "v1 -> v2" in compared and "gained weight towards 1" in compared and "lost weight towards 1" in compared
    refused = run_cli("weights", *db, "--model", "emb", check=False)
    assert refused.returncode == 1 and "weighs no terms" in refused.stderr
