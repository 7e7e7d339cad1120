"""How the serving version does on live traffic, from feedback and without it.

* **Online accuracy** from feedback: the newest ``accuracy_window`` judged answers of the
  champion (one outcome per prediction, resolved as the rollout controller does it: a label
  says which answer was right, thumbs and ratings say whether the served one was), with a 95%
  Wilson interval, and macro-F1 over the answers whose true label the feedback names. Also a
  daily series per version (the API's) and, for charts, buckets of consecutive judged
  answers (``timeline``).
* **Expected accuracy without labels** (the idea of NannyML's confidence-based performance
  estimation, CBPE): the mean top-class probability of the newest answers. It is an honest
  estimate only if the model is calibrated; the version's expected calibration error on its
  golden set is reported beside it, so a reader knows how far to trust it. It moves at once
  when inputs drift, long before feedback arrives.
* **Drop alarm**: online accuracy is *shown* below the version's golden-set accuracy minus
  ``accuracy_drop`` when the upper end of its 95% Wilson interval lies below that line
  (at least ``MIN_JUDGED`` judged answers). Feedback is not a random sample (users speak up
  more when an answer is wrong), so online accuracy tends to read low; the margin absorbs a
  moderate bias, and the alarm compares like with like over time. An alarm writes
  ``accuracy_dropped`` (and ``accuracy_recovered`` when it clears) once per transition, and
  reports the drop as a ``Finding``; whether a retrain follows is ``triggers``' decision
  (``policy.retrain_on_accuracy_drop``).
* **Online mean rating** and its alarm (``policy.min_mean_rating``): ``monitoring.ratings``;
  written as ``rating_dropped`` / ``rating_recovered`` and reported as a ``rating_drop`` finding
  the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection

from learnloop.clock import Clock
from learnloop.domain import FeedbackEvent, FeedbackKind, Finding, FindingSink
from learnloop.errors import ConflictError
from learnloop.evaluation.bootstrap import bootstrap_cis
from learnloop.evaluation.metrics import macro_f1_statistic, wilson_interval
from learnloop.monitoring.ratings import OnlineRating, newest_ratings, online_rating
from learnloop.monitoring.sweep import each_model
from learnloop.monitoring.timeline import AccuracyPoint, accuracy_timeline
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks import OutcomeRule, get_task
from learnloop.tasks.classification import LabelOutcomes, implied_label, predicted_label
from learnloop.telemetry import Metrics

log = logging.getLogger(__name__)
MIN_JUDGED = 30  # judged answers before online accuracy may raise an alarm
EXPECTED_WINDOW = 1_000  # newest answers behind the label-free estimate
SERIES_EVENTS = 5_000  # newest feedback events behind the daily series
ACCURACY_EVENTS = ("accuracy_dropped", "accuracy_recovered")
RATING_EVENTS = ("rating_dropped", "rating_recovered")


@dataclass(frozen=True)
class OnlineAccuracy:
    version: int | None
    n: int  # judged answers
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    macro_f1: float | None  # over the answers whose true label is known
    macro_f1_ci: list[float] | None
    n_labelled: int
    unknown: int  # feedback that says nothing about being right (a rating of 3)


@dataclass(frozen=True)
class Performance:
    model: str
    version: int | None
    online: OnlineAccuracy
    golden_accuracy: float | None
    golden_ece: float | None
    expected_accuracy: float | None  # mean top-class probability (label-free)
    expected_n: int
    alarm: bool
    threshold: float | None  # golden accuracy - accuracy_drop
    reason: str
    rating: OnlineRating  # the mean rating of the newest rated answers, and its alarm
    series: list[dict[str, Any]] = field(default_factory=list)  # daily, per version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _macro_f1(
    truth: Sequence[str], answers: Sequence[str], labels: Sequence[str]
) -> tuple[float | None, list[float] | None]:
    """Macro-F1 over the model's labels, with a 95% percentile-bootstrap interval (1,000
    resamples, seeded): the same statistic the offline metrics use."""
    if not truth:
        return None, None
    index = {label: i for i, label in enumerate(labels)}
    statistic = macro_f1_statistic(
        np.array([index.get(t, -1) for t in truth]), np.array([index.get(a, -1) for a in answers]), len(labels)
    )
    value = float(statistic(np.ones((1, len(truth))))[0])
    interval = bootstrap_cis({"f1": statistic}, len(truth), resamples=1000, seed=0)["f1"]
    return value, None if interval is None else list(interval)


def online_accuracy(
    events: Iterable[FeedbackEvent],
    labels: Sequence[str],
    version: int | None = None,
    *,
    rule: OutcomeRule | None = None,
) -> OnlineAccuracy:
    """Events: feedback on answers (any order); one outcome per prediction, by the task's rule
    (default: classification's, for ``labels``). Macro-F1 needs labels: over the answers whose
    true label the feedback names."""
    rule = rule or LabelOutcomes(labels)
    right = judged = unknown = 0
    truth: list[str] = []
    answers: list[str] = []
    for event in rule.deciding(sorted(events, key=lambda e: (e.created_at, e.id))):
        correct = rule.outcome(event)
        if correct is None:
            unknown += 1
            continue
        judged += 1
        right += int(correct)
        if labels:
            label, _ = implied_label(event, labels)
            served = predicted_label(event)
            if label is not None and served is not None:
                truth.append(label)
                answers.append(served)
    if judged == 0:
        return OnlineAccuracy(version, 0, None, None, None, None, None, 0, unknown)
    low, high = wilson_interval(right, judged)
    f1, f1_ci = _macro_f1(truth, answers, labels)
    return OnlineAccuracy(version, judged, right / judged, low, high, f1, f1_ci, len(truth), unknown)


def daily_series(
    events: Iterable[FeedbackEvent], labels: Sequence[str], *, rule: OutcomeRule | None = None
) -> list[dict[str, Any]]:
    """Online accuracy per version and day the answer was served, with Wilson intervals."""
    groups: dict[tuple[int, str], list[FeedbackEvent]] = defaultdict(list)
    for event in events:
        if event.served is not None:
            groups[(event.served.version, event.served.created_at.date().isoformat())].append(event)
    out = []
    for (version, day), group in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        acc = online_accuracy(group, labels, version, rule=rule)
        if acc.n:
            out.append(
                {
                    "version": version,
                    "day": day,
                    "n": acc.n,
                    "accuracy": acc.accuracy,
                    "ci": [acc.ci_low, acc.ci_high],
                    "macro_f1": acc.macro_f1,
                    "macro_f1_ci": acc.macro_f1_ci,
                }
            )
    return out


def expected_accuracy(probabilities: Sequence[Mapping[str, float]]) -> float | None:
    """Mean top-class probability: the accuracy a calibrated model expects of itself."""
    probabilities = [p for p in probabilities if p]
    if not probabilities:
        return None
    return float(np.mean([max(p.values()) for p in probabilities]))


def drop_alarm(online: OnlineAccuracy, golden_accuracy: float | None, drop: float) -> tuple[bool, float | None, str]:
    if golden_accuracy is None:
        return False, None, "no golden accuracy to compare with"
    line = golden_accuracy - drop
    if online.n < MIN_JUDGED or online.ci_high is None:
        return False, line, f"{online.n} judged answers; {MIN_JUDGED} needed before an alarm"
    shown = online.ci_high < line
    return (
        shown,
        line,
        f"online accuracy {online.accuracy:.1%} (n={online.n}, 95% CI [{online.ci_low:.1%}, {online.ci_high:.1%}]) "
        f"vs golden {golden_accuracy:.1%} - {drop:.0%} = {line:.1%}: "
        + ("SHOWN BELOW" if shown else "not shown below"),
    )


class PerformanceService:
    def __init__(self, db: Database, clock: Clock, metrics: Metrics, report: FindingSink) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.report = report  # where a drop goes (``triggers``, which decides about a retrain)

    def performance(self, model: str, *, series: bool = False) -> Performance:
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            champion = model_repo.get_deployment(conn, model).champion_version
            version = model_repo.get_version(conn, model, champion) if champion is not None else None
            window = spec.policy.monitoring.accuracy_window
            rows = feedback_repo.judged_answers(conn, model, champion, 3 * window)
            rated = feedback_repo.judged_answers(conn, model, champion, 3 * window, [FeedbackKind.RATING])
            answers = prediction_repo.recent_answers(conn, model, champion, EXPECTED_WINDOW) if champion else []
            probabilities = [dict(a.get("probabilities") or {}) for a in answers]
            history = feedback_repo.judged_answers(conn, model, None, SERIES_EVENTS) if series else []
        rule = get_task(spec.task).outcomes(spec)
        newest = newest_judged(rows, window)
        online = online_accuracy(newest, spec.labels, champion, rule=rule)
        golden = (version.metrics.get("golden") or {}) if version else {}
        alarm, line, reason = drop_alarm(online, golden.get("accuracy"), spec.policy.monitoring.accuracy_drop)
        return Performance(
            model=model,
            version=champion,
            online=online,
            golden_accuracy=golden.get("accuracy"),
            golden_ece=golden.get("ece"),
            expected_accuracy=expected_accuracy(probabilities),
            expected_n=len(probabilities),
            alarm=alarm,
            threshold=line,
            reason=reason,
            rating=online_rating(newest_ratings(rated, window), champion, spec.policy.triggers.min_mean_rating),
            series=daily_series(history, spec.labels, rule=rule) if series else [],
        )

    def timeline(self, model: str) -> list[AccuracyPoint]:
        """Every version's online accuracy over the newest ``SERIES_EVENTS`` feedback events,
        in buckets of consecutive judged answers (``monitoring.timeline``)."""
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            history = feedback_repo.judged_answers(conn, model, None, SERIES_EVENTS)
        return accuracy_timeline(history, get_task(spec.task).outcomes(spec))

    def check(self, model: str) -> Performance:
        """Measure, export to Prometheus, and on a change of alarm state write the event (and
        report a drop, for ``triggers`` to decide about a retrain)."""
        perf = self.performance(model)
        m = self.metrics
        if perf.online.accuracy is not None:
            m.online_accuracy.labels(model).set(perf.online.accuracy)
        if perf.expected_accuracy is not None:
            m.expected_accuracy.labels(model).set(perf.expected_accuracy)
        m.accuracy_alarm.labels(model).set(int(perf.alarm))
        if perf.rating.mean is not None:
            m.online_mean_rating.labels(model).set(perf.rating.mean)
        m.rating_alarm.labels(model).set(int(perf.rating.alarm))
        accuracy_data = {"online": asdict(perf.online), "golden_accuracy": perf.golden_accuracy}
        if self._transition(model, perf.version, perf.alarm, perf.reason, ACCURACY_EVENTS, accuracy_data):
            with contextlib.suppress(ConflictError):  # a retrain is queued or running already
                self.report(Finding(model, "accuracy_drop", perf.reason))
        rating = perf.rating
        if self._transition(model, perf.version, rating.alarm, rating.reason, RATING_EVENTS, asdict(rating)):
            with contextlib.suppress(ConflictError):
                self.report(Finding(model, "rating_drop", rating.reason))
        return perf

    def _transition(
        self, model: str, version: int | None, alarm: bool, reason: str, kinds: tuple[str, str], data: dict[str, Any]
    ) -> bool:
        """Write ``kinds[0]`` (the alarm) or ``kinds[1]`` (it cleared) when the alarm state of
        ``version`` changed since the last of them; True when an alarm was written now."""
        dropped, recovered = kinds

        def state_changed(conn: Connection) -> bool:
            last = event_repo.latest_event(conn, model, list(kinds))
            was_alarm = last is not None and last.kind == dropped and last.version == version
            return alarm != was_alarm

        with self.db.read() as conn:  # most checks change nothing: no write lock for them
            if not state_changed(conn):
                return False
        with self.db.write() as conn:
            if not state_changed(conn):  # another worker wrote it meanwhile
                return False
            event_repo.insert_event(
                conn,
                model=model,
                kind=dropped if alarm else recovered,
                version=version,
                at=self.clock.now(),
                actor="monitor",
                reason=reason,
                data=data,
            )
        return alarm

    def check_all(self) -> None:
        each_model(self.db, self.check, "performance")


def newest_judged(events: list[FeedbackEvent], window: int) -> list[FeedbackEvent]:
    """The events on the ``window`` newest distinct predictions (events are newest first)."""
    kept: list[FeedbackEvent] = []
    seen: set[str | None] = set()
    for event in events:
        if event.prediction_id not in seen:
            if len(seen) == window:
                continue
            seen.add(event.prediction_id)
        kept.append(event)
    return kept
