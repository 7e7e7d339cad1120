"""A retired version's age, for the retention policy, counts from its retirement (the registry
records when each version takes its status), on SQLite and PostgreSQL: a champion that served
a long time and was replaced recently keeps its artifact for ``keep_retired_days`` more."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import asgi_get, create_model, make_settings
from learnloop.clock import FakeClock
from learnloop.domain import VersionStatus
from learnloop.services import build_services
from version_copies import add_version

pytestmark = pytest.mark.timeout(120)

DAY = 86_400.0


def test_a_long_serving_champion_replaced_recently_is_kept_for_its_days_after_retirement(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    services = build_services(make_settings(tmp_path / "home", database_url), clock=clock)
    try:
        champion = create_model(services, "m")
        services.registry.update_policy(
            "m", {"keep_retired": 0, "keep_retired_days": 30, "drop_caches": False}, actor="test"
        )
        clock.advance(100 * DAY)  # v1 serves for 100 days
        v2 = add_version(services, champion, VersionStatus.CANDIDATE, 0, 1)
        services.registry.promote("m", v2, actor="test")
        retired = services.registry.version("m", champion.version)
        assert retired.status == VersionStatus.RETIRED
        assert retired.status_changed_at == clock.now()  # the registry's clock, stored and read back
        shown = asgi_get(services, f"/v1/models/m/versions/{champion.version}").json()["status_changed_at"]
        assert datetime.fromisoformat(shown) == clock.now()
        clock.advance(DAY)
        v3 = add_version(services, champion, VersionStatus.CANDIDATE, 0, 2)
        services.registry.promote("m", v3, actor="test")  # v2 is now the rollback target, v1 not

        clock.advance(9 * DAY)
        assert services.retention.plan("m") == []  # v1 registered 110 days ago, retired 10 days ago

        clock.advance(21 * DAY)
        assert [(p.version, p.action) for p in services.retention.plan("m")] == [(champion.version, "remove")]
    finally:
        services.close()
