"""Explanations as services, on a migrated real database (SQLite and PostgreSQL): a logged
answer is found by its id in any spelling and explained by the version that gave it, after a
promotion too; an unknown or another model's answer is not found. Over HTTP:
``tests/e2e/test_explain_http.py``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import register_version
from learnloop.domain import ModelVersion
from learnloop.errors import NotFoundError, ValidationError
from learnloop.services import Services

TEXT = "Slow service, cold food, never again."


def test_a_logged_answer_is_explained_by_its_own_version_after_a_promotion(
    services: Services,
    make_model: Callable[..., ModelVersion],
    shipped_rows: Callable[[str], list[tuple[str, str]]],
) -> None:
    make_model(services, "m")
    make_model(services, "other", domain="imdb")
    before = services.predictions.predict("m", TEXT)
    register_version(services, "m", shipped_rows("amazon_cells"), note="phones only")
    services.registry.promote("m", 2, actor="test", reason="test", force=True)
    after = services.predictions.predict("m", TEXT)
    services.ingest.flush()
    assert (before.version, after.version) == (1, 2)

    old = services.explanations.explain_prediction("m", before.prediction_id.upper())
    new = services.explanations.explain_prediction("m", after.prediction_id)
    assert (old.version, new.version) == (1, 2) and old.prediction_id == before.prediction_id
    assert old.explanation.probabilities == pytest.approx(before.probabilities)
    assert new.explanation.probabilities == pytest.approx(after.probabilities)
    assert old.served_label == before.label and old.text == TEXT
    # A text without a version is explained by the champion, now version 2.
    assert services.explanations.explain_text("m", TEXT).version == 2
    with pytest.raises(NotFoundError):
        services.explanations.explain_prediction("other", before.prediction_id)
    with pytest.raises(NotFoundError):
        services.explanations.explain_prediction("m", "0193f1a2-7c4e-7b31-9a52-3f0c2d9e8a11")
    with pytest.raises(ValidationError):
        services.explanations.explain_prediction("m", "not-an-id")
    with pytest.raises(ValidationError):
        services.explanations.explain_text("m", "x" * (services.settings.limits.max_text_chars + 1))
