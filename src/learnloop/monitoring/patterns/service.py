"""Error patterns of a model: where its answers keep being corrected.

``analyse(model)`` reads the newest ``window`` judged answers (every version's, or one
version's), and finds the patterns (``analysis``): clusters of the corrected texts and slices
with an excess of errors. It writes nothing: the API, the CLI and the dashboard show it.

``check(model)`` analyses and reports what is new: an ``error_pattern`` event for each cluster
whose region has significantly more errors than the rest and each significant slice by
predicted label, metadata field or length, that was not reported before (``novelty``).
The worker checks every model every ``CHECK_SECONDS`` (and once when it starts); the CLI
(``learnloop patterns --check``) and the API (``POST .../error-patterns/check``) check now.
Word slices are shown but not reported: the clusters say the same in fewer events. Webhooks
subscribe to the kind (``kinds: ["error_pattern"]``). The events carry terms, sizes, label pairs
and rates, never users' texts (webhooks deliver them elsewhere).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from learnloop.clock import Clock
from learnloop.monitoring.patterns.analysis import Analysis, ErrorPattern, Progress, analyse, quiet
from learnloop.monitoring.patterns.judged import judged_answers
from learnloop.monitoring.patterns.novelty import Known
from learnloop.monitoring.patterns.slices import ErrorSlice
from learnloop.monitoring.sweep import each_model
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.tasks import get_task

log = logging.getLogger(__name__)
WINDOW = 10_000  # newest judged answers analysed
KIND = "error_pattern"
ACTOR = "monitor:patterns"
REPORTED_SLICES = ("predicted", "metadata", "length")
REMEMBERED = 1_000  # reported patterns compared with
CHECK_SECONDS = 6 * 3600  # how often the worker checks every model


@dataclass(frozen=True)
class ModelPatterns:
    model: str
    version: int | None  # the version analysed; None: every version's answers
    window: int
    analysis: Analysis


@dataclass(frozen=True)
class Reported:
    """What a check reported: the ``error_pattern`` events it wrote (their data)."""

    patterns: ModelPatterns
    new: list[dict[str, Any]]


class ErrorPatternService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def analyse(
        self, model: str, *, version: int | None = None, window: int = WINDOW, progress: Progress = quiet
    ) -> ModelPatterns:
        """The patterns in the newest ``window`` judged answers (of ``version``, if given)."""
        progress(0.0, "reading feedback")
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            if version is not None:
                model_repo.get_version(conn, model, version)  # NotFoundError for a version it never had
            events = feedback_repo.judged_answers(conn, model, version, 3 * window)
        events.reverse()  # oldest first, as the outcome rule reads them
        rows = judged_answers(events, get_task(spec.task).outcomes(spec), spec.labels)[-window:]

        def scaled(fraction: float, message: str) -> None:
            progress(0.1 + 0.9 * fraction, message)

        return ModelPatterns(model, version, window, analyse(rows, progress=scaled))

    def check(self, model: str, *, actor: str = ACTOR, progress: Progress = quiet) -> Reported:
        """Analyse every version's newest answers and write an event per new pattern."""
        found = self.analyse(model, progress=progress)
        candidates = [_cluster_data(p) for p in found.analysis.patterns if p.region.significant]
        candidates += [_slice_data(s) for s in found.analysis.slices if s.kind in REPORTED_SLICES]
        new: list[dict[str, Any]] = []
        if not candidates:  # most checks: nothing to report, no write
            return Reported(found, new)
        with self.db.write() as conn:
            champion = model_repo.get_deployment(conn, model, for_update=True).champion_version  # one check at a time
            known = Known(e.data for e in event_repo.list_events(conn, model, REMEMBERED, None, [KIND]))
            for data in candidates:
                if not known.admit(data):
                    continue
                event_repo.insert_event(
                    conn, model=model, kind=KIND, version=champion, at=self.clock.now(), actor=actor,
                    reason=_reason(data), data=data,
                )  # fmt: skip
                new.append(data)
        if new:
            log.info("model %s: %d new error patterns", model, len(new), extra={"model": model})
        return Reported(found, new)

    def check_all(self) -> None:
        """Check every model (the worker's periodic work, every ``CHECK_SECONDS``); a failing
        model is logged and the others still checked."""
        each_model(self.db, self.check, "error-pattern")


def _rates(n: int, errors: int, rest_n: int, rest_errors: int, p: float, q: float) -> dict[str, Any]:
    return {
        "n": n,
        "errors": errors,
        "error_rate": errors / n if n else None,
        "rest_n": rest_n,
        "rest_error_rate": rest_errors / rest_n if rest_n else None,
        "p_value": p,
        "q_value": q,
    }


def _cluster_data(pattern: ErrorPattern) -> dict[str, Any]:
    r = pattern.region
    return {
        "type": "cluster",
        "terms": pattern.terms,
        "size": pattern.size,
        "pairs": [[pair, n] for pair, n in pattern.pairs],
        **_rates(r.n, r.errors, r.rest_n, r.rest_errors, r.p_value, r.q_value),
    }


def _slice_data(found: ErrorSlice) -> dict[str, Any]:
    t = found.test
    return {
        "type": "slice",
        "key": found.key,
        "slice": found.kind,
        **_rates(t.n, t.errors, t.rest_n, t.rest_errors, t.p_value, t.q_value),
    }


def _reason(data: dict[str, Any]) -> str:
    rate = (
        f"{data['error_rate'] or 0:.0%} wrong against {data['rest_error_rate'] or 0:.0%} elsewhere "
        f"(q={data['q_value']:.2g})"
    )
    if data["type"] == "cluster":
        pairs = f", mostly {data['pairs'][0][0]}" if data["pairs"] else ""
        return f"new error pattern: {', '.join(data['terms'][:4])} ({data['size']} corrected answers{pairs}; {rate})"
    return f"new error slice: {data['key']} ({data['n']} judged answers, {rate})"
