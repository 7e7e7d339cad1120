"""Retention benchmark: disk bytes of a model's artifacts after N retrains, with and without
the retention policy (``learnloop.retention``).

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/retention_bench.py                  # 20 retrains of 5,000 rows
    .venv/bin/python bench/retention_bench.py --retrains 10 --examples 50000

The data is serve_bench's (texts of shipped UCI sentences joined, seeded). For each setting a
fresh home is built (a model of ``--examples`` bootstrap rows), then ``--retrains`` retrains
run in process (``TrainingService.retrain``, what ``learnloop retrain --wait`` runs), each after
50 new labelled examples; with a retention setting, ``RetentionService.apply`` runs after each
retrain (as the worker does). Settings: ``off`` (drop_caches and remove_artifacts off: every
byte kept, as before retention), ``default`` (the default policy: the bench's versions are all
younger than 30 days, so only term counts of versions that no longer serve are dropped), and
``tight`` (keep 2 rejected and 2 retired, no age limit). Printed per setting: the artifact
store's bytes under ``models/`` and the versions by status. ``uptime``'s load is printed: the
machine may be shared.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from serve_bench import make_retrain_data, read_sentences  # noqa: E402

MODEL = "sentiment"
SETTINGS = {
    "off": {"drop_caches": False, "remove_artifacts": False},
    "default": {},
    "tight": {"keep_rejected": 2, "keep_retired": 2, "keep_rejected_days": 0, "keep_retired_days": 0},
}


def uptime() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run(home: Path, examples: int, retrains: int, retention: dict[str, object]) -> dict[str, object]:
    from learnloop.config import Settings
    from learnloop.domain import FeedbackInput
    from learnloop.models import NewModel, RowsSource
    from learnloop.services import build_services

    corpus = [row for name in ("yelp", "amazon_cells", "imdb") for row in read_sentences(name)]
    services = build_services(Settings(home=home, isolate_training=False))
    try:
        services.creation.create(
            NewModel(MODEL, policy={"retrain_every": 1_000_000_000, "min_recent_examples": 10, **retention}),
            RowsSource(make_retrain_data(corpus, round(examples / 0.8), seed=7), name="retrain.csv"),
            actor="bench",
        )
        started = time.perf_counter()
        for i in range(retrains):
            more = make_retrain_data(corpus, 50, seed=100 + i)
            services.feedback.record_sync(MODEL, [FeedbackInput(text=t, label=lab) for t, lab in more])
            services.training.retrain(MODEL, actor="bench")
            services.retention.apply(MODEL, actor="bench")
        seconds = time.perf_counter() - started
        statuses = collections.Counter(v.status.value for v in services.registry.versions(MODEL))
        return {"bytes": services.store.size(f"models/{MODEL}"), "statuses": dict(statuses), "seconds": seconds}
    finally:
        services.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=5_000, help="bootstrap training rows")
    p.add_argument("--retrains", type=int, default=20)
    p.add_argument("--settings", default="off,default,tight", help="comma-separated: " + ", ".join(SETTINGS))
    args = p.parse_args()
    print(f"{args.retrains} retrains of {args.examples} rows; load before {uptime()} on {os.cpu_count()} CPUs")
    for name in args.settings.split(","):
        with tempfile.TemporaryDirectory(prefix="llretention-") as tmp:
            r = run(Path(tmp) / "home", args.examples, args.retrains, SETTINGS[name])
        mib = int(r["bytes"]) / 2**20  # type: ignore[call-overload]
        print(f"{name:>8}: {mib:7.1f} MiB of artifacts  versions {r['statuses']}  "
              f"({r['seconds']:.0f}s of retrains, load {uptime()})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
