"""A generative model's retrain, in the training process, as named steps:

``curate`` (feedback -> the SFT, preference and KTO sets with their held-out parts, plus the
model's own prompt/response rows -> a content-addressed snapshot) -> ``plan`` (the adapter's
stages per ``policy.adapters``: SFT on good answers, then DPO on pairs, or KTO on rated answers
when there are too few pairs) -> ``fit`` (one LoRA adapter over the shared base, from scratch on
the whole snapshot, within the time budget) -> ``score`` (candidate and champion on the held-out
parts: preference margins, likelihood of good answers, a judge trained on the model's ratings)
-> ``judge`` (the gate's verdict, ``evaluation.generative_gate``).

Every adapter is fitted from the base on everything curated so far rather than on top of the
champion's adapter: a version then names exactly what it learnt from (its snapshot), and a bad
batch of feedback cannot compound through generations of adapters.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from learnloop.artifacts import open_store
from learnloop.errors import InsufficientDataError
from learnloop.evaluation.generative_gate import NllScores, PreferenceScores, compare_generators
from learnloop.families.causal_lm import resolve_base
from learnloop.families.causal_lm.tuning import (
    AdapterOutcome,
    KtoExample,
    LoraParams,
    PreferenceExample,
    SftExample,
    Stage,
    StageParams,
    train_adapter,
)
from learnloop.policy import Policy
from learnloop.tasks.base import Candidate, Report, RetrainInputs
from learnloop.tasks.generation.adapter_fit import steps_reported
from learnloop.tasks.generation.answers import Message, turns
from learnloop.tasks.generation.curate import curate as curate_sets
from learnloop.tasks.generation.heldout import HeldOutScores, score_held_out
from learnloop.tasks.generation.judge import Judge, judge_refusal, train_judge
from learnloop.tasks.generation.sets import GenerationSets, Provenance, SftRow, Split
from learnloop.tasks.generation.snapshot import GenerationSnapshot, build_snapshot, write_snapshot

JUDGE_SEED = 0


def with_own_rows(sets: GenerationSets, rows: Sequence[tuple[str, str]], created_at: datetime) -> GenerationSets:
    """``sets`` with the model's own prompt/response rows (``init --data``) first among the SFT
    training rows: every adapter learns them, as every classifier learns its bootstrap rows."""
    if not rows:
        return sets
    own = tuple(
        SftRow((Message("user", prompt),), response, "bootstrap", Provenance((), (), None, created_at))
        for prompt, response in rows
    )
    counts = {**sets.counts, "own_rows": len(own)}
    return replace(sets, sft=Split(own + sets.sft.train, sets.sft.held_out), counts=counts)


def curate(inputs: RetrainInputs) -> GenerationSnapshot:
    sets = curate_sets(inputs.feedback, inputs.model.policy, inputs.cutoff)
    return build_snapshot(with_own_rows(sets, inputs.bootstrap, inputs.model.created_at))


def plan(sets: GenerationSets, policy: Policy) -> list[Stage]:
    """The adapter's stages, each with at least its minimum of rows; none at all is an
    ``InsufficientDataError`` that says what each stage had and needed."""
    a = policy.adapters

    def params(lr: float, steps: int, beta: float = 0.1, sft_weight: float = 0.0) -> StageParams:
        return StageParams(
            learning_rate=lr,
            max_steps=steps,
            batch_size=a.train_batch_size,
            max_length=a.train_max_length,
            beta=beta,
            sft_weight=sft_weight,
        )

    sft, pairs, kto = sets.sft.train, sets.preference.train, sets.kto.train
    stages: list[Stage] = []
    if a.sft_steps > 0 and len(sft) >= a.min_sft_rows:
        examples = [SftExample(turns(r.messages), r.response) for r in sft]
        stages.append(Stage("sft", examples, params(a.sft_learning_rate, a.steps(a.sft_steps, len(sft)))))
    both_kinds = len({r.desirable for r in kto}) == 2
    if a.dpo_steps > 0 and len(pairs) >= a.min_pairs:
        examples_p = [PreferenceExample(turns(p.messages), p.chosen, p.rejected) for p in pairs]
        steps = a.steps(a.dpo_steps, len(pairs))
        stages.append(Stage("dpo", examples_p, params(a.dpo_learning_rate, steps, a.dpo_beta, a.dpo_sft_weight)))
    elif a.kto_steps > 0 and len(kto) >= a.min_kto_rows and both_kinds:
        examples_k = [KtoExample(turns(r.messages), r.response, r.desirable) for r in kto]
        stages.append(Stage("kto", examples_k, params(a.kto_learning_rate, a.steps(a.kto_steps, len(kto)), a.kto_beta)))
    if not stages:
        raise InsufficientDataError(
            f"too little feedback to train an adapter on: {len(sft)} SFT rows (policy.min_sft_rows is "
            f"{a.min_sft_rows}), {len(pairs)} preference pairs (policy.min_pairs is {a.min_pairs}), {len(kto)} "
            f"rated answers{'' if both_kinds or not kto else ', all of one kind'} (policy.min_kto_rows is "
            f"{a.min_kto_rows}). The champion is unchanged."
        )
    return stages


def training_metrics(outcome: AdapterOutcome) -> dict[str, Any]:
    return {
        "stages": [
            {
                "stage": s.kind,
                "examples": s.examples,
                "steps": s.steps,
                "train_loss": round(s.train_loss, 5),
                "seconds": round(s.seconds, 2),
                "stopped_by_budget": s.stopped_by_budget,
                "last": {k: round(v, 5) for k, v in s.logs.items() if k != "epoch"},
            }
            for s in outcome.stages
        ],
        "skipped_by_budget": list(outcome.skipped),
        "seconds": round(outcome.seconds, 2),
    }


def _set_sizes(sets: GenerationSets) -> dict[str, dict[str, int]]:
    return {
        name: {"train": len(sets.rows(name, "train")), "held_out": len(sets.rows(name, "held_out"))}
        for name in ("sft", "preference", "kto")
    }


def judge(scores: HeldOutScores, policy: Policy, champion: int) -> dict[str, Any]:
    """The gate's verdict on the held-out scores (``evaluation.generative_gate``)."""
    verdict = compare_generators(
        PreferenceScores(
            scores.margins.champion,
            scores.margins.candidate,
            scores.token_margins.champion,
            scores.token_margins.candidate,
        ),
        NllScores(scores.nll.champion, scores.nll.candidate, scores.nll_tokens) if scores.nll_tokens else None,
        scores.judge,
        policy,
    )
    return {**verdict, "champion_version": champion}


def _judge_metrics(judge_model: Judge | None, refusal: str | None) -> dict[str, Any]:
    if judge_model is None:
        return {"trained": False, "why_not": refusal}
    q = judge_model.quality
    return {"trained": True, "trained_on": q.trained_on, "auc": q.auc, "auc_held_out": q.held_out}


def train(inputs: RetrainInputs, report: Report) -> Candidate:
    """The generation task's ``train``: curate -> plan -> fit -> score -> judge."""
    model, policy = inputs.model, inputs.model.policy
    snapshot = curate(inputs)
    sets = snapshot.sets
    stages = plan(sets, policy)
    sizes = _set_sizes(sets)
    report(0.02, "curated " + "; ".join(f"{n}: {s['train']} train, {s['held_out']} held out" for n, s in sizes.items()))
    base = resolve_base(str(model.params["base"]), Path(inputs.bases_dir))
    system_prompt = model.params.get("system_prompt")
    store = open_store(inputs.artifact_url)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="learnloop-retrain-") as tmp:
        outcome = train_adapter(
            base,
            stages,
            Path(tmp) / "adapter",
            lora=LoraParams(rank=policy.adapters.lora_rank, alpha=policy.adapters.lora_alpha),
            system_prompt=system_prompt,
            threads=inputs.threads,
            budget_seconds=policy.adapters.train_budget_seconds,
            report=steps_reported(report, 0.05, 0.7, [stage.kind for stage in stages]),
        )
        train_seconds = time.perf_counter() - started
        kto_rows = list(sets.kto.train)
        judge_model = train_judge(kto_rows, seed=JUDGE_SEED) if policy.gate.judge_prompts > 0 else None
        refusal = (
            judge_refusal(kto_rows) if policy.gate.judge_prompts > 0 else "judging is off (policy.judge_prompts 0)"
        )
        champion = inputs.champion
        champion_dir = store.get_dir(champion.artifact_uri) if champion is not None and champion.artifact_uri else None
        report(0.72, "scoring the candidate and the champion on the held-out data")
        scores = score_held_out(
            base,
            outcome.directory,
            champion_dir,
            sets,
            judge=judge_model,
            judge_limit=policy.gate.judge_prompts,
            max_new_tokens=policy.gate.judge_max_new_tokens,
            judge_samples=policy.gate.judge_samples,
            judge_temperature=policy.gate.judge_temperature,
            system_prompt=system_prompt,
            threads=inputs.threads,
            report=lambda f, m: report(0.72 + 0.25 * f, m),
        )
        key = store.put_dir(inputs.artifact_key, outcome.directory)
    verdict = None if champion is None else judge(scores, policy, champion.version)
    metrics: dict[str, Any] = {
        "training": training_metrics(outcome),
        "sets": sizes,
        "held_out": {
            "pairs": len(scores.margins.candidate),
            "good_answers": len(scores.nll.candidate),
            "judged_prompts": len(scores.judged_prompts),
        },
        "judge": _judge_metrics(judge_model, refusal),
        "snapshot_counts": sets.counts,
    }
    stored = write_snapshot(store, model.name, snapshot)
    names = ", ".join(f"{s.kind} ({s.steps} steps on {s.examples})" for s in outcome.stages)
    return Candidate(
        artifact_key=key,
        snapshot_hash=snapshot.hash,
        snapshot_key=stored,
        snapshot_counts=sets.counts,
        snapshot_cutoff=snapshot.cutoff,
        metrics=metrics,
        verdict=verdict,
        train_seconds=train_seconds,
        notes=[f"snapshot {snapshot.hash[:12]}", f"adapter fitted in {train_seconds:.1f}s: {names}"],
    )
