"""Synthetic rows for a thin class through the real retrain: in the stored training snapshot,
marked and recorded in the version's lineage; never in the golden set nor the recent validation."""

from __future__ import annotations

import gzip
import json

from typer.testing import CliRunner

from conftest import asgi_get, uci_rows
from learnloop.cli.main import app
from learnloop.config import Settings
from learnloop.domain import FeedbackInput
from learnloop.policy import Policy
from learnloop.services import Services


def stored_rows(services: Services, snapshot_hash: str) -> list[dict[str, object]]:
    snapshot = services.registry.snapshot(snapshot_hash)
    assert snapshot is not None
    return [json.loads(line) for line in gzip.decompress(services.store.get_bytes(snapshot.uri)).splitlines()]


def test_a_thin_class_gets_marked_synthetic_rows_in_training_and_none_in_any_evaluation(
    services: Services, settings: Settings
) -> None:
    data = uci_rows("yelp")
    pos = [r for r in data if r[1] == "1"]
    neg = [r for r in data if r[1] == "0"]
    golden = pos[:60] + neg[:60]
    services.registry.create_model(
        name="m",
        labels=["0", "1"],
        family="tfidf-logreg",
        params={},
        policy=Policy.of(augment_min_examples=80, recent_blocks=3, min_train_examples=20),
        train=pos[60:260] + neg[60:80],  # 200 positive, 20 negative: the negative class is thin
        golden=golden,
        source="uci:yelp thin",
    )
    first = services.training.bootstrap("m")
    counts = first.metrics["snapshot_counts"]
    assert counts["train_synthetic"] == 60 and counts["augmented"]["by_label"] == {"0": 60}
    assert first.metrics["golden"]["n"] == len(golden)

    for text, label in neg[80:120] + pos[260:300]:  # feedback: judged by the forward-chaining folds
        services.feedback.record_sync("m", [FeedbackInput(text=text, label=label)])
    outcome = services.training.retrain("m", actor="test")
    version = services.registry.version("m", outcome.version)
    rows = stored_rows(services, outcome.snapshot)
    synthetic = [r for r in rows if str(r["source"]).startswith("synthetic:")]
    assert len(synthetic) == version.metrics["snapshot_counts"]["train_synthetic"] > 0
    assert all(r["validation_block"] is None and r["label"] == "0" for r in synthetic)
    assert any(r["validation_block"] is not None for r in rows)  # the recent blocks exist, synthetic-free
    judged = sum(1 for r in rows if r["validation_block"] is not None)
    assert version.metrics["recent"]["n"] == judged
    # the golden set, as the next retrain reads it, is exactly the rows it was made of
    gathered = services.training.gather("m", services.clock.now())
    assert gathered.golden == golden and version.metrics["golden"]["n"] == len(golden)
    assert not {str(r["text"]) for r in synthetic} & {t for t, _ in gathered.golden}

    where = ["--home", str(settings.home), "--database-url", settings.database_url, "--model", "m"]
    shown = CliRunner().invoke(app, ["versions", "--version", str(outcome.version), *where], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert f"synthetic training rows: {len(synthetic)} by eda (seed 0)" in shown.output

    page = asgi_get(services, "/dashboard/models/m")  # the lineage column names them
    assert page.status_code == 200 and f"{len(synthetic)} synthetic" in page.text
