"""A version's golden-set scores are kept between pages, but never outlive the model they
were scored for: a model deleted and made again under its name is scored afresh."""

from __future__ import annotations

from conftest import uci_rows
from learnloop.curation import split_golden
from learnloop.policy import Policy
from learnloop.services import Services


def make(services: Services, golden_labels_flipped: bool) -> None:
    rows = uci_rows("yelp")
    train, golden = split_golden(rows, 0.2, 0)
    if golden_labels_flipped:
        golden = [(text, "1" if label == "0" else "0") for text, label in golden]
    services.registry.create_model(
        name="m",
        labels=["0", "1"],
        family="tfidf-logreg",
        params={},
        policy=Policy(),
        train=train,
        golden=golden,
        source="uci:yelp",
    )
    services.training.bootstrap("m")


def test_a_model_made_again_under_its_name_is_not_shown_the_old_scores(services: Services) -> None:
    make(services, golden_labels_flipped=False)
    first = services.reports.report("m", 1)
    services.deletion.delete("m", actor="test")
    make(services, golden_labels_flipped=True)  # version 1 again, a golden set of the same size
    again = services.reports.report("m", 1)
    assert again.n == first.n  # what a check of the set's length alone cannot tell apart
    assert again.metrics["accuracy"] < 0.5 < first.metrics["accuracy"]
