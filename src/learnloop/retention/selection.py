"""Which versions' artifacts a model's retention policy prunes: pure, given the versions, the
ones that must stay and the time.

Never touched: the champion, every serving arm of a rollout (canary, shadow, A/B, and its
baseline), the version a rollback goes to (the deployment's previous champion), a version in
flight (a candidate not yet judged, a challenger), and a version with no artifact (answers
made elsewhere). Of the rest:

* a rejected (or failed) version beyond the ``keep_rejected`` newest rejected ones and rejected
  for longer than ``keep_rejected_days`` has its artifact removed (retired ones likewise with
  ``keep_retired``), when ``remove_artifacts`` is on;
* any other rejected, failed or retired version has its re-creatable caches dropped (it still
  loads), when ``drop_caches`` is on.

A version's age is counted from when it took its status (retired, rejected, failed): a
champion that served for months and was replaced yesterday is a day old. A version whose status
has not changed since it was registered (a candidate rejected by its gate), or changed before
that time was recorded (migration 0016), counts from its registration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from learnloop.domain import ModelVersion, VersionStatus
from learnloop.policy import RetentionPolicy

Action = Literal["remove", "drop_caches"]
_REJECTED = (VersionStatus.REJECTED, VersionStatus.FAILED)
_NOT_SERVING = (VersionStatus.REJECTED, VersionStatus.FAILED, VersionStatus.RETIRED)


@dataclass(frozen=True)
class Pruning:
    """One version and what the policy does to it, with why."""

    version: int
    status: str
    action: Action
    reason: str


def protected_versions(
    versions: Sequence[ModelVersion],
    *,
    champion: int | None,
    previous: int | None,
    rollout_arms: Iterable[int] = (),
) -> frozenset[int]:
    """The versions retention never touches: champion, rollback target, serving arms, in flight."""
    kept = {v for v in (champion, previous, *rollout_arms) if v is not None}
    kept.update(v.version for v in versions if v.status in (VersionStatus.CANDIDATE, VersionStatus.CHALLENGER))
    kept.update(v.version for v in versions if v.status == VersionStatus.CHAMPION)
    return frozenset(kept)


def select_pruning(
    versions: Sequence[ModelVersion],
    protected: frozenset[int],
    policy: RetentionPolicy,
    now: datetime,
) -> list[Pruning]:
    """What ``policy`` prunes of ``versions`` at ``now``, oldest version first."""
    rank: dict[int, int] = {}  # version -> place among its kind (rejected / retired), newest first
    for kind in (_REJECTED, (VersionStatus.RETIRED,)):
        newest_first = sorted((v.version for v in versions if v.status in kind), reverse=True)
        rank.update((number, place) for place, number in enumerate(newest_first))
    plan: list[Pruning] = []
    for v in sorted(versions, key=lambda v: v.version):
        if v.version in protected or v.status not in _NOT_SERVING or not v.artifact_uri:
            continue
        if v.artifacts_pruned_at is not None:
            continue
        rejected = v.status in _REJECTED
        keep, days = (
            (policy.keep_rejected, policy.keep_rejected_days)
            if rejected
            else (policy.keep_retired, policy.keep_retired_days)
        )
        since = v.status_changed_at or v.created_at
        beyond = rank[v.version] >= keep and now - since > timedelta(days=days)
        if policy.remove_artifacts and beyond:
            plan.append(
                Pruning(
                    v.version,
                    v.status.value,
                    "remove",
                    f"{v.status.value} for more than {days:g} days, beyond the {keep} newest",
                )
            )
        elif policy.drop_caches and v.caches_dropped_at is None:
            plan.append(Pruning(v.version, v.status.value, "drop_caches", f"{v.status.value}: no longer serves"))
    return plan
