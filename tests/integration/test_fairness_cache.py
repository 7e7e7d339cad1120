"""The fairness report is computed once for what it reads: the dashboard's model page drawn
twice runs the bootstrap once; a new label makes the next page compute it afresh."""

from __future__ import annotations

from collections.abc import Callable

from conftest import asgi_get, uci_rows
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.policy import Policy
from learnloop.services import Services


def test_the_fairness_panel_reuses_its_report_until_the_feedback_changes(
    services: Services, make_model: Callable[..., ModelVersion]
) -> None:
    make_model(services, "m", policy=Policy.of(retrain_every=10_000, fairness_fields="domain", fairness_min_group=10))
    rows = uci_rows("amazon_cells")[:41]
    answers = services.predictions.predict_many(
        "m", [t for t, _ in rows], metadata=[{"domain": "phones" if i % 2 else "cases"} for i in range(41)]
    )
    services.ingest.flush()
    labelled = [FeedbackInput(prediction_id=a.prediction_id, label=y) for a, (_, y) in zip(answers, rows, strict=True)]
    services.feedback.record_sync("m", labelled[:40])

    def page() -> str:
        response = asgi_get(services, "/dashboard/models/m")
        assert response.status_code == 200, response.text
        return response.text

    first = page()
    assert "opportunity gap (domain)" in first and services.fairness.computed == 1
    page()
    assert services.fairness.computed == 1  # drawn again: the report reused
    assert services.fairness.report("m").labelled == 40 and services.fairness.computed == 2  # other resamples

    services.feedback.record_sync("m", labelled[40:])
    page()
    assert services.fairness.computed == 3
    assert services.fairness.report("m", resamples=300).labelled == 41 and services.fairness.computed == 3
