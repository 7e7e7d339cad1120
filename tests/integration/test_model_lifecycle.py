"""Creating and deleting a model as use cases, on a real database (SQLite file and PostgreSQL)
and a real artifact store: bad data of every kind leaves nothing behind and a second attempt
works; a deletion empties every table of the model and its files, and stays in the audit trail."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import register_version, uci_rows, wait_for
from learnloop.domain import Strategy
from learnloop.errors import ConflictError, DataError, NotFoundError, ValidationError
from learnloop.feedback.intake import FeedbackInput
from learnloop.models import FileSource, NewModel, RowsSource
from learnloop.services import Services, build_services
from learnloop.store import tables as t

YELP = uci_rows("yelp")[:300]
# One character each: distinct texts, but no word TF-IDF can learn (it fails in the fit).
WORDLESS = [(c, "ab"[i % 2]) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789")]


def table_counts(services: Services, model: str | None = None) -> dict[str, int]:
    """Rows per table (of ``model`` where the table names one; all rows without it)."""
    counts = {}
    with services.db.read() as conn:
        for table in t.metadata.sorted_tables:
            q = select(func.count()).select_from(table)
            column = table.c.get("model") if table.name != "models" else table.c.name
            if model is not None and column is not None:
                q = q.where(column == model)
            elif model is not None:
                continue
            counts[table.name] = int(conn.execute(q).scalar_one())
    return counts


def stored_files(services: Services) -> list[str]:
    root = services.store.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "text,label") -> Path:
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([tuple(header.split(",")), *rows])
    return path


def create(services: Services, name: str = "m", rows: list[tuple[str, str]] = YELP, **options: Any) -> Any:
    return services.creation.create(NewModel(name, **options), RowsSource(rows), actor="test")


def bad_sources(tmp: Path) -> dict[str, tuple[FileSource | RowsSource, str, str]]:
    """kind -> (data, the field named, words of the message)."""
    long_labels = [(text, "x" * 200 if i % 2 else "y") for i, (text, _) in enumerate(YELP)]
    punctuation = [("!" * (i + 1), "ab"[i % 2]) for i in range(40)]  # all near copies of each other
    return {
        "one row": (FileSource(write_csv(tmp / "one.csv", [("good food", "1")])), "label_column", "two labels"),
        "one class": (RowsSource([(text, "1") for text, _ in YELP[:50]]), "data", "holds only '1'"),
        "empty texts": (FileSource(write_csv(tmp / "empty.csv", [("", "1"), ("  ", "0")])), "data", "2 empty_text"),
        "a missing column": (FileSource(write_csv(tmp / "m.csv", YELP, "review,label")), "text_column", "'text'"),
        "10,000 labels": (RowsSource([(f"text {i}", f"l{i}") for i in range(10_000)]), "data", "10,000 distinct"),
        "too few per label": (RowsSource([("good", "1"), ("bad", "0"), ("nice", "1")]), "data", "at least 3"),
        "a label too long": (RowsSource(long_labels), "data", "200 characters"),
        "no text left after curation": (RowsSource(punctuation), "data", "no training text"),
        "texts without words": (RowsSource(WORDLESS), "data", "empty vocabulary"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "one row",
        "one class",
        "empty texts",
        "a missing column",
        "10,000 labels",
        "too few per label",
        "a label too long",
        "no text left after curation",
        "texts without words",
    ],
)
def test_bad_data_is_one_clear_error_and_leaves_nothing_behind(services: Services, tmp_path: Path, kind: str) -> None:
    source, field, words = bad_sources(tmp_path)[kind]
    with pytest.raises(DataError) as caught:
        services.creation.create(NewModel("m"), source, actor="test")
    assert caught.value.field == field, caught.value.message
    assert words in caught.value.message
    assert "\n" not in caught.value.message
    assert set(table_counts(services).values()) == {0}
    assert stored_files(services) == []


def test_a_failed_fit_removes_its_artifacts_and_a_second_attempt_works(services: Services) -> None:
    with pytest.raises(DataError, match="empty vocabulary"):
        create(services, rows=WORDLESS)
    assert set(table_counts(services).values()) == {0}
    assert stored_files(services) == []

    created = create(services, policy={"retrain_every": 7})
    assert (created.version.version, created.model.policy.triggers.retrain_every) == (1, 7)
    assert services.registry.deployment("m").champion_version == 1
    assert services.predictions.predict("m", "The food was great.").version == 1
    assert [e.kind for e in reversed(services.registry.events("m"))] == [
        "model_created",
        "version_registered",
        "promoted",
    ]
    counts = table_counts(services, "m")
    assert counts["examples"] == len(created.data.train) + len(created.data.golden) == len(YELP)
    assert (counts["model_versions"], counts["snapshots"], counts["deployments"]) == (1, 1, 1)


def test_name_family_params_and_options_are_refused_before_the_data_is_read(services: Services, tmp_path: Path) -> None:
    missing = FileSource(tmp_path / "never-written.csv")  # reading it would be a DataError
    cases = [
        (NewModel("Bad Name"), "name"),
        (NewModel("m", family="bert-xxl"), "family"),
        (NewModel("m", params={"depth": 3}), "params"),
        (NewModel("m", params={"C": "big"}), "params.C"),
        (NewModel("m", task="translation"), "task"),
        (NewModel("m", task="generation", backend="nowhere"), "backend"),  # no such backend
        (NewModel("m", task="generation", backend="external"), "data"),  # an external model takes no data
        (NewModel("m", policy={"retrain_evry": 5}), "policy"),
        (NewModel("m", golden_fraction=0.9), "golden_fraction"),
    ]
    for request, field in cases:
        with pytest.raises(ValidationError) as caught:
            services.creation.create(request, missing, actor="test")
        assert caught.value.field == field, (request, caught.value.message)
    with pytest.raises(ValidationError) as caught:
        services.creation.create(NewModel("m"), FileSource(missing.path, fmt="xlsx"), actor="test")
    assert caught.value.field == "format"
    create(services)
    with pytest.raises(ConflictError, match="already exists"):
        services.creation.create(NewModel("m"), missing, actor="test")
    assert table_counts(services, "m")["model_versions"] == 1


def test_a_file_is_read_with_its_options_and_skipped_rows_are_counted(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv.gz"
    lines = [f"{label}\t{text}" for text, label in YELP] + ["1\t", "\tno label"]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    source = FileSource(path, text_column="1", label_column="0", header=False, name="reviews.tsv.gz")
    created = services.creation.create(NewModel("m", golden_fraction=0.25, seed=3), source, actor="test")
    assert created.data.rows == len(YELP)
    assert created.data.skipped == {"empty_text": 1, "missing_label": 1}
    assert created.data.source == "reviews.tsv.gz"
    assert created.model.labels == ("0", "1")
    assert 0.2 < len(created.data.golden) / len(YELP) < 0.3


def test_losing_a_race_for_the_name_removes_only_what_the_loser_wrote(services: Services) -> None:
    """Another creation of the same name commits while this one trains: this one is a conflict,
    its version's files go, and the winner's model (same data, same snapshot) keeps working."""

    def meanwhile(fraction: float, message: str) -> None:
        if message.startswith("storing"):
            create(services, "m")  # the winner, from another caller

    with pytest.raises(ConflictError, match="already exists"):
        services.creation.create(NewModel("m"), RowsSource(YELP), actor="loser", progress=meanwhile)
    winner = services.registry.version("m", 1)
    assert len([f for f in stored_files(services) if f.startswith("models/m/") and f.endswith("manifest.json")]) == 1
    assert services.registry.training_data("m", 1)  # the shared snapshot's rows are still there
    assert services.predictions.predict("m", "Loved it.").version == winner.version
    assert table_counts(services, "m")["model_versions"] == 1


def test_deleting_a_model_empties_every_table_and_its_files_and_is_audited(services: Services) -> None:
    create(services, "a")
    create(services, "b")  # same data: version 1 of each shares one snapshot, owned by "a"
    services.ingest.start()
    results = [services.predictions.predict("a", text, f"user-{i}") for i, (text, _) in enumerate(YELP[:40])]
    challenger = register_version(services, "a", YELP[:200], note="a shadow")
    services.rollouts.start("a", challenger.version, Strategy.SHADOW, actor="test")
    results += [services.predictions.predict("a", text) for text, _ in YELP[40:60]]
    services.shadow.drain()
    services.feedback.record_sync("a", [FeedbackInput(prediction_id=r.prediction_id, label="1") for r in results])
    services.drift.check("a")
    services.jobs.enqueue("a", "retrain", requested_by="test")
    services.predictions.predict("b", "Nice place.")
    assert services.ingest.write_now()
    before = table_counts(services, "a")
    filled = ("predictions", "shadow_predictions", "feedback", "rollouts", "jobs", "drift_checks", "snapshots")
    assert all(before[name] > 0 for name in filled), before
    b_before = table_counts(services, "b")

    report = services.deletion.delete("a", actor="test", reason="done with it")

    after = table_counts(services, "a")
    assert {name: n for name, n in after.items() if n and name != "events"} == {}
    assert report.rows["predictions"] == before["predictions"] and report.versions == [1, 2]
    assert report.snapshots_kept and set(report.snapshots_kept.values()) == {"b"}
    assert not [
        f for f in stored_files(services) if f.split("/")[:2] in (["models", "a"], ["snapshots", "a"], ["drift", "a"])
    ]
    b_after = table_counts(services, "b")
    assert b_after == {**b_before, "snapshots": b_before["snapshots"] + 1}  # the shared snapshot is b's now
    assert services.registry.training_data("b", 1)  # and its rows still load
    assert services.predictions.predict("b", "Nice place.").version == 1
    with services.db.read() as conn:
        kinds = [
            k for (k,) in conn.execute(select(t.events.c.kind).where(t.events.c.model == "a").order_by(t.events.c.id))
        ]
    assert kinds[0] == "model_created" and kinds[-1] == "model_deleted"
    with pytest.raises(NotFoundError):
        services.predictions.predict("a", "hello")
    with pytest.raises(NotFoundError):
        services.deletion.delete("a", actor="test")
    create(services, "a")  # the name is free again
    assert services.predictions.predict("a", "Great.").version == 1


def test_a_model_is_not_deleted_while_its_retrain_runs(services: Services) -> None:
    create(services)
    job = services.jobs.enqueue("m", "retrain", requested_by="test")
    with services.db.write() as conn:  # a worker elsewhere claimed it
        conn.execute(t.jobs.update().where(t.jobs.c.id == job.id).values(status="running"))
    with pytest.raises(ConflictError, match=f"job {job.id}"):
        services.deletion.delete("m", actor="test")
    assert table_counts(services, "m")["models"] == 1


def test_other_processes_drop_a_deleted_model_at_their_next_route_refresh(services: Services) -> None:
    create(services)
    other = build_services(services.settings)
    try:
        other.start(worker=False)
        assert other.predictions.predict("m", "Tasty.").version == 1
        services.deletion.delete("m", actor="test")
        wait_for(lambda: "m" not in other.cache.model_names(), timeout=10, what="the route refresh")
        with pytest.raises(NotFoundError):
            other.predictions.predict("m", "Tasty.")
    finally:
        other.close()
