"""S3 benchmark: retrain and promotion time with the S3 store against the local store.

Run from the repository root with the project's virtual environment (and the s3 and test
extras: s3fs, moto[server])::

    .venv/bin/python bench/s3_bench.py                # 3 runs per store, moto server on loopback
    .venv/bin/python bench/s3_bench.py --endpoint http://127.0.0.1:9000 --bucket mybucket
                                                      # an S3-compatible server you run (MinIO...)

For each store (``file://`` in a temporary home, ``s3://`` on a moto server process this script
starts on 127.0.0.1 and stops, or on the endpoint given, with credentials from the AWS
variables), ``--runs`` times, in a fresh home and SQLite database: a tfidf-logreg model is
created from the shipped UCI sentences (all three domains, 3,000 rows, or ``--rows N`` of
serve_bench's joined pairs of them for a bigger model: what ``learnloop init`` does; its
version 1 saved to the store), ``--feedback`` labelled examples are recorded, then
timed:

- ``retrain``: ``TrainingService.retrain`` in the calling process (snapshot, fit, gate, the
  version's directory, its drift reference and the snapshot written to the store);
- ``promote``: ``RegistryService.promote`` of that version (routing state; the serving host
  loads the artifact on its next request);
- ``serve``: another host (a second service stack with its own home and an empty download
  cache) answers its first prediction with the new champion: the version's directory read
  from the store, verified by hash and loaded;
- ``put_dir`` / ``get_dir``: the version's directory written to and read back from the store
  alone (a cold cache).

Medians over the runs are printed, with the load average before and after (the machine may be
shared). A moto server keeps objects in its memory: a real S3 adds network round trips.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' moto server helper (s3_server.py)
sys.path.insert(0, str(ROOT / "bench"))

MODEL = "sentiment"


def uci_rows() -> list[tuple[str, str]]:
    from learnloop.datasets.readers import read_labelled
    from learnloop.datasets.shipped import uci_sentiment_path

    rows: list[tuple[str, str]] = []
    for domain in ("yelp", "amazon_cells", "imdb"):
        data = read_labelled(uci_sentiment_path(domain), text_column="0", label_column="1", header=False)
        rows += zip(data.texts, data.labels, strict=True)
    return rows


@contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into[name] = time.perf_counter() - start


def one_run(url: str, work: Path, rows: list[tuple[str, str]], feedback: int) -> dict[str, float]:
    from learnloop.artifacts import open_store
    from learnloop.config import Settings
    from learnloop.curation import split_golden
    from learnloop.feedback.intake import FeedbackInput
    from learnloop.policy import Policy
    from learnloop.services import build_services

    database = f"sqlite:///{work / 'learnloop.db'}"
    times: dict[str, float] = {}
    train, golden = split_golden(rows, 0.2, 0)
    host_a = build_services(
        Settings(home=work / "host-a", database_url=database, artifact_url=url, isolate_training=False)
    )
    try:
        host_a.registry.create_model(
            name=MODEL,
            labels=["0", "1"],
            family="tfidf-logreg",
            params={},
            policy=Policy.of(min_recent_examples=1),
            train=train,
            golden=golden,
            source="uci",
        )
        host_a.training.bootstrap(MODEL)
        examples = [
            FeedbackInput(text=f"{text} (seen {i})", label=label) for i, (text, label) in enumerate(rows[:feedback])
        ]
        host_a.feedback.record_sync(MODEL, examples)
        with timed(times, "retrain"):
            outcome = host_a.training.retrain(MODEL, actor="bench")
        version = host_a.registry.version(MODEL, outcome.version)
        if not outcome.promoted:
            with timed(times, "promote"):
                host_a.registry.promote(MODEL, outcome.version, actor="bench", force=True)
    finally:
        host_a.close()
    host_b = build_services(Settings(home=work / "host-b", database_url=database, artifact_url=url))
    try:
        with timed(times, "serve"):
            served = host_b.predictions.predict(MODEL, "Great food, friendly staff.")
        assert served.version == outcome.version, (served.version, outcome.version)
    finally:
        host_b.close()
    store = open_store(url, work / "cold-cache")
    directory = store.get_dir(version.artifact_uri)
    with timed(times, "put_dir"):
        store.put_dir(f"bench/{work.name}", directory)
    cold = open_store(url, work / "colder-cache")
    with timed(times, "get_dir"):
        cold.get_dir(f"bench/{work.name}")
    times["artifact_kib"] = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1024
    return times


def bench_store(name: str, url_for: Any, runs: int, feedback: int, rows: list[tuple[str, str]]) -> dict[str, Any]:
    per_run = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix=f"learnloop-s3-bench-{name}-") as tmp:
            work = Path(tmp) / f"run{run}"
            work.mkdir()
            per_run.append(one_run(url_for(work), work, rows, feedback))
            print(f"{name} run {run + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in per_run[-1].items()), flush=True)
    keys = per_run[0].keys()
    return {key: statistics.median(r[key] for r in per_run if key in r) for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--feedback", type=int, default=500, help="labelled examples recorded before the retrain")
    parser.add_argument(
        "--rows", type=int, help="model rows: serve_bench's joined sentence pairs (a bigger model) instead of the 3,000"
    )
    parser.add_argument("--endpoint", help="an S3-compatible endpoint to use instead of a moto server")
    parser.add_argument("--bucket", help="an existing bucket at --endpoint (default: a new one on moto)")
    parser.add_argument("--json", type=Path, help="write the medians here")
    args = parser.parse_args()

    rows = uci_rows()
    if args.rows:
        from serve_bench import make_retrain_data

        rows = make_retrain_data(rows, args.rows, seed=0)
    load_before = os.getloadavg()
    print(
        f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} on {os.cpu_count()} CPUs"
    )
    results: dict[str, Any] = {
        "local": bench_store("local", lambda work: (work / "artifacts").as_uri(), args.runs, args.feedback, rows)
    }

    from s3_server import aws_environment, moto_server, new_bucket

    with tempfile.TemporaryDirectory() as logs:
        server = nullcontext(args.endpoint) if args.endpoint else moto_server(Path(logs))
        with server as endpoint:
            if not args.endpoint:
                os.environ.update(aws_environment(endpoint))
            else:
                os.environ["AWS_ENDPOINT_URL"] = endpoint
            bucket = args.bucket or new_bucket(endpoint)
            results["s3"] = bench_store(
                "s3", lambda work: f"s3://{bucket}/{work.parent.name}", args.runs, args.feedback, rows
            )

    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"\nmedian of {args.runs} runs, seconds (artifact in KiB)")
    print(f"{'':10}" + "".join(f"{key:>13}" for key in results["local"]))
    for store, medians in results.items():
        print(f"{store:10}" + "".join(f"{value:13.3f}" for value in medians.values()))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load": [load_before, load_after]}, indent=2))


if __name__ == "__main__":
    main()
