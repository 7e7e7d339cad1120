"""A classifier's story over four days, for the dashboard's story, plots and comparison tests:

* day 0: ``m`` is made from the shipped Yelp sentences (version 1, the champion) and serves 120
  Yelp sentences, every one labelled by a user, then 300 IMDB movie sentences: the drift
  check after every 200 answers (no timer) finds them drifted;
* a quiet gap of three days, then a retrain on that feedback (version 2), which the gate
  judges against version 1 (and rejects);
* version 3, trained on Yelp and Amazon phone reviews outside the loop (parent 1), promoted;
  it serves 150 phone reviews, a third of them corrected to the other label.

Through the services on a ``FakeClock``, so the days are real days in the stored times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conftest import create_model, make_settings, register_version, uci_rows
from learnloop.clock import FakeClock
from learnloop.curation import split_golden
from learnloop.domain import DriftCheck, FeedbackInput
from learnloop.policy import Policy
from learnloop.services import Services, build_services

START = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
DAY = 86_400.0


@dataclass(frozen=True)
class Story:
    judged: int  # judged answers in all
    retrained: int  # the version the retrain made
    promoted: int  # the version promoted by hand
    drift: DriftCheck | None  # the check the answers triggered


@dataclass(frozen=True)
class StoryHome:
    """A home (SQLite) where the story happened; read it, never change it (tests share it)."""

    home: Path
    database_url: str
    story: Story


def build_story_home(directory: Path) -> StoryHome:
    home, url = directory / "home", f"sqlite:///{directory}/ll.db"
    clock = FakeClock(START)
    services = build_services(make_settings(home, url), clock=clock)
    try:
        story = tell_story(services, clock)
    finally:
        services.close()
    return StoryHome(home, url, story)


def serve(services: Services, clock: FakeClock, rows: list[tuple[str, str | None]], seconds: float) -> None:
    """Serve each text ``seconds`` apart; label the answers whose label is given."""
    labelled = []
    for text, label in rows:
        answer = services.predictions.predict("m", text)
        if label is not None:
            labelled.append(FeedbackInput(prediction_id=answer.prediction_id, label=label))
        clock.advance(seconds)
    services.ingest.flush()
    services.feedback.record_sync("m", labelled)


def tell_story(services: Services, clock: FakeClock) -> Story:
    policy = Policy.of(retrain_every=100_000, drift_check_seconds=0, drift_check_answers=200, drift_window=300)
    create_model(services, "m", policy=policy)
    services.cache.serve()
    rows = uci_rows("yelp")
    random.Random(1).shuffle(rows)
    serve(services, clock, list(rows[:120]), 30)
    assert services.drift.check_due() == []  # 120 answers: not yet due
    serve(services, clock, [(t, None) for t, _ in uci_rows("imdb")[:300]], 5)
    checks = services.drift.check_due()  # 420 answers: due, and the newest 300 are movie reviews
    clock.advance(3 * DAY)
    retrained = services.training.retrain("m", actor="test").version
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)  # version 1's training rows (``create_model``)
    better = register_version(services, "m", train + uci_rows("amazon_cells"), note="learned phones", parent_version=1)
    services.registry.promote("m", better.version, actor="test", reason="it knows phones")
    services.cache.refresh("m")
    phones = uci_rows("amazon_cells")[:150]
    serve(services, clock, [(t, lab if i % 3 else str(1 - int(lab))) for i, (t, lab) in enumerate(phones)], 20)
    return Story(judged=270, retrained=retrained, promoted=better.version, drift=checks[0] if checks else None)
