"""Scoring on the held-out slice: each version's preference margins on pairs nothing trained
on, and the figures the report gives them.

* margin of a pair under a version: log p(chosen) - log p(rejected), each summed over the
  answer's tokens (``scoring.answer_logprobs``, as the gate scores); right when > ``TIE``;
* accuracy with Wilson's 95% interval and the mean margin (``accuracy``);
* two versions on the same pairs (``paired``): McNemar's exact tests (one-sided "better" and
  two-sided) and the paired 95% interval of the difference (``evaluation.gate.paired_outcomes``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learnloop.datasets.preference import PreferencePair
from learnloop.evaluation.gate import paired_outcomes
from learnloop.evaluation.generative_gate import TIE
from learnloop.evaluation.metrics import wilson_interval
from learnloop.families.causal_lm import BaseModelRef, attach_adapter, load_base

CONFIDENCE = 0.95
BATCH = 8


def score_versions(
    base: BaseModelRef,
    adapters: Mapping[str, Path | None],
    pairs: Sequence[PreferencePair],
    *,
    system_prompt: str | None,
    max_length: int,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Per version name (its adapter's directory; None: the base itself), the margin of each
    pair, in order; one loaded base, the adapters attached side by side."""
    from learnloop.families.causal_lm.scoring import answer_logprobs

    loaded = load_base(base, threads=threads)
    items = [(p.messages, answer) for p in pairs for answer in (p.chosen, p.rejected)]
    # batches of similar length: a forward pass costs its longest row
    order = sorted(range(len(items)), key=lambda i: sum(len(m["content"]) for m in items[i][0]) + len(items[i][1]))
    out: dict[str, list[float]] = {}
    for done, (name, directory) in enumerate(adapters.items()):
        if directory is not None:
            attach_adapter(loaded, name, directory)
        scores = answer_logprobs(
            loaded,
            None if directory is None else name,
            [items[i] for i in order],
            system_prompt=system_prompt,
            batch_size=BATCH,
            max_length=max_length,
        )
        logprob = [0.0] * len(items)
        for i, score in zip(order, scores, strict=True):
            logprob[i] = score.logprob
        out[name] = [logprob[2 * k] - logprob[2 * k + 1] for k in range(len(pairs))]
        if progress is not None:
            progress(done + 1, len(adapters))
    return out


def accuracy(margins: Sequence[float]) -> dict[str, Any]:
    right = int((np.asarray(margins, dtype=np.float64) > TIE).sum())
    n = len(margins)
    low, high = wilson_interval(right, n, CONFIDENCE)
    return {
        "n": n,
        "right": right,
        "accuracy": right / n if n else None,
        "ci95": [low, high],
        "mean_margin": float(np.mean(margins)) if n else None,
    }


def paired(reference: Sequence[float], other: Sequence[float]) -> dict[str, Any]:
    """``other`` against ``reference`` on the same pairs."""
    c = paired_outcomes(
        "held_out",
        np.asarray(reference, dtype=np.float64) > TIE,
        np.asarray(other, dtype=np.float64) > TIE,
        confidence=CONFIDENCE,
    )
    return {
        "n": c.n,
        "difference": c.difference,
        "ci95": [c.ci_low, c.ci_high],
        "wins": c.candidate_only,
        "losses": c.champion_only,
        "p_better": c.p_better,
        "p_two_sided": min(1.0, 2 * min(c.p_better, c.p_worse)),
        "test": "McNemar exact (one-sided 'better' and two-sided) + paired Wald 95% CI (Agresti-Min)",
    }


def gap_closed(static: float | None, loop: float | None, oracle: float | None) -> float | None:
    """The share of the oracle's gain over the static base that the loop reached (None where
    the oracle gained nothing)."""
    if static is None or loop is None or oracle is None or oracle - static <= 0:
        return None
    return (loop - static) / (oracle - static)
