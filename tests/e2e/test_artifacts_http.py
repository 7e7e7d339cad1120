"""Two hosts share one database, each with its own artifact disk: a version written where
scikit-learn differs is refused by the server that cannot load it, which keeps serving the old
champion and says why (promotion over HTTP, /health)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sklearn

from conftest import ServerLauncher, create_model, make_settings, register_version, uci_rows, wait_for
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

M = "/v1/models/m"


def saved_with_another_scikit_learn(manifest: Path) -> None:
    document = json.loads(manifest.read_text())
    document["libraries"]["scikit-learn"] = "0.0.1"
    manifest.write_text(json.dumps(document))


def test_a_promoted_version_that_cannot_load_leaves_the_old_champion_serving_and_the_api_says_why(
    tmp_path: Path, database_url: str, live_server: ServerLauncher
) -> None:
    disk_a, disk_b = tmp_path / "host-a" / "artifacts", tmp_path / "host-b" / "artifacts"
    host_a = build_services(make_settings(tmp_path / "host-a", database_url, artifact_url=disk_a.as_uri()))
    try:
        create_model(host_a, "m")
        v2 = register_version(host_a, "m", uci_rows("imdb"), note="trained on host A")
        shutil.copytree(disk_a, disk_b)  # host B's copy of the store; its v2 says another scikit-learn
        saved_with_another_scikit_learn(disk_b / v2.artifact_uri / "manifest.json")
        why = (
            f"artifact {v2.artifact_uri} was saved with scikit-learn 0.0.1, installed {sklearn.__version__}: "
            "retrain it or install scikit-learn==0.0.1"
        )
        server = live_server.start(tmp_path / "host-b", database_url, "--artifact-url", disk_b.as_uri())
        with server.client() as http:

            def served_version() -> int:
                answer = http.post(f"{M}/predict", json={"text": "The pasta was superb."})
                assert answer.status_code == 200, answer.text
                return int(answer.json()["version"])

            assert served_version() == 1
            refused = http.post(f"{M}/versions/{v2.version}/promote", json={"reason": "try it"})
            assert refused.status_code == 409, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert (refused.json()["code"], refused.json()["detail"]) == ("artifact_error", why)
            assert http.get("/health").json()["status"] == "ok"  # nothing changed

            host_a.registry.promote("m", v2.version, actor="host-a")  # loads there

            def degraded() -> dict[str, Any] | None:
                health: dict[str, Any] = http.get("/health").json()
                return health if health["status"] == "degraded" else None

            health = wait_for(degraded, timeout=20, what="host B to notice the promotion")
            assert health["models"] == {"m": 1}
            assert health["unavailable"] == {"m": f"version {v2.version} refuses to load: {why}"}
            assert served_version() == 1
            assert http.get(M).json()["deployment"]["champion_version"] == v2.version  # what the database says
        assert "refuses to load" in server.log_tail()
        assert "Traceback" not in server.log_tail()
    finally:
        host_a.close()
