"""learnloop gc on a real home: old rejected and retired versions' artifacts are removed, the
protected ones stay, term counts of kept versions are dropped (they still load), an
``artifacts_pruned`` event is written, and a removed version is refused with 409
``artifact_removed``; every view of a version (the API over HTTP, ``learnloop versions``, the
dashboard) says when its artifacts were removed or its caches dropped."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    ServerLauncher,
    WorkerLauncher,
    create_model,
    make_settings,
    on_postgres,
    on_sqlite,
    run_cli,
    wait_for,
)
from learnloop.app import create_app
from learnloop.domain import VersionStatus
from learnloop.families.manifest import load_predictor
from learnloop.services import Services, build_services
from version_copies import add_version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
RETENTION_FIELDS = ("artifacts_pruned_at", "caches_dropped_at")


def promote(services: Services, version: int) -> httpx.Response:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.post(f"/v1/models/m/versions/{version}/promote", json={"force": True})

    return asyncio.run(post())


@on_postgres
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


@on_sqlite
def test_a_pruned_version_says_so_over_http_in_the_cli_and_on_the_dashboard(
    tmp_path: Path, database_url: str, live_server: ServerLauncher
) -> None:
    home = tmp_path / "home"
    services = build_services(make_settings(home, database_url))
    try:
        base = create_model(services, "m")
        champion = base.version
        services.registry.update_policy("m", {"keep_rejected": 0}, actor="test")
        pruned = add_version(services, base, VersionStatus.REJECTED, 60, 1)  # beyond keep_rejected: removed
        dropped = add_version(services, base, VersionStatus.RETIRED, 1, 2)  # within keep_retired: caches only
    finally:
        services.close()
    common = ("--home", home, "--database-url", database_url, "--model", "m")
    before = datetime.now(UTC)
    run_cli("gc", *common)
    after = datetime.now(UTC)

    server = live_server.start(home, database_url)
    with server.client() as http:
        shown = {n: http.get(f"/v1/models/m/versions/{n}").json() for n in (champion, pruned, dropped)}
        listed = {v["version"]: v for v in http.get("/v1/models/m").json()["versions"]}
        schemas = http.get("/openapi.json").json()["components"]["schemas"]
        model_page = http.get("/dashboard/models/m").text
        pruned_page, champion_page = (http.get(f"/dashboard/models/m/versions/{n}").text for n in (pruned, champion))
    pruned_at = datetime.fromisoformat(shown[pruned]["artifacts_pruned_at"])
    assert before <= pruned_at <= after
    assert shown[champion]["artifacts_pruned_at"] is None and shown[champion]["caches_dropped_at"] is None
    assert shown[dropped]["artifacts_pruned_at"] is None and shown[dropped]["caches_dropped_at"] is not None
    for n in (champion, pruned, dropped):  # the model's version list says the same
        assert {k: listed[n][k] for k in RETENTION_FIELDS} == {k: shown[n][k] for k in RETENTION_FIELDS}
    for schema in ("VersionPublic", "VersionSummary"):
        assert set(RETENTION_FIELDS) <= set(schemas[schema]["required"]), schema
        assert schemas[schema]["properties"]["artifacts_pruned_at"]["anyOf"][1] == {"type": "null"}

    marker = f"artifacts removed {pruned_at:%Y-%m-%d %H:%M} UTC"
    lines = {line.split(" ", 1)[0]: line for line in run_cli("versions", *common).stdout.splitlines()}
    assert marker in lines[f"v{pruned}"], lines
    assert "caches dropped" in lines[f"v{dropped}"] and "artifacts removed" not in lines[f"v{dropped}"]
    assert "artifacts removed" not in lines.get(f"v{champion}", "")
    assert marker in run_cli("versions", *common, "--version", str(pruned)).stdout
    assert "artifacts removed" not in run_cli("versions", *common, "--version", str(champion)).stdout
    assert "1 with artifacts removed" in run_cli("status", *common).stdout
    as_json = {v["version"]: v for v in json.loads(run_cli("versions", *common, "--json").stdout)}
    assert {n: as_json[n]["artifacts_pruned_at"] for n in as_json} == {
        n: shown[n]["artifacts_pruned_at"] for n in (champion, pruned, dropped)
    }
    one = json.loads(run_cli("versions", *common, "--version", str(dropped), "--json").stdout)
    assert one["caches_dropped_at"] == shown[dropped]["caches_dropped_at"] and one["artifacts_pruned_at"] is None

    assert "artifacts removed" in model_page and "caches dropped" in model_page
    assert f"/versions/{pruned}/promote" not in model_page  # refused anyway: not offered
    assert f"/versions/{dropped}/promote" in model_page
    assert f'<option value="{dropped}"' in model_page  # the compare form offers what can be compared
    assert f'<option value="{pruned}"' not in model_page
    assert 'id="artifact-removed"' in pruned_page and f"/versions/{pruned}/promote" not in pruned_page
    assert 'id="artifact-removed"' not in champion_page and "artifacts removed" not in champion_page


@on_sqlite
def test_a_running_worker_applies_the_retention_policy_without_a_retrain_or_gc(
    tmp_path: Path, database_url: str, live_worker: WorkerLauncher
) -> None:
    """The worker's sweep (at its start, then hourly) prunes what every model's policy no
    longer keeps, with no retrain and no ``learnloop gc`` run."""
    home = tmp_path / "home"
    services = build_services(make_settings(home, database_url))
    try:
        champion = create_model(services, "m")
        services.registry.update_policy("m", {"keep_rejected": 1}, actor="test")
        old = [add_version(services, champion, VersionStatus.REJECTED, 62 - n, n) for n in range(3)]
        worker = live_worker.start(home, database_url)

        def swept() -> list[Any]:
            return services.registry.events("m", kinds=["artifacts_pruned"])

        [event] = wait_for(swept, timeout=60, interval=0.2, what="the worker's retention sweep")
        assert event.actor == "retention", worker.log_tail()
        assert set(event.data["removed"]) == set(old[:2])  # the newest rejected one is kept
        versions = {v.version: v for v in services.registry.versions("m")}
        for number in old[:2]:
            assert versions[number].artifacts_pruned_at is not None
            assert services.store.size(versions[number].artifact_uri) == 0
        assert versions[old[2]].artifacts_pruned_at is None
        assert versions[champion.version].artifacts_pruned_at is None
        assert services.store.size(champion.artifact_uri) > 0
        assert services.jobs.list() == []  # no retrain ran
    finally:
        services.close()
