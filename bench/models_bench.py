"""What creating and deleting a model costs, in process (the services a server builds). Prints
the figures; asserts nothing.

    .venv/bin/python bench/models_bench.py [--database-url postgresql+psycopg://...] [--predictions 20000]

A PostgreSQL URL is only used to reach the server: the bench works in a database of its own
(``llbench_models_<pid>``), dropped at the end.

Creation: a model from the 3,000 shipped UCI sentences (all three domains), version 1 fitted in
this process, and a refused attempt (one label) for comparison. Deletion: the same model after
``--predictions`` answers were logged and a quarter of them corrected by feedback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from learnloop.config import Settings
from learnloop.datasets import UCI_DOMAINS, read_labelled, uci_sentiment_path
from learnloop.errors import DataError
from learnloop.feedback.intake import FeedbackInput
from learnloop.models import NewModel, RowsSource
from learnloop.services import Services, build_services


def shipped_rows() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for domain in UCI_DOMAINS:
        data = read_labelled(uci_sentiment_path(domain), text_column="0", label_column="1", header=False)
        rows += zip(data.texts, data.labels, strict=True)
    return rows


@contextmanager
def own_database(server_url: str | None) -> Iterator[str | None]:
    """A fresh database on the server at ``server_url`` (None: SQLite in the home), dropped after."""
    if server_url is None:
        yield None
        return
    name = f"llbench_models_{os.getpid()}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--predictions", type=int, default=20_000)
    args = parser.parse_args(argv)
    rows = shipped_rows()
    with tempfile.TemporaryDirectory(prefix="llbench-models-") as tmp, own_database(args.database_url) as url:
        services = build_services(Settings(home=Path(tmp), database_url=url, isolate_training=False))
        try:
            figures = run(services, rows, args.predictions)
        finally:
            services.close()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{backend}, {len(rows)} rows, {args.predictions} predictions")
    for name, seconds in figures.items():
        print(f"  {name:<44} {seconds:8.2f} s")


def run(services: Services, rows: list[tuple[str, str]], predictions: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    started = time.perf_counter()
    try:
        services.creation.create(NewModel("bench"), RowsSource([(t, "1") for t, _ in rows]), actor="bench")
    except DataError:
        figures["refused creation (one label)"] = time.perf_counter() - started
    started = time.perf_counter()
    services.creation.create(NewModel("bench"), RowsSource(rows), actor="bench")
    figures["creation (read, split, fit, store)"] = time.perf_counter() - started

    services.ingest.start()
    texts = [t for t, _ in rows]
    answers = [services.predictions.predict("bench", texts[i % len(texts)]) for i in range(predictions)]
    assert services.ingest.write_now(60)
    for start in range(0, len(answers) // 4, 500):
        batch = answers[start : start + 500]
        services.feedback.record_sync("bench", [FeedbackInput(prediction_id=a.prediction_id, label="1") for a in batch])
    started = time.perf_counter()
    report = services.deletion.delete("bench", actor="bench")
    figures[f"deletion ({report.rows['predictions']} predictions, {report.rows['feedback']} feedback)"] = (
        time.perf_counter() - started
    )
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
