"""Versions registered as copies of another's artifact, for the retention tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from learnloop.domain import ModelVersion, VersionStatus
from learnloop.services import Services


def add_version(services: Services, base: ModelVersion, status: VersionStatus, age_days: float, n: int) -> int:
    """A copy of ``base``'s artifact registered as a version of ``status``, ``age_days`` old."""
    key = services.store.put_dir(f"models/{base.model}/copy-{n}", services.store.get_dir(base.artifact_uri))
    draft = replace(base, version=0, status=status, artifact_uri=key,
                    created_at=services.clock.now() - timedelta(days=age_days))  # fmt: skip
    return services.registry.register(draft, actor="test").version
