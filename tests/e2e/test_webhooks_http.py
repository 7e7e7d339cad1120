"""Webhooks through a real server and the real CLI: registered over HTTP, a promotion and a
rollback reach a receiver signed, the deliveries are listed, and the webhook is removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ServerLauncher, create_model, make_settings, register_version, run_cli, uci_rows, wait_for
from learnloop.curation import split_golden
from learnloop.notify import verify_signature
from learnloop.services import build_services
from webhook_receiver import receiving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_promotion_and_rollback_reach_a_webhook_registered_over_http(
    live_server: ServerLauncher, tmp_path: Path
) -> None:
    # SQLite only: tests/integration/test_webhooks.py runs the same delivery paths on PostgreSQL.
    home, database_url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    services = build_services(make_settings(home, database_url))
    try:
        create_model(services, "m")
        train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
        version = register_version(services, "m", train[:400], note="a second version").version
    finally:
        services.close()
    server = live_server.start(home, database_url)
    db = ["--home", str(home), "--database-url", database_url]

    with receiving() as receiver, server.client() as http:
        bad = http.post("/v1/webhooks", json={"url": "ftp://example.com/hook"})
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert bad.json()["field"] == "url"

        created = http.post("/v1/webhooks", json={"url": receiver.url + "/learnloop", "model": "m"})
        assert created.status_code == 201, created.text
        hook = created.json()
        secret, hook_id = hook["secret"], hook["id"]
        assert len(secret) >= 32 and "promoted" in hook["kinds"]
        listed = http.get("/v1/webhooks").json()
        assert [w["id"] for w in listed] == [hook_id] and "secret" not in listed[0]

        test = http.post(f"/v1/webhooks/{hook_id}/test")
        assert test.status_code == 200 and test.json()["delivered"], test.text

        assert http.post(f"/v1/models/m/versions/{version}/promote", json={"reason": "try it"}).status_code == 200
        assert http.post("/v1/models/m/rollback", json={"reason": "changed my mind"}).status_code == 200
        received = receiver.wait_for(3, timeout=20)  # the server's worker sends every second

        kinds = [r.headers["x-learnloop-event"] for r in received]
        assert kinds == ["webhook_test", "promoted", "rolled_back"]
        for r in received:
            assert r.path == "/learnloop"
            assert verify_signature(
                secret, r.headers["x-learnloop-timestamp"], r.body, r.headers["x-learnloop-signature"]
            )
        assert received[1].json()["summary"] == f"m: version {version} promoted, replacing version 1 (try it)"
        assert received[2].json()["data"] == {"from": version, "to": 1}

        def all_delivered() -> list[dict[str, object]] | None:
            rows = http.get(f"/v1/webhooks/{hook_id}/deliveries").json()
            return rows if len(rows) == 2 and all(d["status"] == "delivered" for d in rows) else None

        deliveries = wait_for(all_delivered, timeout=10, what="both deliveries recorded")
        assert [d["event_kind"] for d in deliveries] == ["rolled_back", "promoted"]  # newest first
        metrics = http.get("/metrics").text
        assert 'learnloop_webhook_deliveries_total{outcome="delivered"} 2.0' in metrics
        assert "learnloop_webhook_deliveries_pending 0.0" in metrics

        out = run_cli("webhooks", "deliveries", str(hook_id), *db).stdout
        assert out.count("delivered") == 2 and "rolled_back" in out

        assert http.delete(f"/v1/webhooks/{hook_id}").status_code == 204
        assert http.delete(f"/v1/webhooks/{hook_id}").status_code == 404
        assert http.get("/v1/webhooks").json() == []
        assert http.post(f"/v1/models/m/versions/{version}/promote").status_code == 200
        wait_for(
            lambda: any(e["kind"] == "promoted" for e in http.get("/v1/models/m/events", params={"limit": 1}).json()),
            timeout=5,
            what="the second promotion",
        )
        refused = run_cli("webhooks", "test", str(hook_id), *db, check=False)  # a pause of seconds, too
        assert refused.returncode == 1 and f"webhook {hook_id} not found" in refused.stderr
        assert len(receiver.requests) == 3  # removed: nothing more
        out = run_cli("webhooks", "list", *db).stdout
        assert str(receiver.url) not in out
