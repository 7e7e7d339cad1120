"""learnloop gc on a real home: old rejected and retired versions' artifacts are removed, the
protected ones stay, term counts of kept versions are dropped (they still load), an
``artifacts_pruned`` event is written, and a removed version is refused with 409
``artifact_removed``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from conftest import create_model, make_settings, run_cli
from learnloop.app import create_app
from learnloop.domain import VersionStatus
from learnloop.families.manifest import load_predictor
from learnloop.services import Services, build_services
from version_copies import add_version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def promote(services: Services, version: int) -> httpx.Response:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.post(f"/v1/models/m/versions/{version}/promote", json={"force": True})

    return asyncio.run(post())


def test_gc_prunes_old_versions_keeps_protected_ones_and_a_removed_one_is_409(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    services = build_services(make_settings(home, database_url))
    try:
        champion = create_model(services, "m")
        assert services.store.size(champion.artifact_uri) > 0
        services.registry.update_policy("m", {"keep_rejected": 1, "keep_retired": 1}, actor="test")
        old_rejected = [add_version(services, champion, VersionStatus.REJECTED, 60, n) for n in range(3)]
        young_rejected = add_version(services, champion, VersionStatus.REJECTED, 1, 10)
        old_retired = [add_version(services, champion, VersionStatus.RETIRED, 200, n) for n in range(20, 22)]
        in_flight = add_version(services, champion, VersionStatus.CANDIDATE, 400, 30)
    finally:
        services.close()
    common = ("--home", home, "--database-url", database_url, "--model", "m")

    dry = json.loads(run_cli("gc", *common, "--dry-run", "--json").stdout)
    would_remove = {p["version"] for p in dry["pruned"] if p["action"] == "remove"}
    # the newest rejected (young) and retired are kept; the others beyond keep_* and their days go
    assert would_remove == {*old_rejected, old_retired[0]}
    assert champion.version in dry["protected"] and in_flight in dry["protected"]
    assert dry["bytes_freed"] > 0

    table = run_cli("gc", *common)
    assert "pruned" in table.stdout and "MiB" in table.stdout, table.stdout
    again = json.loads(run_cli("gc", *common, "--dry-run", "--json").stdout)
    assert again["pruned"] == []  # nothing twice

    services = build_services(make_settings(home, database_url))
    try:
        versions = {v.version: v for v in services.registry.versions("m")}
        for number in would_remove:
            assert versions[number].artifacts_pruned_at is not None
            assert services.store.size(versions[number].artifact_uri) == 0
        for number in (champion.version, in_flight):
            assert versions[number].artifacts_pruned_at is None and versions[number].caches_dropped_at is None
        kept = versions[young_rejected]
        assert kept.caches_dropped_at is not None and kept.artifacts_pruned_at is None
        assert not (services.store.get_dir(kept.artifact_uri) / "train_counts.npz").exists()
        assert load_predictor(services.store, kept.artifact_uri).predict_proba(["great food"]) is not None
        assert (services.store.get_dir(champion.artifact_uri) / "train_counts.npz").exists()
        events = services.registry.events("m", kinds=["artifacts_pruned"])
        assert len(events) == 1 and set(events[0].data["removed"]) == would_remove

        refused = promote(services, old_rejected[0])
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "artifact_removed"
        assert "retention policy" in refused.json()["detail"]
    finally:
        services.close()
