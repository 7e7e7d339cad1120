"""Run a generation replay: a real preference stream through the generative loop.

1. A fresh home in ``out`` (the base converted once into ``out/bases`` and reused by later
   runs) and a generative model on the base (version 1: the base itself), with the replay's
   policy; the services in this process on the embedded SQLite (or ``database_url``), time
   simulated (a ``FakeClock`` moves ``1 / rate`` seconds a pair; the worker's trigger checks
   and jobs run as it moves, as ``learnloop replay`` does for classification).
2. Each pair of the stream: its two answers logged as the model's answers made elsewhere, and
   the pair's user gives feedback per the data (``users``); the loop's own triggers retrain,
   the gate judges, the rollout policy serves.
3. The baselines: the static base, and an oracle adapter fitted on every streamed pair (as
   the loop's retrain would fit it: its ``plan`` and hyperparameters, no pair held out).
4. Scored on the held-out slice nothing trained on: the base, every version that was
   champion, the oracle; the summary (``replay.json``), the learning curve and the report page.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnloop.clock import FakeClock
from learnloop.config import Settings
from learnloop.domain import VersionStatus
from learnloop.errors import ValidationError
from learnloop.replay.generation.config import (
    GenerationReplayConfig,
    GenerationReplayObserver,
    QuietGenerationObserver,
    StreamTrace,
)
from learnloop.replay.generation.data import PreferenceStream, load_preference_stream
from learnloop.replay.generation.driver import GenerationDriver
from learnloop.replay.generation.users import SimulatedUsers
from learnloop.replay.service import SUMMARY_FILE, prepare_out

MODEL = "replay"
SCORE_MAX_LENGTH = 1024  # tokens of prompt and answer when scoring: a kept pair is never cut


@dataclass
class GenerationReplayResult:
    summary: dict[str, Any]
    summary_path: Path
    plot_path: Path
    html_path: Path


def _prepare(out: Path) -> Path:
    """The replay's home in ``out``, its ``bases`` kept from earlier runs (a converted base)."""
    home = prepare_out(out)
    (out / "bases").mkdir(parents=True, exist_ok=True)
    home.mkdir()
    (home / "bases").symlink_to((out / "bases").resolve(), target_is_directory=True)
    return home


def _stream(
    driver: GenerationDriver, data: PreferenceStream, config: GenerationReplayConfig, obs: GenerationReplayObserver
) -> StreamTrace:
    trace = StreamTrace()
    users = SimulatedUsers(config.noise, config.seed)
    before = driver.events_after(0)  # the model's creation: not part of the stream
    last = before[-1].id if before else 0
    total = len(data.stream)
    version = 1
    for i, pair in enumerate(data.stream):
        reaction = users.react(i)
        try:
            chosen, rejected = driver.log_answers(reaction.logged(pair))
        except ValidationError as exc:  # e.g. a prompt over max_prompt_chars: a client sees a 422
            trace.refused[exc.code] = trace.refused.get(exc.code, 0) + 1
        else:
            items = reaction.feedback(config.feedback, chosen.prediction_id, rejected.prediction_id)
            driver.send(items)
            version = chosen.version
            trace.times.append(driver.now())
            trace.versions.append(version)
            trace.sent.append(i)
            trace.untruthful += not reaction.truthful
            trace.feedback_events += len(items)
        driver.advance(1.0 / config.rate)  # the worker's checks (and a retrain) may run here
        last = _follow(driver, trace, obs, last)
        obs.pair(i + 1, total, version)
    driver.settle(timeout=0.0)  # in process: runs what is queued to its end
    _follow(driver, trace, obs, last)
    trace.jobs = driver.jobs()
    return trace


def _follow(driver: GenerationDriver, trace: StreamTrace, obs: GenerationReplayObserver, after: int) -> int:
    for event in driver.events_after(after):
        trace.events.append(event)
        obs.event(event, trace.pairs_before(event.at))
        after = event.id
    return after


def champions(trace: StreamTrace, final: int) -> list[tuple[int, int]]:
    """(version, pairs sent before it became champion) for version 1 and each promotion, in order."""
    out = [(1, 0)]
    for e in trace.events:
        if e.kind == "promoted" and e.version is not None and e.version != out[-1][0] and e.version > 1:
            out.append((e.version, trace.pairs_before(e.at)))
    if out[-1][0] != final:  # a rollback to an earlier version
        out.append((final, len(trace.times)))
    return out


def run_generation_replay(
    config: GenerationReplayConfig, observer: GenerationReplayObserver | None = None
) -> GenerationReplayResult:
    from learnloop.models import NewModel
    from learnloop.replay.generation.baselines import fit_oracle
    from learnloop.replay.generation.report import summarize, write_report
    from learnloop.services import build_services  # (the services load when a replay runs)

    obs = observer or QuietGenerationObserver()
    started = time.perf_counter()
    data = load_preference_stream(
        config.dataset,
        data_dir=config.data_dir,
        limit=config.limit,
        held_out_fraction=config.held_out_fraction,
        max_chars=config.max_chars,
        seed=config.seed,
    )
    obs.stage(
        f"{data.name}: {data.read} pairs read, {data.too_long} over {config.max_chars} characters dropped; "
        f"{len(data.stream)} streamed, {len(data.held_out)} held out (never sent, never trained on)"
    )
    home = _prepare(config.out)
    policy = config.policy_settings()
    clock = FakeClock()
    settings = Settings(home=home, database_url=config.database_url, isolate_training=False)
    services = build_services(settings, clock=clock)
    driver: GenerationDriver | None = None
    try:
        services.creation.create(
            NewModel(MODEL, task="generation", params={"base": config.base}, policy=policy, seed=config.seed),
            None,
            actor="replay",
        )
        driver = GenerationDriver(
            services,
            clock,
            MODEL,
            trigger_poll_seconds=settings.trigger_poll_seconds,
            on_job=lambda job: obs.stage(
                f"{job.kind} ({job.requested_by}) runs in this process: curate, fit the adapter, score it and "
                "the champion on the gate's held-out pairs, judge (minutes on CPU; the stream waits)"
            ),
        )
        obs.stage(
            f"replaying {len(data.stream)} pairs in process on {config.base}: users give {config.feedback.value} "
            f"feedback; a retrain every {config.retrain_every} pairs ({policy['retrain_every']} events)"
        )
        trace = _stream(driver, data, config, obs)
        replay_seconds = time.perf_counter() - started
        final = services.registry.deployment(MODEL).champion_version or 1
        served = champions(trace, final)
        adapters: dict[int, Path | None] = {}
        for version, _ in served:
            uri = services.registry.version(MODEL, version).artifact_uri
            adapters[version] = services.store.get_dir(uri) if version > 1 and uri else None
        versions = services.registry.versions(MODEL)
        rejected = [v.version for v in versions if v.status == VersionStatus.REJECTED]
        training = {v.version: (v.metrics or {}).get("training") for v in versions if v.version > 1}
        model = services.registry.get_model(MODEL)
    finally:
        if driver is not None:
            driver.close()
        else:
            services.close()

    from learnloop.families.causal_lm import resolve_base

    base = resolve_base(str(model.params["base"]), settings.bases_dir)
    system_prompt = model.params.get("system_prompt")
    baselines_started = time.perf_counter()
    sent = [data.stream[i] for i in trace.sent]
    oracle = fit_oracle(base, sent, config, config.out / "oracle-adapter", system_prompt, obs)
    obs.stage(f"scoring {len(data.held_out)} held-out pairs: the base, {len(adapters) - 1} promoted versions, oracle")
    from learnloop.replay.generation.evaluate import score_versions

    margins = score_versions(
        base,
        {"static": None, **{f"v{v}": d for v, d in adapters.items() if d is not None}, "oracle": oracle.directory},
        data.held_out,
        system_prompt=system_prompt,
        max_length=SCORE_MAX_LENGTH,
        threads=config.threads,
        progress=lambda done, total: obs.step("scoring", done, total),
    )
    timing = {
        "replay_seconds": round(replay_seconds, 1),
        "baseline_seconds": round(time.perf_counter() - baselines_started, 1),
        "oracle_fit_seconds": round(oracle.seconds, 1),
    }
    summary = summarize(
        config, data, trace, margins, served, oracle, rejected_versions=rejected, training=training, timing=timing
    )
    summary_path = config.out / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    png, page = write_report(summary, config.out)
    return GenerationReplayResult(summary, summary_path, png, page)
