"""The panels of a generative model's page: the answers the newest feedback is about, with
all the feedback on each (a correction beside the answer it corrects), the newest preferences
as chosen against rejected, the ratings (distribution, mean per version over time), preference
counts and what curation makes of the feedback. Data from the feedback service (``recent``,
``on_answers``, ``generation_report``), never SQL; a panel whose data cannot be computed says
why instead of failing the page."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from learnloop.dashboard import rating_chart
from learnloop.dashboard.charts import Marker
from learnloop.dashboard.panels import Panel
from learnloop.domain import FeedbackEvent, FeedbackKind, Served
from learnloop.services import Services
from learnloop.tasks.generation.ratings import INTERVAL_RULE, source_of
from learnloop.tasks.generation.sets import PARTS, SET_NAMES

log = logging.getLogger(__name__)
FEEDBACK_ROWS = 200
ANSWERS_SHOWN = 15
PREFERENCES_SHOWN = 10


@dataclass
class AnswerItem:
    """One logged answer and the feedback on it among the newest events."""

    prediction_id: str
    prompt: str
    response: str
    version: int
    source: str | None  # the external provider, when one made it
    created_at: datetime
    latest: datetime  # its newest feedback
    given: list[str] = field(default_factory=list)  # "rating 4", "thumbs up", "copied = True"
    corrections: list[str] = field(default_factory=list)
    low: bool = False  # a rating <= 2, thumbs down or a correction


@dataclass(frozen=True)
class PreferenceItem:
    created_at: datetime
    prompt: str
    chosen: str
    chosen_source: str
    rejected: str | None  # None: the rejected answer is not logged yet
    rejected_source: str
    strength: float


def _answer(served: Served, at: datetime) -> AnswerItem:
    source = served.answer.get("source_model")
    return AnswerItem(
        served.prediction_id,
        served.text,
        str(served.answer.get("response", "")),
        served.version,
        str(source) if source else None,
        served.created_at,
        at,
    )


def _preference(event: FeedbackEvent) -> PreferenceItem:
    payload = event.feedback.payload
    strength = float(payload.get("strength", 1.0))
    if event.prediction_id is None:
        return PreferenceItem(
            event.created_at, str(payload["prompt"]), str(payload["chosen"]), "standalone",
            str(payload["rejected"]), "standalone", strength,
        )  # fmt: skip
    served, related = event.served, event.related
    return PreferenceItem(
        event.created_at,
        served.text if served is not None else "",
        str(served.answer.get("response", "")) if served is not None else "(not logged yet)",
        source_of(served),
        None if related is None else str(related.answer.get("response", "")),
        source_of(related),
        strength,
    )


def recent_answers(events: Sequence[FeedbackEvent]) -> tuple[list[AnswerItem], list[PreferenceItem], int]:
    """``events`` (newest first) grouped by the answer they are about, newest feedback first;
    the preferences apart; and how many events wait for their answer to be logged."""
    answers: dict[str, AnswerItem] = {}
    preferences: list[PreferenceItem] = []
    pending = 0
    for event in events:
        if event.kind == FeedbackKind.PREFERENCE:
            preferences.append(_preference(event))
            continue
        if event.served is None:
            pending += 1
            continue
        item = answers.get(event.served.prediction_id)
        if item is None:
            item = answers[event.served.prediction_id] = _answer(event.served, event.created_at)
        payload = event.feedback.payload
        if event.kind == FeedbackKind.CORRECTION:
            item.corrections.append(str(payload.get("correction", "")))
            item.low = True
        elif event.kind == FeedbackKind.RATING:
            item.given.append(f"rating {payload.get('rating')}")
            item.low = item.low or int(payload.get("rating", 5)) <= 2
        elif event.kind == FeedbackKind.THUMBS:
            item.given.append(f"thumbs {payload.get('thumbs')}")
            item.low = item.low or payload.get("thumbs") == "down"
        elif event.kind == FeedbackKind.IMPLICIT:
            item.given.append(f"{payload.get('signal')} = {payload.get('value')}")
        else:
            item.given.append(event.kind.value)
    return list(answers.values()), preferences, pending


def curation_rows(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """Per set: its candidates, train and held-out sizes and each filter's count."""
    return [
        {
            "name": name,
            **{k: (counts.get(name) or {}).get(k, 0) for k in ("candidates", *PARTS)},
            "dropped": (counts.get(name) or {}).get("dropped") or {},
        }
        for name in SET_NAMES
    ]


def _report(services: Services, model: str, markers: Sequence[Marker]) -> Panel:
    try:
        report = services.feedback.generation_report(model)
    except Exception as exc:  # a panel never takes the page down
        log.exception("model %s: the generation report for the dashboard failed", model)
        return Panel(False, f"the feedback report could not be computed: {type(exc).__name__}")
    summary, counts = report.summary, report.sets.counts
    pair_sources: dict[str, int] = {}
    for part in PARTS:
        for row in report.sets.rows("preference", part):
            pair_sources[row.source] = pair_sources.get(row.source, 0) + 1
    return Panel(
        True,
        data={
            "summary": summary,
            "interval_rule": INTERVAL_RULE,
            "counts": counts,
            "sets": curation_rows(counts),
            "pair_sources": dict(sorted(pair_sources.items())),
            "cutoff": report.cutoff,
            "distribution": rating_chart.rating_distribution(summary.ratings),
            "bucket": rating_chart.bucket_text(summary.bucket),
        },
        chart=rating_chart.rating_series(summary.rating_series, markers, summary.bucket),
    )


def generation_panels(services: Services, model: str, markers: Sequence[Marker]) -> dict[str, Any]:
    """What a generative model's page shows in place of the classifier's panels (``markers``:
    the promotions and rollbacks, drawn on the rating chart)."""
    recent, preferences, pending = recent_answers(services.feedback.recent(model, FEEDBACK_ROWS))
    shown = [a.prediction_id for a in recent[:ANSWERS_SHOWN]]
    answers, _, _ = recent_answers(services.feedback.on_answers(model, shown)) if shown else ([], [], 0)
    return {
        "answers": answers,
        "preferences_recent": preferences[:PREFERENCES_SHOWN],
        "pending": pending,
        "feedback_rows": FEEDBACK_ROWS,
        "report": _report(services, model, markers),
    }
