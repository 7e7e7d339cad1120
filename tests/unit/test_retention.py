"""Retention: the policy section's checks and which versions it prunes (never the protected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from learnloop.domain import ModelVersion, VersionStatus
from learnloop.errors import ArtifactRemovedError, ValidationError
from learnloop.policy import Policy, RetentionPolicy
from learnloop.retention import protected_versions, select_pruning

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def version(number: int, status: VersionStatus, age_days: float, **extra: object) -> ModelVersion:
    return ModelVersion(
        model="m", version=number, status=status, family="tfidf-logreg", params={}, snapshot_hash=None,
        parent_version=None, code_version="x", metrics={}, verdict=None, artifact_uri=f"models/m/v{number}",
        created_at=NOW - timedelta(days=age_days), **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_policy_has_a_retention_section_with_the_defaults() -> None:
    r = Policy().retention
    assert (r.drop_caches, r.remove_artifacts, r.keep_rejected, r.keep_retired) == (True, True, 10, 10)
    assert (r.keep_rejected_days, r.keep_retired_days) == (30.0, 90.0)
    assert Policy.of(keep_rejected=3).retention.keep_rejected == 3
    assert Policy.from_dict(Policy.of(drop_caches=False).to_sections()).retention.drop_caches is False


@pytest.mark.parametrize("name, value", [("keep_rejected", -1), ("keep_retired_days", -2), ("drop_caches", "yes")])
def test_bad_retention_settings_are_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"policy.{name}"):
        Policy.of(**{name: value})


def test_old_rejected_beyond_the_newest_are_removed_and_the_kept_ones_drop_caches() -> None:
    versions = [version(n, VersionStatus.REJECTED, 100 - n) for n in range(1, 6)]
    plan = select_pruning(versions, frozenset(), RetentionPolicy(keep_rejected=2, keep_rejected_days=30), NOW)
    assert [(p.version, p.action) for p in plan] == [
        (1, "remove"), (2, "remove"), (3, "remove"), (4, "drop_caches"), (5, "drop_caches"),
    ]  # fmt: skip


def test_young_versions_are_kept_whatever_their_rank() -> None:
    versions = [version(n, VersionStatus.RETIRED, 5) for n in range(1, 6)]
    plan = select_pruning(versions, frozenset(), RetentionPolicy(keep_retired=1, drop_caches=False), NOW)
    assert plan == []


def test_a_retired_versions_age_counts_from_its_retirement_not_its_registration() -> None:
    retired = NOW - timedelta(days=7)
    versions = [
        version(1, VersionStatus.RETIRED, 400, status_changed_at=retired),  # served a year, replaced last week
        version(2, VersionStatus.RETIRED, 300, status_changed_at=NOW - timedelta(days=120)),
        version(3, VersionStatus.RETIRED, 200),  # retired before the time was recorded: from registration
        version(4, VersionStatus.REJECTED, 100, status_changed_at=retired),  # rolled back last week
    ]
    policy = RetentionPolicy(keep_retired=0, keep_rejected=0, drop_caches=False)
    plan = select_pruning(versions, frozenset(), policy, NOW)
    assert [(p.version, p.action) for p in plan] == [(2, "remove"), (3, "remove")]
    assert "for more than 90 days" in plan[0].reason


def test_protected_versions_are_never_touched() -> None:
    versions = [
        version(1, VersionStatus.RETIRED, 400),  # the rollback target
        version(2, VersionStatus.REJECTED, 400),  # a rollout's arm (forced onto traffic)
        version(3, VersionStatus.CHAMPION, 400),
        version(4, VersionStatus.CANDIDATE, 400),  # in flight
        version(5, VersionStatus.CHALLENGER, 400),
        version(6, VersionStatus.RETIRED, 400),  # the only one free to go
    ]
    protected = protected_versions(versions, champion=3, previous=1, rollout_arms=(2, 3))
    assert protected == {1, 2, 3, 4, 5}
    policy = RetentionPolicy(keep_rejected=0, keep_retired=0, keep_rejected_days=0, keep_retired_days=0)
    assert [(p.version, p.action) for p in select_pruning(versions, protected, policy, NOW)] == [(6, "remove")]


def test_pruned_versions_and_external_ones_are_left_alone_and_switches_turn_actions_off() -> None:
    gone = version(1, VersionStatus.REJECTED, 400, artifacts_pruned_at=NOW)
    external = ModelVersion(**{**version(2, VersionStatus.REJECTED, 400).__dict__, "artifact_uri": ""})
    dropped = version(3, VersionStatus.REJECTED, 1, caches_dropped_at=NOW)
    policy = RetentionPolicy(keep_rejected=0, keep_rejected_days=0)
    assert [p.version for p in select_pruning([gone, external, dropped], frozenset(), policy, NOW)] == [3]
    off = RetentionPolicy(keep_rejected=0, keep_rejected_days=0, remove_artifacts=False, drop_caches=False)
    assert select_pruning([version(4, VersionStatus.REJECTED, 400)], frozenset(), off, NOW) == []


def test_a_removed_versions_artifact_is_refused_with_artifact_removed() -> None:
    with pytest.raises(ArtifactRemovedError, match="retention policy") as caught:
        version(1, VersionStatus.RETIRED, 1, artifacts_pruned_at=NOW).check_artifact()
    assert caught.value.code == "artifact_removed"
    version(2, VersionStatus.RETIRED, 1).check_artifact()


def test_the_worker_applies_retention_after_a_retrain_and_a_failure_there_does_not_fail_the_job() -> None:
    from types import SimpleNamespace

    from learnloop.telemetry import Metrics
    from learnloop.worker import Worker

    applied: list[tuple[str, str]] = []

    class Retention:
        def apply(self, model: str, *, actor: str) -> None:
            applied.append((model, actor))
            raise RuntimeError("store unreachable")

    outcome = SimpleNamespace(promoted=True, rollout=None, to_dict=lambda: {"version": 2})
    training = SimpleNamespace(retrain=lambda model, actor, progress: outcome)
    worker = Worker(None, training, None, None, Metrics(), None, Retention())  # type: ignore[arg-type]
    job = SimpleNamespace(id="j1", model="m", attempts=1)
    assert worker._run_retrain(job, SimpleNamespace(proceed=lambda **_: None)) == {"version": 2}  # type: ignore[arg-type]
    assert applied == [("m", "job:j1")]
