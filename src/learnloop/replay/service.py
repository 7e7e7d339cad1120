"""Run a replay: bootstrap a model, stream real labelled data through the loop with simulated
users, score it against the baselines, and write the summary and the learning curve."""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from learnloop.clock import Clock, FakeClock, SystemClock
from learnloop.config import Settings
from learnloop.errors import ValidationError
from learnloop.families import DEFAULT_FAMILY
from learnloop.policy import Policy
from learnloop.replay.asking import AskingRounds
from learnloop.replay.baselines import (
    implied_label,
    naive_baseline,
    naive_feedback,
    oracle_baseline,
    served_label,
    static_baseline,
)
from learnloop.replay.drivers import MODES, HttpDriver, InProcessDriver, ItemRefused, LoopDriver, LoopEvent, Served
from learnloop.replay.plot import write_learning_curve
from learnloop.replay.report import Trace, summarize
from learnloop.replay.server import ServerProcess, check_port_free, live_pid
from learnloop.replay.stream import DataFile, Order, load_stream
from learnloop.replay.users import PlannedFeedback, SimulatedUsers, UserModel
from learnloop.tasks.classification.active import margin_of

SUMMARY_FILE = "replay.json"
SERVER_PID_FILE = "server.pid"  # while a replay's server runs (kept with --serve)
# Policy a replay starts from unless told otherwise: a retrain per 50 labels at most every
# 10 seconds (simulated seconds in process), so a stream of a few thousand items sees many.
REPLAY_POLICY: dict[str, Any] = {"retrain_every": 50, "cooldown_seconds": 10.0}


@dataclass(frozen=True)
class ReplayConfig:
    bootstrap: DataFile
    stream: Sequence[DataFile]
    out: Path
    pre_shift: Sequence[DataFile] = ()  # in-domain segments replayed before the shift
    users: UserModel = field(default_factory=UserModel)
    mode: str = "in-process"
    model: str = "replay"
    order: Order = Order.SHUFFLE
    limit_per_segment: int | None = None
    golden_fraction: float = 0.2
    policy: dict[str, Any] = field(default_factory=dict)
    family: str = DEFAULT_FAMILY
    params: dict[str, Any] = field(default_factory=dict)  # the family's; the baselines refit with the same
    rate: float = 5.0  # stream items per second (simulated in process, real over HTTP)
    window: int = 100
    oracle_every: int = 100
    naive_every: int | None = None  # labels between naive refits (None: the policy's retrain_every)
    seed: int = 0
    database_url: str | None = None
    port: int | None = None  # http mode: the server's port (default: a free one)
    title: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValidationError(f"mode must be one of {', '.join(MODES)}", field="mode")
        if self.rate < 0 or (self.mode == "in-process" and self.rate == 0):
            raise ValidationError("rate must be > 0 (0 = unpaced is for http mode only)", field="rate")
        if self.window < 10 or self.oracle_every < 1:
            raise ValidationError("window must be >= 10 and oracle_every >= 1", field="window")
        if self.naive_every is not None and self.naive_every < 1:
            raise ValidationError("naive_every must be >= 1", field="naive_every")

    def to_dict(self) -> dict[str, Any]:
        return {
            "bootstrap": str(self.bootstrap.path),
            "pre_shift": [str(f.path) for f in self.pre_shift],
            "stream": [str(f.path) for f in self.stream],
            "users": self.users.to_dict(),
            "mode": self.mode,
            "order": self.order.value,
            "limit_per_segment": self.limit_per_segment,
            "golden_fraction": self.golden_fraction,
            "policy": self.policy_object().to_dict(),
            "family": self.family,
            "params": dict(self.params),
            "rate": self.rate,
            "window": self.window,
            "oracle_every": self.oracle_every,
            "naive_every": self.naive_labels(),
            "seed": self.seed,
        }

    def naive_labels(self) -> int:
        """Labels between the naive baseline's refits: as often as the loop may retrain."""
        return self.naive_every or self.policy_object().triggers.retrain_every

    def policy_object(self) -> Policy:
        return Policy().updated({**REPLAY_POLICY, **self.policy})


class ReplayObserver(Protocol):
    def stage(self, message: str) -> None: ...

    def item(self, done: int, total: int, scored: int, correct: int) -> None:
        """``done`` of ``total`` stream items sent; ``correct`` of the ``scored`` ones answered right."""
        ...

    def event(self, event: LoopEvent, item: int) -> None: ...

    def refit(self, done: int, total: int) -> None:
        """The oracle baseline has predicted ``done`` of ``total`` items."""
        ...


class QuietObserver:
    def stage(self, message: str) -> None:
        pass

    def item(self, done: int, total: int, scored: int, correct: int) -> None:
        pass

    def event(self, event: LoopEvent, item: int) -> None:
        pass

    def refit(self, done: int, total: int) -> None:
        pass


@dataclass
class ReplayResult:
    summary: dict[str, Any]
    summary_path: Path
    plot_path: Path
    html_path: Path
    trace: Trace
    static_predictions: list[str]
    server: ServerProcess | None = None  # still running when the caller asked to keep it


def prepare_out(out: Path) -> Path:
    """The replay owns ``out``: a new or empty folder, or the output of an earlier replay whose
    server is no longer running."""
    running = live_pid(out / SERVER_PID_FILE)
    if running is not None:
        raise ValidationError(
            f"a server (pid {running}) still runs from {out}; stop it (Ctrl-C in its terminal) or choose another --out",
            field="out",
        )
    if out.exists() and any(out.iterdir()) and not (out / SUMMARY_FILE).exists() and not (out / "home").exists():
        raise ValidationError(f"{out} is not empty and holds no earlier replay; choose a new --out folder", field="out")
    home = out / "home"
    if home.exists():
        shutil.rmtree(home)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)
    return home


def run_replay(
    config: ReplayConfig, observer: ReplayObserver | None = None, *, keep_server: bool = False
) -> ReplayResult:
    from learnloop.models import NewModel, RowsSource
    from learnloop.services import build_services  # (the services load when a replay runs)

    obs = observer or QuietObserver()
    started = time.perf_counter()
    obs.stage(f"reading {config.bootstrap.path.name} and {len(config.pre_shift) + len(config.stream)} stream files")
    boot_texts, boot_labels = config.bootstrap.read()
    label_set = sorted(set(boot_labels))
    stream = load_stream(
        [*config.pre_shift, *config.stream],
        order=config.order,
        limit_per_segment=config.limit_per_segment,
        seed=config.seed,
    )
    unknown = sorted(set(stream.labels) - set(label_set))
    if unknown:
        raise ValidationError(f"the stream has labels the bootstrap data lacks: {', '.join(unknown)}", field="stream")
    post_shift_start = sum(len(seg) for seg in stream.segments[: len(config.pre_shift)])
    if config.mode == "http" and config.port is not None:
        check_port_free(config.port)
    home = prepare_out(config.out)

    clock: Clock = FakeClock() if config.mode == "in-process" else SystemClock()
    settings = Settings(home=home, database_url=config.database_url, isolate_training=config.mode == "http")
    services = build_services(settings, clock=clock)
    server: ServerProcess | None = None
    server_url: str | None = None
    driver: LoopDriver | None = None
    completed = False
    try:
        held_out = f"{config.golden_fraction:.0%} held out as the golden set"
        obs.stage(f"training version 1 on {config.bootstrap.path.name} ({held_out})")
        created = services.creation.create(
            NewModel(
                config.model,
                family=config.family,
                params=config.params,
                policy=config.policy_object().to_dict(),
                golden_fraction=config.golden_fraction,
                seed=config.seed,
            ),
            RowsSource(list(zip(boot_texts, boot_labels, strict=True)), name=str(config.bootstrap.path)),
            actor="replay",
        )
        train = created.data.train
        if isinstance(clock, FakeClock):
            driver = InProcessDriver(services, clock, config.model, trigger_poll_seconds=settings.trigger_poll_seconds)
        else:
            services.close()
            server = ServerProcess(
                home,
                database_url=config.database_url,
                port=config.port,
                log_path=config.out / "server.log",
                pid_path=config.out / SERVER_PID_FILE,
            )
            obs.stage("starting the server")
            server.start()
            server_url = server.url
            obs.stage(f"server on {server.url}")
            driver = HttpDriver(server.url, config.model, rate=config.rate)
        trace = _stream_through(
            driver, stream.texts, stream.labels, label_set, config, obs, Trace(stream.segments, post_shift_start)
        )
        replay_seconds = time.perf_counter() - started
        completed = True
    finally:
        if driver is not None:
            driver.close()
        elif server is None:
            services.close()
        if server is not None and not (keep_server and completed):
            server.stop()
            server = None

    obs.stage(
        f"baselines: static model, an oracle refitted every {config.oracle_every} items and a naive loop "
        f"refitted every {config.naive_labels()} labels"
    )
    baselines_started = time.perf_counter()
    scored_texts = [stream.texts[i] for i in trace.items]
    # the family and parameters version 1 was fitted with: a policy with candidate families may
    # have chosen another than the model's own for it
    family, params = created.version.family, dict(created.version.params)
    static = static_baseline(family, params, label_set, train, scored_texts, seed=0)
    oracle = oracle_baseline(
        family,
        params,
        label_set,
        train,
        scored_texts,
        trace.truth,
        every=config.oracle_every,
        feedback_weight=config.policy_object().curation.feedback_weight,
        seed=0,
        progress=obs.refit,
    )
    naive = naive_baseline(
        family,
        params,
        label_set,
        train,
        scored_texts,
        naive_feedback(trace, stream.texts),
        every=config.naive_labels(),
        feedback_weight=config.policy_object().curation.feedback_weight,
        seed=0,
    )
    rejected = {e.version for e in trace.events if e.kind == "candidate_rejected" and e.version is not None}
    summary = summarize(
        trace,
        static.predictions,
        oracle.predictions,
        naive=naive.predictions,
        window=config.window,
        rejected_versions=rejected,
        labels=label_set,
        paused_rate=config.rate if config.mode == "in-process" else None,  # the stream waits for each fit
    )
    summary["config"] = config.to_dict()
    summary["baselines"] = {"family": family, "params": params}
    summary["server_url"] = server_url
    summary["timing"] = {
        "replay_seconds": round(replay_seconds, 2),
        "baseline_seconds": round(time.perf_counter() - baselines_started, 2),
        "oracle_fits": oracle.fits,
        "naive_fits": naive.fits,
    }
    summary_path = config.out / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    title = config.title or (
        f"learnloop replay: {config.bootstrap.segment_name} -> " + " -> ".join(s.name for s in stream.segments)
    )
    png, page = write_learning_curve(
        trace,
        static.predictions,
        oracle.predictions,
        summary,
        config.out,
        window=config.window,
        title=title,
        naive=naive.predictions,
    )
    return ReplayResult(summary, summary_path, png, page, trace, static.predictions, server)


def _stream_through(
    driver: LoopDriver,
    texts: list[str],
    labels: list[str],
    label_set: list[str],
    config: ReplayConfig,
    obs: ReplayObserver,
    trace: Trace,
) -> Trace:
    users = SimulatedUsers(config.users, label_set, config.seed)
    asking = AskingRounds(users) if config.users.selection == "uncertain" else None
    pending: dict[int, list[tuple[str, PlannedFeedback]]] = defaultdict(list)
    step = 1.0 / config.rate if config.rate > 0 else 0.0
    before = driver.events_after(0)  # model creation and version 1: not part of the stream
    last_event = before[-1].id if before else 0
    correct = 0
    n = len(texts)
    obs.stage(f"replaying {n} items ({driver.mode})")
    for i, (text, truth) in enumerate(zip(texts, labels, strict=True)):
        subject = users.subject_for()
        try:
            served: Served | None = driver.predict(text, subject)
        except ItemRefused as exc:  # e.g. longer than the server's limit: a client sees a 422
            trace.refused[exc.code] = trace.refused.get(exc.code, 0) + 1
            served = None
        if served is not None:
            trace.items.append(i)
            trace.truth.append(truth)
            trace.served.append(served.label)
            trace.versions.append(served.version)
            trace.latency_ms.append(served.latency_ms)
            trace.times.append(driver.now())
            trace.margins.append(margin_of(served.probabilities))
            correct += served.label == truth
            if asking is not None:
                for pid, asked in asking.add(i, subject, truth, text, served, last=i == n - 1):
                    pending[asked.due].append((pid, asked))
            else:
                plan = users.react(i, subject, truth, served.label)
                if plan is not None:
                    pending[plan.due].append((served.prediction_id, plan))
        due = pending.pop(i, [])
        if due:
            driver.send_feedback(due)
            sent_at = driver.now()
            for _, fb in due:
                trace.feedback_item.append(fb.item)
                trace.feedback_sent.append(max(len(trace.truth) - 1, 0))  # a position among scored items
                trace.feedback_time.append(sent_at)
                trace.feedback_truthful.append(fb.truthful)
                trace.feedback_label.append(implied_label(fb, served_label(trace, fb.item), label_set))
        driver.advance(step)
        if i % 25 == 0 or i == n - 1:
            last_event = _follow_events(driver, trace, obs, last_event)
            obs.item(i + 1, n, len(trace.truth), correct)
    if not driver.settle(timeout=120.0):
        obs.stage("a retrain was still running 120 s after the stream ended; its outcome is not in this summary")
    _follow_events(driver, trace, obs, last_event)
    trace.jobs = driver.jobs()
    trace.rebase()
    return trace


def _follow_events(driver: LoopDriver, trace: Trace, obs: ReplayObserver, after: int) -> int:
    for event in driver.events_after(after):
        trace.events.append(event)
        obs.event(event, trace.item_at(event.at))
        after = event.id
    return after
