"""Fairness on the golden set, on SQLite and PostgreSQL: a model created from a JSON Lines file
whose rows carry their domain in a ``metadata`` column keeps it with its golden rows; the
fairness report (service and ``GET /v1/models/{m}/fairness``) gives every version's per-group
figures on the golden set, and the retrain's gate compares the candidate's largest gap with
the champion's on the golden set by that field. Rows in a JSON body (``POST /v1/models``)
carry theirs the same way."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import asgi_get, uci_rows
from learnloop.api.model_schemas import ModelCreate
from learnloop.domain import FeedbackInput
from learnloop.errors import DataError
from learnloop.models import FileSource, NewModel
from learnloop.services import Services


def test_golden_rows_with_a_group_attribute_give_per_group_figures_and_a_gated_gap(
    services: Services, tmp_path: Path
) -> None:
    tagged = [(t, lab, "phones") for t, lab in uci_rows("amazon_cells")[:200]]
    tagged += [(t, lab, "films") for t, lab in uci_rows("imdb")[:200]]
    random.Random(0).shuffle(tagged)
    data = tmp_path / "tagged.jsonl"
    lines = [json.dumps({"text": t, "label": y, "metadata": {"domain": d}}) for t, y, d in tagged]
    data.write_text("\n".join(lines) + "\n")
    policy = {"fairness_fields": "domain", "retrain_every": 10_000}
    created = services.creation.create(NewModel("m", policy=policy), FileSource(data), actor="test")
    golden = created.data.golden
    domain_of = {t: d for t, _, d in tagged}
    assert [meta and meta["domain"] for meta in created.data.golden_metadata] == [domain_of[t] for t, _ in golden]

    report = services.fairness.report("m")
    n = len(golden)
    assert report.golden == n and not report.notes
    [v1] = report.versions
    assert (v1.version, v1.n, v1.fields[0].n) == (1, 0, 0)  # no feedback yet: golden figures only
    [on_golden] = v1.golden
    answers = services.predictions.predict_many("m", [t for t, _ in golden])  # the champion, served
    for group in on_golden.groups:
        rows = [(y, a.label) for a, (t, y) in zip(answers, golden, strict=True) if domain_of[t] == group.group]
        assert group.n == len(rows) and group.accuracy.value == sum(y == p for y, p in rows) / len(rows)
    assert {g.group for g in on_golden.groups} == {"phones", "films"} and on_golden.n == n
    body = asgi_get(services, "/v1/models/m/fairness").json()
    assert body["golden"] == n and body["versions"][0]["golden"][0]["field"] == "domain"
    assert body["versions"][0]["golden"][0]["largest"]["value"] == on_golden.largest.value  # type: ignore[union-attr]

    fresh = [(t, y) for t, y in uci_rows("amazon_cells")[200:260]]
    served = services.predictions.predict_many("m", [t for t, _ in fresh], metadata=[{"domain": "phones"}] * 60)
    services.ingest.flush()
    services.feedback.record_sync(
        "m", [FeedbackInput(prediction_id=a.prediction_id, label=y) for a, (_, y) in zip(served, fresh, strict=True)]
    )
    outcome = services.training.retrain("m", actor="test")
    by_set = {c["set"]: c for c in outcome.verdict["fairness"]}
    assert (by_set["golden"]["field"], by_set["golden"]["n"], by_set["golden"]["groups"]) == ("domain", n, 2)
    assert any(r.startswith(f"fairness golden[domain] (n={n},") for r in outcome.verdict["reasons"])


def test_json_rows_carry_their_metadata_to_the_golden_set_past_skipped_rows(services: Services) -> None:
    tagged = [(t, y, "phones") for t, y in uci_rows("amazon_cells")[:100]]
    tagged += [(t, y, "films") for t, y in uci_rows("imdb")[:100]]
    random.Random(1).shuffle(tagged)
    rows: list[dict[str, Any]] = [{"text": t, "label": y, "metadata": {"domain": d}} for t, y, d in tagged]
    rows.insert(3, {"text": "   ", "label": "1", "metadata": {"domain": "skipped"}})  # no text: left out
    body = {"name": "j", "rows": rows, "policy": {"fairness_fields": "domain"}}
    created = services.creation.create(*ModelCreate.model_validate(body).request(), actor="test")
    domain_of = {t: d for t, _, d in tagged}
    golden = created.data.golden
    assert created.data.skipped == {"empty_text": 1}
    assert [meta and meta["domain"] for meta in created.data.golden_metadata] == [domain_of[t] for t, _ in golden]
    [on_golden] = services.fairness.report("j").versions[0].golden
    assert {g.group: g.n for g in on_golden.groups} == dict(Counter(domain_of[t] for t, _ in golden))

    rows[0]["metadata"] = {"domain": float("nan")}
    with pytest.raises(DataError, match="row 1: metadata holds NaN"):
        services.creation.create(*ModelCreate.model_validate({**body, "name": "k"}).request(), actor="test")
