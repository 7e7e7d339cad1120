"""Fairness through a real server and the real CLI, on SQLite and PostgreSQL: a model learns the
shipped Yelp sentences and answers movie (IMDB) and product (Amazon) sentences whose requests
carry their domain as metadata; users label every answer; ``GET /fairness``, ``learnloop
fairness`` and the dashboard's panel report each domain's accuracy and rates exactly as the
answers and labels give them, with intervals, and the gaps between the domains."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, on_sqlite, run_cli, uci_rows, wait_for
from learnloop.datasets.shipped import uci_sentiment_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

M = "/v1/models/m"
PER_GROUP = 120
ON_FEEDBACK = 20  # product answers whose domain comes with the feedback, not the prediction


def start(live_server: ServerLauncher, tmp_path: Path, database_url: str) -> LiveServer:
    home = tmp_path / "home"
    shutil.copy(uci_sentiment_path("yelp"), tmp_path / "yelp.txt")
    run_cli(
        "init", "--home", home, "--database-url", database_url, "--model", "m", "--data", "yelp.txt",
        "--text-column", "0", "--label-column", "1", "--no-header",
        cwd=tmp_path,
    )  # fmt: skip
    return live_server.start(home, database_url)


def rates(rows: list[tuple[str, str]]) -> dict[str, float]:
    """Accuracy, and each label's selection and true-positive rate, of (truth, predicted) rows."""
    out = {"accuracy": sum(t == p for t, p in rows) / len(rows)}
    for label in ("0", "1"):
        out[f"sr{label}"] = sum(p == label for _, p in rows) / len(rows)
        positives = [p for t, p in rows if t == label]
        out[f"tpr{label}"] = sum(p == label for p in positives) / len(positives)
    return out


def label_everything(http: httpx.Client) -> dict[str, list[tuple[str, str]]]:
    """Ask about movie and product sentences (domain as metadata), label every answer; the
    (truth, predicted) rows per domain."""
    rng = random.Random(7)
    groups: dict[str, list[tuple[str, str]]] = {}
    for group, source in (("movies", "imdb"), ("products", "amazon_cells")):
        rows = uci_rows(source)
        rng.shuffle(rows)
        rows = rows[:PER_GROUP]
        metadata: list[dict[str, Any]] = [{"domain": group, "channel": "web"} for _ in rows]
        if group == "products":
            metadata[:ON_FEEDBACK] = [{"channel": "web"}] * ON_FEEDBACK
        body = {"items": [{"text": t, "metadata": m} for (t, _), m in zip(rows, metadata, strict=True)]}
        answered = http.post(f"{M}/predict/batch", json=body)
        assert answered.status_code == 200, answered.text
        items = answered.json()["items"]
        feedback = [
            {"prediction_id": item["prediction_id"], "label": truth}
            | ({"metadata": {"domain": group}} if i < ON_FEEDBACK and group == "products" else {})
            for i, (item, (_, truth)) in enumerate(zip(items, rows, strict=True))
        ]
        stored = http.post(f"{M}/feedback/batch", json={"items": feedback})
        assert stored.status_code in (200, 201, 207), stored.text
        assert all(r["status"] == "stored" for r in stored.json()["items"]), stored.text
        groups[group] = [(truth, item["label"]) for item, (_, truth) in zip(items, rows, strict=True)]
    return groups


@on_sqlite
def test_fairness_per_domain_through_http_the_cli_and_the_dashboard(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    server = start(live_server, tmp_path, database_url)
    with server.client() as http:
        # Metadata is bounded and flat: refused at the edge with the field named.
        nested = http.post(f"{M}/predict", json={"text": "fine", "metadata": {"a": {"b": 1}}})
        assert nested.status_code == 422 and "metadata" in nested.text, nested.text
        many = http.post(f"{M}/predict", json={"text": "fine", "metadata": {f"k{i}": i for i in range(33)}})
        assert many.status_code == 422 and many.json()["field"] == "metadata", many.text
        long_key = http.post(f"{M}/predict", json={"text": "fine", "metadata": {"k" * 65: 1}})
        assert long_key.status_code == 422 and long_key.json()["field"] == "metadata", long_key.text

        groups = label_everything(http)

        def all_joined() -> dict[str, Any] | None:
            response = http.get(f"{M}/fairness", params={"fields": "domain"})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body if body["labelled"] == 2 * PER_GROUP else None

        report = wait_for(all_joined, timeout=30, interval=0.2, what="every labelled answer to be joined")
        [version] = report["versions"]
        [by_domain] = version["fields"]
        assert (version["version"], version["n"], by_domain["field"], by_domain["n"]) == (1, 240, "domain", 240)
        found = {g["group"]: g for g in by_domain["groups"]}
        assert set(found) == {"movies", "products"}
        for group, rows in groups.items():
            want, got = rates(rows), found[group]
            assert got["n"] == PER_GROUP
            assert got["accuracy"]["value"] == pytest.approx(want["accuracy"])
            assert (
                got["accuracy"]["meaningful"] and got["accuracy"]["low"] <= want["accuracy"] <= got["accuracy"]["high"]
            )
            for label in ("0", "1"):
                assert got["selection_rate"][label]["value"] == pytest.approx(want[f"sr{label}"])
                assert got["true_positive_rate"][label]["value"] == pytest.approx(want[f"tpr{label}"])
        movies, products = rates(groups["movies"]), rates(groups["products"])
        gaps = {(g["metric"], g["label"]): g for g in by_domain["gaps"]}
        assert set(gaps) == {(m, lab) for m in ("demographic_parity", "equal_opportunity") for lab in ("0", "1")}
        eo = gaps["equal_opportunity", "1"]
        assert eo["value"] == pytest.approx(abs(movies["tpr1"] - products["tpr1"]))
        assert eo["low"] <= eo["value"] <= eo["high"] and eo["groups"] == 2
        assert by_domain["largest"]["value"] == pytest.approx(max(g["value"] for g in by_domain["gaps"]))

        # The policy names the field; the unknown model and a bad policy value are refused.
        assert http.get("/v1/models/nope/fairness").status_code == 404
        bad = http.patch(f"{M}/policy", json={"changes": {"fairness_margin": 2}})
        assert bad.status_code == 422 and bad.json()["field"] == "policy.fairness_margin", bad.text
        set_fields = http.patch(
            f"{M}/policy", json={"changes": {"fairness_fields": "domain", "fairness_min_group": 150}}
        )
        assert set_fields.status_code == 200, set_fields.text
        small = http.get(f"{M}/fairness").json()
        assert small["fields"] == ["domain"] and small["min_group"] == 150
        [small_field] = small["versions"][0]["fields"]
        # Groups of 120 under a minimum of 150: reported, no interval, no gap.
        assert small_field["gaps"] == [] and small_field["largest"] is None
        assert all(not g["accuracy"]["meaningful"] and g["accuracy"]["low"] is None for g in small_field["groups"])
        assert http.patch(f"{M}/policy", json={"changes": {"fairness_min_group": 30}}).status_code == 200

        page = http.get("/dashboard/models/m")
        assert page.status_code == 200, page.text
        assert 'id="fairness"' in page.text and "opportunity gap (domain)" in page.text, page.text[-3000:]

    home, url = server.home, server.database_url
    plot = tmp_path / "out" / "fairness.png"
    out = run_cli("fairness", "--home", home, "--database-url", url, "--model", "m", "--plot", plot).stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert "v1 by domain" in out and "equal opportunity" in out and "movies" in out and "products" in out, out
    as_json = run_cli("fairness", "--home", home, "--database-url", url, "--model", "m", "--json").stdout
    assert json.loads(as_json)["versions"][0]["fields"][0]["groups"][0]["n"] == PER_GROUP
