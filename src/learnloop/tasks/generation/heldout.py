"""Scoring the champion and a candidate adapter on what the candidate never trained on: the
held-out parts of the snapshot's sets. Runs in the training process, on one loaded base with
both adapters attached (the champion may be the base itself).

* **preference margins**: for each held-out pair, log p(chosen) - log p(rejected), each summed
  over the answer's tokens, under each version, and per token (each answer's mean log-probability:
  reported beside the summed one, which favours the shorter answer);
* **NLL of good answers**: for each held-out SFT row (an answer rated well, or a correction),
  the negative log-likelihood per token under each version;
* **judge scores**: each version answers the held-out prompts (greedy), and a reward model
  trained on the model's own ratings (``judge``) scores the answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from learnloop.evaluation.generative_gate import JudgeScores
from learnloop.families.causal_lm import BaseModelRef, attach_adapter, load_base
from learnloop.families.causal_lm.scoring import answer_logprobs, greedy_answers, sampled_answers
from learnloop.tasks.base import Report
from learnloop.tasks.generation.answers import Message, prompt_text, turns
from learnloop.tasks.generation.judge import Judge
from learnloop.tasks.generation.sets import GenerationSets

CANDIDATE = "candidate"
CHAMPION = "champion"


@dataclass(frozen=True)
class VersionPair:
    """One number per held-out item, for each version, in the same order."""

    champion: list[float] = field(default_factory=list)
    candidate: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class HeldOutScores:
    margins: VersionPair  # per held-out preference pair, summed over each answer's tokens
    nll: VersionPair  # per held-out good answer: NLL per token
    nll_tokens: list[int]  # tokens of each good answer (the same for both versions)
    judge: JudgeScores | None  # per judged prompt and sample; None: no judge could be trained, or judging is off
    judged_prompts: list[str] = field(default_factory=list)  # each once, however many samples
    token_margins: VersionPair = field(default_factory=VersionPair)  # the same pairs, per token


def judge_prompts(sets: GenerationSets, limit: int) -> list[tuple[Message, ...]]:
    """The distinct conversations of the held-out parts, oldest first, at most ``limit``."""
    seen: dict[str, tuple[Message, ...]] = {}
    for name in ("preference", "sft", "kto"):
        for row in sets.rows(name, "held_out"):
            seen.setdefault(prompt_text(row.messages), row.messages)
    return list(seen.values())[:limit]


def score_held_out(
    base: BaseModelRef,
    candidate_dir: Path,
    champion_dir: Path | None,
    sets: GenerationSets,
    *,
    judge: Judge | None,
    judge_limit: int,
    max_new_tokens: int,
    system_prompt: str | None,
    judge_samples: int = 1,
    judge_temperature: float = 0.9,
    threads: int,
    report: Report,
) -> HeldOutScores:
    loaded = load_base(base, threads=threads)
    attach_adapter(loaded, CANDIDATE, candidate_dir)
    champion: str | None = None
    if champion_dir is not None:
        attach_adapter(loaded, CHAMPION, champion_dir)
        champion = CHAMPION
    versions = {"champion": champion, "candidate": CANDIDATE}

    pairs = sets.preference.held_out
    margins: dict[str, list[float]] = {}
    token_margins: dict[str, list[float]] = {}
    for who, adapter in versions.items():
        chosen = answer_logprobs(
            loaded, adapter, [(turns(p.messages), p.chosen) for p in pairs], system_prompt=system_prompt
        )
        rejected = answer_logprobs(
            loaded, adapter, [(turns(p.messages), p.rejected) for p in pairs], system_prompt=system_prompt
        )
        margins[who] = [c.logprob - r.logprob for c, r in zip(chosen, rejected, strict=True)]
        token_margins[who] = [
            c.logprob / max(c.tokens, 1) - r.logprob / max(r.tokens, 1) for c, r in zip(chosen, rejected, strict=True)
        ]
    report(0.3, f"preference margins on {len(pairs)} held-out pairs")

    good = sets.sft.held_out
    nll: dict[str, list[float]] = {}
    tokens: list[int] = []
    for who, adapter in versions.items():
        scored = answer_logprobs(
            loaded, adapter, [(turns(r.messages), r.response) for r in good], system_prompt=system_prompt
        )
        nll[who] = [s.nll_per_token for s in scored]
        tokens = [s.tokens for s in scored]
    report(0.5, f"likelihood of {len(good)} held-out good answers")

    judged: JudgeScores | None = None
    prompts: list[str] = []
    conversations = judge_prompts(sets, judge_limit) if judge is not None and judge_limit > 0 else []
    if judge is not None and conversations:
        asked = [turns(c) for c in conversations]
        answers: dict[str, list[str]] = {}
        for who, adapter in versions.items():
            if judge_samples > 1:  # the same seeds for both versions; scored per (prompt, sample)
                answers[who] = [
                    text
                    for texts in sampled_answers(
                        loaded,
                        adapter,
                        asked,
                        samples=judge_samples,
                        temperature=judge_temperature,
                        max_new_tokens=max_new_tokens,
                        system_prompt=system_prompt,
                    )
                    for text in texts
                ]
            else:
                answers[who] = greedy_answers(
                    loaded, adapter, asked, max_new_tokens=max_new_tokens, system_prompt=system_prompt
                )
        prompts = [prompt_text(c) for c in conversations]
        each_prompt = [p for p in prompts for _ in range(judge_samples)]  # as the answers are laid out
        judged = judge.compare(each_prompt, answers["champion"], answers["candidate"], samples_per_prompt=judge_samples)
        each = f", {judge_samples} sampled answers each" if judge_samples > 1 else ""
        report(0.9, f"judged both versions' answers to {len(conversations)} held-out prompts{each}")
    return HeldOutScores(
        margins=VersionPair(margins["champion"], margins["candidate"]),
        nll=VersionPair(nll["champion"], nll["candidate"]),
        nll_tokens=tokens,
        judge=judged,
        judged_prompts=prompts,
        token_margins=VersionPair(token_margins["champion"], token_margins["candidate"]),
    )
