"""The cost and value of each retrain: what its fit cost the machine, what its promotion
bought on live traffic (``monitoring.gain``), and the return at the model's prices
(``policy.value``), per retrain and in total.

Every version a fit made is a retrain here (version 1 too: its fit cost the same kind of
machine time, though it has no predecessor to gain over). A version that was never champion
bought nothing, exactly: its cost is the whole of its story. A promoted version is judged over
its first time as champion (from its promotion to the next change of champion, or now) against
the version it replaced, on the answers each served; one whose interval does not show a gain
is flagged as having bought nothing too, and one judged on too few answers claims nothing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from learnloop.clock import Clock
from learnloop.domain import Event, FeedbackKind, Model, ModelVersion, TrainingCost
from learnloop.monitoring.gain import UNITS, OnlineGain, accuracy_outcomes, online_gain, rating_outcomes
from learnloop.monitoring.performance import newest_judged
from learnloop.policy import ValuePolicy
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks import get_task

CHAMPION_CHANGES = ("promoted", "rolled_back")
MAX_EVENTS = 10_000  # champion changes read (far more than a model makes)


@dataclass(frozen=True)
class RetrainValue:
    version: int
    status: str
    created_at: datetime
    promoted_at: datetime | None
    cost: TrainingCost | None
    gain: OnlineGain | None
    verdict: str  # "gain" | "loss" | "no change shown" | "not promoted" | "too few answers" | "first version"
    bought_nothing: bool  # never served as champion, or its interval shows no gain
    cost_money: float
    value_money: float | None
    value_money_ci: tuple[float, float] | None
    return_money: float | None  # value - cost; None when no gain is claimed

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost"] = None if self.cost is None else self.cost.to_dict()
        out["gain"] = None if self.gain is None else self.gain.to_dict()
        return out


@dataclass(frozen=True)
class ValueReport:
    model: str
    measure: str  # the online measure gains are counted in
    unit: str
    priced: bool  # the policy sets prices: the money columns mean something
    prices: dict[str, float]
    retrains: list[RetrainValue]
    totals: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"retrains": [r.to_dict() for r in self.retrains]}

    def cumulative(self) -> list[CumulativePoint]:
        """Cost and value summed up to each retrain, in money (``priced``) or else in CPU
        seconds and ``unit``; the value's interval adds half-widths in quadrature."""
        points: list[CumulativePoint] = []
        cost = value = squares = 0.0
        for r in self.retrains:
            if self.priced:
                cost += r.cost_money
                value += r.value_money or 0.0
                ci = r.value_money_ci
            else:
                cost += r.cost.cpu_seconds if r.cost else 0.0
                value += (r.gain.gain or 0.0) if r.gain and r.gain.claimed else 0.0
                ci = r.gain.gain_ci if r.gain and r.gain.claimed else None
            if ci is not None:
                squares += ((ci[1] - ci[0]) / 2) ** 2
            half = math.sqrt(squares)
            points.append(CumulativePoint(r.version, r.created_at, cost, value, value - half, value + half))
        return points


@dataclass(frozen=True)
class CumulativePoint:
    version: int
    at: datetime
    cost: float
    value: float
    value_low: float
    value_high: float


@dataclass(frozen=True)
class _Reign:
    """A version's first time as champion: from ``start`` to ``end`` (None: now)."""

    previous: int | None
    start: datetime
    end: datetime | None


def cost_money(cost: TrainingCost | None, prices: ValuePolicy) -> float:
    if cost is None:
        return 0.0
    cpu = cost.cpu_seconds / 3600 * prices.cost_per_cpu_hour
    return cpu + (cost.gpu_seconds or 0.0) / 3600 * prices.cost_per_gpu_hour


def first_reigns(changes: list[Event]) -> dict[int, _Reign]:
    """Each version's first time as champion, from the champion changes (oldest first): its
    promotions, and rollbacks of the champion (a rollout's rollback changes no champion)."""
    reigns: dict[int, _Reign] = {}
    current: int | None = None
    for event in changes:
        assert event.version is not None and event.created_at is not None  # stored events have both
        if "rollout" in event.data and event.kind == "rolled_back":
            continue  # a rollout's challenger taken off traffic: the champion stays
        if current is not None and current in reigns and reigns[current].end is None:
            reigns[current] = _Reign(reigns[current].previous, reigns[current].start, event.created_at)
        if event.kind == "promoted" and event.version not in reigns:
            reigns[event.version] = _Reign(event.data.get("previous"), event.created_at, None)
        current = event.version
    return reigns


class RetrainValueService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def report(self, model: str) -> ValueReport:
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            versions = model_repo.list_versions(conn, model)
            changes = event_repo.list_events(conn, model, MAX_EVENTS, kinds=list(CHAMPION_CHANGES))[::-1]
            reigns = first_reigns(changes)
            rows = [self._retrain(conn, spec, v, reigns.get(v.version)) for v in versions]
        prices = spec.policy.value
        measure = _measure(spec)
        return ValueReport(
            model=model,
            measure=measure,
            unit=UNITS[measure],
            priced=prices.priced,
            prices={k: v for k, v in asdict(prices).items() if k != "value_min_judged"},
            retrains=rows,
            totals=_totals(rows),
        )

    def _retrain(self, conn: Connection, spec: Model, version: ModelVersion, reign: _Reign | None) -> RetrainValue:
        prices = spec.policy.value
        spent = cost_money(version.cost, prices)
        promoted_at = reign.start if reign else None
        if reign is None or reign.previous is None:
            verdict = "not promoted" if reign is None else "first version"
            return RetrainValue(
                version.version, version.status.value, version.created_at, promoted_at, version.cost, None,
                verdict, reign is None, spent, 0.0 if reign is None else None, None,
                -spent if reign is None else None,
            )  # fmt: skip
        gain = self._gain(conn, spec, version.version, reign)
        if not gain.claimed:
            verdict, nothing = "too few answers", False
        else:
            assert gain.gain_ci is not None
            verdict = "gain" if gain.gain_ci[0] > 0 else "loss" if gain.gain_ci[1] < 0 else "no change shown"
            nothing = verdict != "gain"
        per_unit = prices.value_per_correct_answer if gain.measure == "accuracy" else prices.value_per_rating_point
        value = None if gain.gain is None else gain.gain * per_unit
        value_ci = None if gain.gain_ci is None else (gain.gain_ci[0] * per_unit, gain.gain_ci[1] * per_unit)
        return RetrainValue(
            version.version, version.status.value, version.created_at, promoted_at, version.cost, gain,
            verdict, nothing, spent, value, value_ci, None if value is None else value - spent,
        )  # fmt: skip

    def _gain(self, conn: Connection, spec: Model, version: int, reign: _Reign) -> OnlineGain:
        assert reign.previous is not None
        window = spec.policy.monitoring.accuracy_window
        measure = _measure(spec)
        kinds = [FeedbackKind.RATING] if measure == "rating" else []
        limit = 3 * window  # events; a few per answer at most
        sides = [
            feedback_repo.judged_served_between(conn, spec.name, reign.previous, None, reign.start, limit, kinds),
            feedback_repo.judged_served_between(conn, spec.name, version, reign.start, reign.end, limit, kinds),
        ]
        rule = get_task(spec.task).outcomes(spec)
        newest = [newest_judged(side, window) for side in sides]  # the ``window`` newest answers a side
        before, after = (
            rating_outcomes(side) if measure == "rating" else accuracy_outcomes(side, rule) for side in newest
        )
        served = prediction_repo.count_served_between(conn, spec.name, version, reign.start, reign.end)
        return online_gain(
            measure, reign.previous, before, after, served, min_judged=spec.policy.value.value_min_judged, seed=version
        )


def _measure(model: Model) -> str:
    return "rating" if model.task == "generation" else "accuracy"


def _totals(rows: list[RetrainValue]) -> dict[str, Any]:
    """Sums over the retrains. The gain's interval adds the retrains' half-widths in
    quadrature (as if independent: an approximation, since a retrain's 'before' is its
    predecessor's 'after')."""
    costs = [r.cost for r in rows if r.cost is not None]
    claimed = [r for r in rows if r.gain is not None and r.gain.claimed]
    gain = sum(r.gain.gain or 0.0 for r in claimed if r.gain)
    half = math.sqrt(
        sum(((r.gain.gain_ci[1] - r.gain.gain_ci[0]) / 2) ** 2 for r in claimed if r.gain and r.gain.gain_ci)
    )
    value = sum(r.value_money or 0.0 for r in claimed)
    spent = sum(r.cost_money for r in rows)
    return {
        "retrains": len(rows),
        "measured": len(costs),  # versions whose fit recorded its cost
        "cpu_seconds": sum(c.cpu_seconds for c in costs),
        "wall_seconds": sum(c.wall_seconds for c in costs),
        "gpu_seconds": sum(c.gpu_seconds or 0.0 for c in costs),
        "peak_rss_bytes": max((c.peak_rss_bytes for c in costs), default=None),
        "cost_money": spent,
        "gain": gain if claimed else None,
        "gain_ci": [gain - half, gain + half] if claimed else None,
        "value_money": value if claimed else None,
        "return_money": value - spent,
        "bought_nothing": sum(r.bought_nothing for r in rows),
        "claimed": len(claimed),
    }
