"""Fairness in a real retrain, on SQLite and PostgreSQL: a yelp-trained model answers phone and
film sentences whose requests carry their domain; users correct every answer (the feedback
carries no metadata). The retrain's gate pairs the candidate and the champion on the recent
rows by domain (the prediction's metadata reached the snapshot), and the fairness report of
version 1 counts every labelled answer by domain."""

from __future__ import annotations

import random
from collections.abc import Callable

from conftest import uci_rows
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.policy import Policy
from learnloop.services import Services


def test_the_retrain_gate_compares_gaps_by_a_field_sent_with_predict(
    services: Services, make_model: Callable[..., ModelVersion]
) -> None:
    make_model(services, "m", policy=Policy.of(retrain_every=10_000, fairness_fields="domain"))
    tagged = [(t, lab, "phones") for t, lab in uci_rows("amazon_cells")[:300]]
    tagged += [(t, lab, "films") for t, lab in uci_rows("imdb")[:300]]
    random.Random(0).shuffle(tagged)
    answers = services.predictions.predict_many(
        "m", [t for t, _, _ in tagged], metadata=[{"domain": d} for _, _, d in tagged]
    )
    services.ingest.flush()
    services.feedback.record_sync(
        "m",
        [
            FeedbackInput(prediction_id=a.prediction_id, label=lab)
            for a, (_, lab, _) in zip(answers, tagged, strict=True)
        ],
    )

    report = services.fairness.report("m")
    [v1] = report.versions
    [by_domain] = v1.fields
    assert (v1.version, v1.n, by_domain.n) == (1, 600, 600)
    assert {g.group: g.n for g in by_domain.groups} == {"phones": 300, "films": 300}
    for g in by_domain.groups:
        rows = [(lab, a.label) for a, (_, lab, d) in zip(answers, tagged, strict=True) if d == g.group]
        assert g.accuracy.value == sum(t == p for t, p in rows) / 300

    outcome = services.training.retrain("m", actor="test")
    recent_n = next(c["n"] for c in outcome.verdict["comparisons"] if c["set_name"] == "recent")
    [compared] = outcome.verdict["fairness"]
    assert (compared["set"], compared["field"], compared["n"], compared["groups"]) == ("recent", "domain", recent_n, 2)
    assert compared["low"] <= compared["difference"] <= compared["high"]
    [reason] = [r for r in outcome.verdict["reasons"] if r.startswith("fairness recent[domain]")]
    assert "not judged (fairness_margin 1)" in reason, reason
