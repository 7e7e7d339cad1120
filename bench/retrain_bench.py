"""Retrain benchmark: one classifier retrain on ~50,000 examples, end to end, by phase.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/retrain_bench.py                 # 3 retrains, SQLite, temporary home
    .venv/bin/python bench/retrain_bench.py --runs 5 --profile bench/results/retrain.prof

The data is serve_bench's: texts of two shipped UCI sentences of one label joined (seeded),
62,500 of them so that the 20% golden hold-out leaves ~50,000 bootstrap training rows. The
model is created in process (``ModelCreation``, what ``learnloop init`` calls), 2,000 new
examples and 500 corrections of logged predictions are recorded, then ``TrainingService.retrain``
(what ``learnloop retrain --wait`` runs, the job in the calling process) is timed ``--runs``
times, each on a fresh service stack over the same home (so nothing in memory carries over
from one run to the next: a new CLI process each time). Before each run 50 more examples are
recorded, so that every retrain has feedback its predecessor did not see.

Phases are timed by wrapping the functions that do the work (the bench's own instrumentation,
nothing in the package): ``gather`` (rows from the database), ``curate`` (conflicts, noise
filter, the snapshot: ``group`` is its near-duplicate grouping), ``fit`` (``final`` fit,
forward-chaining ``folds``, scoring), ``evaluate``, ``judge``, and what is left (``rest``:
registering, storing the snapshot, promoting). ``uptime``'s load is printed before and after:
the machine may be shared.

Each run also prints the cost the retrain recorded on its version (``training.cost``: CPU
seconds and their scope, wall seconds, peak RSS and how it was read, GPU seconds), beside the
bench's own wall and CPU clocks of the whole call (in process the recorded cost is the fitting
thread's alone: since 2026-12-06 tfidf-logreg fits its fold models in a second thread, which
the bench's process CPU counts and the recorded cost does not), and the candidate's accuracy on
the golden set and on the recent feedback (forward-chained) with the gate's decision: a faster
retrain must not be a worse one. ``--isolate`` runs the fit in the training process, as a
server does (the phases are then not seen: they run in the other process).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from serve_bench import make_retrain_data, read_sentences  # noqa: E402

MODEL = "sentiment"
TARGET_SECONDS = 10.0


class Phases:
    """Wall and CPU seconds spent in wrapped functions, by phase name (outermost call per name)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._depth: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attribute: str, phase: str) -> None:
        if not hasattr(owner, attribute):  # another version of the code: nothing of that name
            return
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth[phase] += 1
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self._depth[phase] -= 1
                if self._depth[phase] == 0:
                    self.seconds[phase] += time.perf_counter() - started
                    self.cpu[phase] += time.process_time() - cpu_started

        setattr(owner, attribute, timed)
        self._undo.append(lambda: setattr(owner, attribute, original))

    def undo(self) -> None:
        for fn in reversed(self._undo):
            fn()
        self._undo.clear()


@contextmanager
def instrumented(phases: Phases) -> Iterator[None]:
    from learnloop.tasks.classification import fit as fit_module
    from learnloop.tasks.classification import retrain, snapshot
    from learnloop.training import pipeline

    phases.wrap(pipeline.TrainingService, "gather", "gather")
    phases.wrap(retrain, "curate", "curate")
    phases.wrap(snapshot, "group_ids", "group")  # grouping everything each time (before the kept grouping)
    phases.wrap(retrain, "kept_grouping", "group")  # read (or made) once per model ...
    with contextlib.suppress(ImportError):
        from learnloop.curation import grouping

        phases.wrap(grouping.Grouping, "extended", "group")  # ... and extended with the feedback
    phases.wrap(retrain, "fit", "fit")
    phases.wrap(fit_module, "_forward_chained", "folds")
    phases.wrap(retrain, "evaluate", "evaluate")
    phases.wrap(retrain, "judge", "judge")
    try:
        yield
    finally:
        phases.undo()


def uptime() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def build_home(home: Path, examples: int) -> None:
    from learnloop.config import Settings
    from learnloop.domain import FeedbackInput
    from learnloop.models import NewModel, RowsSource
    from learnloop.services import build_services

    corpus = [row for name in ("yelp", "amazon_cells", "imdb") for row in read_sentences(name)]
    total = round(examples / 0.8)
    services = build_services(Settings(home=home, isolate_training=False))
    try:
        started = time.perf_counter()
        services.creation.create(
            NewModel(MODEL, policy={"retrain_every": 1_000_000_000}),
            RowsSource(make_retrain_data(corpus, total, seed=7), name="retrain.csv"),
            actor="bench",
        )
        print(f"model created from {total} rows in {time.perf_counter() - started:.1f}s", flush=True)
        fresh = make_retrain_data(corpus, 2_500, seed=8)
        items = [FeedbackInput(text=t, label=lab) for t, lab in fresh[:2_000]]
        answers = services.predictions.predict_many(MODEL, [t for t, _ in fresh[2_000:]])
        services.ingest.flush()
        items += [
            FeedbackInput(prediction_id=a.prediction_id, label=lab)
            for a, (_, lab) in zip(answers, fresh[2_000:], strict=True)
        ]
        for i in range(0, len(items), 500):
            services.feedback.record_sync(MODEL, items[i : i + 500])
    finally:
        services.close()


def derived(seconds: dict[str, float], total: float) -> dict[str, float]:
    """The wrapped phases, with the final fit (fit less folds), curation less grouping, and the rest."""
    seconds["fit_final"] = seconds.get("fit", 0.0) - seconds.get("folds", 0.0)
    seconds["curate_other"] = seconds.get("curate", 0.0) - seconds.get("group", 0.0)
    accounted = sum(seconds.get(k, 0.0) for k in ("gather", "curate", "fit", "evaluate", "judge"))
    seconds["rest"] = total - accounted
    return seconds


def one_retrain(home: Path, run: int, profile: cProfile.Profile | None, isolate: bool = False) -> dict[str, Any]:
    from learnloop.config import Settings
    from learnloop.domain import FeedbackInput
    from learnloop.services import build_services

    corpus = [row for name in ("yelp", "amazon_cells", "imdb") for row in read_sentences(name)]
    services = build_services(Settings(home=home, isolate_training=isolate))
    try:
        more = make_retrain_data(corpus, 50, seed=100 + run)
        services.feedback.record_sync(MODEL, [FeedbackInput(text=t, label=lab) for t, lab in more])
        phases = Phases()
        with instrumented(phases):
            if profile is not None:
                profile.enable()
            started, cpu_started = time.perf_counter(), time.process_time()
            outcome = services.training.retrain(MODEL, actor="bench")
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if profile is not None:
                profile.disable()
        version = services.registry.version(MODEL, outcome.version)
    finally:
        services.close()
    seconds, cpu_seconds = derived(dict(phases.seconds), wall), derived(dict(phases.cpu), cpu)
    return {
        "wall": wall,
        "cpu": cpu,
        "phases": seconds,
        "phases_cpu": cpu_seconds,
        "version": outcome.version,
        "promoted": outcome.promoted,
        "train_seconds": version.train_seconds,
        "train_examples": version.metrics.get("train_examples"),
        "golden_accuracy": (version.metrics.get("golden") or {}).get("accuracy"),
        "recent_accuracy": (version.metrics.get("recent") or {}).get("accuracy"),
        "snapshot": outcome.snapshot,
        "summary": outcome.summary,
        "cost": None if version.cost is None else version.cost.to_dict(),
    }


def describe_cost(cost: dict[str, Any] | None) -> str:
    if cost is None:
        return "none recorded"
    gpu = "-" if cost["gpu_seconds"] is None else f"{cost['gpu_seconds']:.2f}s"
    return (
        f"{cost['cpu_seconds']:.2f}s CPU ({cost['scope']}), {cost['wall_seconds']:.2f}s wall, "
        f"peak RSS {cost['peak_rss_bytes'] / 2**20:.0f} MiB ({cost['memory_measure']}), GPU {gpu}"
    )


def describe_share(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


ORDER = ("wall", "gather", "curate", "group", "curate_other", "fit", "fit_final", "folds", "evaluate", "judge", "rest")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=50_000, help="bootstrap training rows (after the golden hold-out)")
    p.add_argument("--runs", type=int, default=3, help="retrains timed (each in a fresh service stack)")
    p.add_argument("--home", type=Path, default=None, help="reuse this home (created when missing)")
    p.add_argument("--profile", type=Path, default=None, help="write a cProfile of the timed retrains here")
    p.add_argument("--isolate", action="store_true", help="fit in the training process, as a server does")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrain.json")
    args = p.parse_args()

    print(f"load before: {uptime()} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="llretrain-") as tmp:
        home = args.home or Path(tmp) / "home"
        if not (home / "learnloop.db").exists():
            build_home(home, args.examples)
        profile = cProfile.Profile() if args.profile else None
        runs = []
        for run in range(args.runs):
            r = one_retrain(home, run, profile, args.isolate)
            runs.append(r)
            shown = "  ".join(f"{k} {r['phases'].get(k, 0.0):.2f}" for k in ORDER[1:])
            print(f"run {run + 1}: {r['wall']:.2f}s wall, {r['cpu']:.2f}s CPU  ({shown})  load {uptime()}", flush=True)
            print(f"       recorded cost: {describe_cost(r['cost'])}", flush=True)
            print(
                f"       candidate v{r['version']}: accuracy golden {describe_share(r['golden_accuracy'])}, "
                f"recent (forward-chained) {describe_share(r['recent_accuracy'])}; promoted: {r['promoted']}",
                flush=True,
            )
    load_after = uptime()
    print(f"load after: {load_after}")

    def values(run: dict[str, Any], k: str, kind: str) -> float:
        return float(run[kind] if k == "wall" else run["phases" if kind == "wall" else "phases_cpu"].get(k, 0.0))

    medians = {k: statistics.median(values(r, k, "wall") for r in runs) for k in ORDER}
    medians_cpu = {k: statistics.median(values(r, k, "cpu") for r in runs) for k in ORDER}
    print()
    print(f"{'phase':<14}{'wall med':>10}{'min':>8}{'max':>8}{'CPU med':>10}")
    for k in ORDER:
        walls = [values(r, k, "wall") for r in runs]
        print(f"{k:<14}{medians[k]:>10.2f}{min(walls):>8.2f}{max(walls):>8.2f}{medians_cpu[k]:>10.2f}")
    cpu = medians_cpu["wall"]
    verdict = "MET" if medians["wall"] < TARGET_SECONDS else "MISSED"
    print(
        f"\nretrain on {runs[0]['train_examples']} examples: median {medians['wall']:.2f}s wall, {cpu:.2f}s CPU "
        f"(target < {TARGET_SECONDS:.0f}s wall: {verdict})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"runs": runs, "medians": medians, "medians_cpu": medians_cpu, "load_after": load_after},
            indent=2,
            default=str,
        )
    )
    if profile is not None:
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(str(args.profile))
        print(f"profile: {args.profile}")


if __name__ == "__main__":
    main()
