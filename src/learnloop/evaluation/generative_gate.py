"""The offline gate for a generative candidate: is it good enough to replace the champion?

Both versions are scored on the held-out part of the training sets (their newest rows, which
the candidate never trained on), so every comparison is paired:

1. *preference accuracy*: per held-out preference pair, each version's margin
   ``log p(chosen) - log p(rejected)`` (each summed over the response's tokens); a pair is
   right when the margin is positive (a tie, ``|margin| < 1e-9``, is not). McNemar's exact
   one-sided test on the discordant pairs and the paired Agresti-Min interval, as for
   classification (``gate.paired_outcomes``). Superiority is required: at least
   ``min_preference_pairs`` pairs, a higher accuracy, and ``p(better) < alpha``. With
   ``preference_margin = "per-token"`` the margin is each answer's mean log-probability per
   token instead (not dominated by the answers' lengths); either way the other margin's
   accuracy is reported beside it, not judged.

   *preference shift*, on the same margins: the share of held-out pairs whose margin the
   candidate moved toward the chosen answer, against the champion's margin on that pair (DPO's
   implicit reward accuracy, with the champion as the reference model), by an exact one-sided
   sign test over the pairs that moved (Wilson interval of the share). Reported beside the
   accuracy; with ``preference_test = "shift"`` it is the one judged (at least
   ``min_preference_pairs`` pairs, a share above one half and ``p(better) < alpha``) and the
   accuracy is reported. Why both: accuracy asks whether a pair is ranked right, so an
   adapter changes its verdict only on pairs near a tie; where the held-out answers are the
   champion's own samples, far apart in likelihood, an adapter that learnt what users prefer
   moves most margins the right way and flips few (the NPC demo measured both, README).
2. *fit to good answers*: per held-out good answer (rated at least ``sft_min_rating``, or a
   correction), each version's NLL per token of the response. The statistic is the
   *token-weighted* mean (total NLL over total tokens: held-out log-perplexity as usually
   defined; a per-response mean would let short answers such as "Yes." weigh as much as a
   page), with a paired percentile bootstrap that resamples whole responses (tokens of one
   response are not independent). Non-inferiority: the upper end of the ``1 - 2*alpha``
   interval of (candidate - champion) lies below ``nll_margin``. No good answers: not judged,
   and it does not block.
3. *judge*: a reward model trained on the model's own ratings
   (``tasks.generation.judge``) scores both versions' answers to held-out prompts: each
   version's greedy answer, or with ``judge_samples`` > 1 that many sampled answers per prompt
   at ``judge_temperature``, the same seeds for both versions, paired per (prompt, sample). Wilcoxon's
   signed-rank test (two-sided, and one-sided "better") and the mean difference with a paired
   bootstrap interval; reported always, required (mean higher and ``p(better) < alpha``) only
   under ``judge_required``. The judge's own held-out AUC is reported beside it.

Passing: the NLL check does not fail, the judge shows the candidate better if required, and
the preference check passes. With ``preference_required`` off (it needs ``judge_required``)
the preference check is reported, not judged, and the judge decides in its place, provided
it can be trusted (held-out AUC known and at least ``JUDGE_MIN_AUC``). With fewer than
``min_preference_pairs`` held-out pairs (none included) the preference check cannot pass,
and the candidate may pass instead only when the judge shows it better *and* the judge can
be trusted (held-out AUC known and at least ``JUDGE_MIN_AUC``) *and* the few pairs there are
do not point the other way (a lower accuracy or a lower mean margin). Self-rated evidence is
weaker than held-out preferences, so it stands in for them only when it is clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from learnloop.evaluation.bootstrap import (
    FloatArray,
    Statistic,
    mean_statistic,
    paired_bootstrap_diff_cis,
    ratio_statistic,
)
from learnloop.evaluation.gate import paired_outcomes
from learnloop.evaluation.headline import compose_headline
from learnloop.evaluation.metrics import wilson_interval
from learnloop.policy import Policy

TIE = 1e-9  # a margin this close to zero is a tie: the pair is not right
JUDGE_MIN_AUC = 0.6  # a judge that separates held-out good from bad answers less well is not evidence
NLL_TEST = "paired percentile bootstrap over responses (non-inferiority)"
JUDGE_TEST = "Wilcoxon signed-rank + paired percentile bootstrap CI of the mean difference"
SHIFT_TEST = "exact one-sided sign test over the pairs that moved + Wilson CI of the share"
TEST_NAME = (
    "preference accuracy: McNemar exact one-sided + paired Wald CI (Agresti-Min); "
    "preference shift: exact one-sided sign test; "
    "NLL per token: paired percentile bootstrap (non-inferiority); judge: Wilcoxon signed-rank"
)


def _checked(name: str, *columns: Sequence[float]) -> None:
    if len({len(c) for c in columns}) > 1:
        raise ValueError(f"{name}: the columns differ in length: {[len(c) for c in columns]}")
    if any(not np.isfinite(np.asarray(c, dtype=np.float64)).all() for c in columns):
        raise ValueError(f"{name}: scores must be finite")


@dataclass(frozen=True)
class PreferenceScores:
    """Per held-out preference pair, each version's margin: log p(chosen) - log p(rejected),
    each summed over the response's tokens; and, where given, the same margin per token (each
    answer's mean log-probability). ``policy.preference_margin`` says which the gate judges;
    the other is reported beside it: a summed margin favours the shorter answer, so where
    people prefer the longer one it can hide what a candidate learnt."""

    champion_margins: Sequence[float]
    candidate_margins: Sequence[float]
    champion_token_margins: Sequence[float] = ()
    candidate_token_margins: Sequence[float] = ()

    def __post_init__(self) -> None:
        _checked("preference margins", self.champion_margins, self.candidate_margins)
        if self.champion_token_margins or self.candidate_token_margins:
            _checked(
                "preference margins per token",
                self.champion_margins,
                self.champion_token_margins,
                self.candidate_token_margins,
            )


@dataclass(frozen=True)
class NllScores:
    """Per held-out good answer, each version's mean NLL per token of the response (given its
    prompt) and the response's token count (one count: both versions tokenize alike, being
    adapters of one base model)."""

    champion: Sequence[float]
    candidate: Sequence[float]
    tokens: Sequence[int]

    def __post_init__(self) -> None:
        _checked("NLL per token", self.champion, self.candidate, self.tokens)
        if any(t < 1 for t in self.tokens):
            raise ValueError("NLL per token: every response needs at least one token")


@dataclass(frozen=True)
class JudgeScores:
    """Per held-out prompt, the judge's score (probability desirable) of each version's answer;
    and how far the judge can be trusted: its AUC on rated answers it did not train on (None:
    unknown), how many it was tested on and how many it trained on."""

    champion: Sequence[float]
    candidate: Sequence[float]
    judge_auc: float | None = None
    judge_auc_n: int = 0
    judge_trained_on: int = 0
    samples_per_prompt: int = 1  # 1: each version's greedy answer; more: sampled answers, paired by seed

    def __post_init__(self) -> None:
        _checked("judge scores", self.champion, self.candidate)

    @property
    def answered(self) -> str:
        if self.samples_per_prompt == 1:
            return f"n={len(self.champion)} held-out prompts (greedy answers)"
        prompts = len(self.champion) // self.samples_per_prompt
        return (
            f"n={len(self.champion)} answers to {prompts} held-out prompts ({self.samples_per_prompt} sampled per "
            "prompt and version, the same seeds for both)"
        )

    @property
    def trusted(self) -> bool:
        return self.judge_auc is not None and self.judge_auc >= JUDGE_MIN_AUC


@dataclass(frozen=True)
class _Check:
    passed: bool | None  # None: not judged
    reason: str
    comparison: dict[str, Any] | None = None
    extra: tuple[dict[str, Any], ...] = ()  # comparisons stored beside it (the preference shift)


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _interval(ci: tuple[float, float] | None) -> str:
    return "none" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _diff_ci(
    champion: Statistic, candidate: Statistic, n: int, policy: Policy, resamples: int, seed: int
) -> tuple[float, float] | None:
    """The paired percentile-bootstrap ``1 - 2*alpha`` interval of candidate - champion."""
    pairs = {"d": (champion, candidate)}
    return paired_bootstrap_diff_cis(pairs, n, resamples=resamples, confidence=policy.gate.confidence, seed=seed)["d"]


def _paired_values(
    set_name: str, metric: str, test: str, values: tuple[float, float], ci: tuple[float, float] | None, n: int
) -> dict[str, Any]:
    """A check's stored comparison: ``values`` are (champion, candidate)."""
    return {
        "set_name": set_name,
        "metric": metric,
        "test": test,
        "n": n,
        "champion": float(values[0]),
        "candidate": float(values[1]),
        "difference": float(values[1] - values[0]),
        "ci_low": None if ci is None else ci[0],
        "ci_high": None if ci is None else ci[1],
    }


def _preference(scores: PreferenceScores | None, policy: Policy, resamples: int, seed: int) -> _Check:
    gate = policy.gate
    if scores is None or not scores.champion_margins:
        return _Check(None, "held-out preferences: no pairs, so no preference accuracy to judge")
    summed = (scores.champion_margins, scores.candidate_margins)
    token = (scores.champion_token_margins, scores.candidate_token_margins)
    per_token = gate.preference_margin == "per-token" and bool(scores.champion_token_margins)
    judged, reported = (token, summed) if per_token else (summed, token)
    champion = np.asarray(judged[0], dtype=np.float64)
    candidate = np.asarray(judged[1], dtype=np.float64)
    c = paired_outcomes("held_out_pairs", champion > TIE, candidate > TIE, confidence=gate.confidence)
    margin_ci = _diff_ci(mean_statistic(champion), mean_statistic(candidate), c.n, policy, resamples, seed)
    shift = preference_shift(champion, candidate, confidence=gate.confidence, alpha=gate.alpha)
    enough = c.n >= gate.min_preference_pairs
    by_shift = gate.preference_test == "shift"
    better = c.candidate_accuracy > c.champion_accuracy and c.p_better < gate.alpha
    passed = enough and (bool(shift["better"]) if by_shift else better)
    unit = " per token" if per_token else ""
    accuracy_text = (
        f"held-out preference accuracy{unit} {c.candidate_accuracy:.2f} vs "
        f"{c.champion_accuracy:.2f} "
        f"(n={c.n} pairs, {_pts(c.difference)}, {c.confidence:.0%} CI [{_pts(c.ci_low)}, {_pts(c.ci_high)}]; "
        f"{c.candidate_only} wins vs {c.champion_only} losses, McNemar exact one-sided p={_p(c.p_better)} "
        f"vs alpha {gate.alpha}; mean margin {candidate.mean():+.3f} vs {champion.mean():+.3f} nats{unit})"
    )
    shift_text = (
        f"held-out preference shift{unit}: the candidate moved {shift['toward']} of {c.n} pairs' margins toward "
        f"the chosen answer and {shift['away']} away ({shift['candidate']:.2f} of those that moved, "
        f"{gate.confidence:.0%} CI [{shift['ci_low']:.2f}, {shift['ci_high']:.2f}]; exact one-sided sign test "
        f"p={_p(shift['p_better'])} vs alpha {gate.alpha})"
    )
    text = shift_text if by_shift else accuracy_text
    if not enough:
        text += f": {gate.min_preference_pairs} pairs required (min_preference_pairs) to show an improvement"
    else:
        text += ": better" if passed else ": NOT shown better"
    if by_shift:
        text += (
            f"; accuracy, reported, not judged (preference_test=shift): {c.candidate_accuracy:.2f} vs "
            f"{c.champion_accuracy:.2f}, {c.candidate_only} wins vs {c.champion_only} losses, McNemar "
            f"one-sided p={_p(c.p_better)}"
        )
    else:
        text += (
            f"; shift, reported, not judged: {shift['toward']} toward vs {shift['away']} away, "
            f"sign test p={_p(shift['p_better'])}"
        )
    other = _reported_accuracy(reported, gate.confidence)
    if other is not None:
        what = "summed over the tokens" if per_token else "per token (length-normalised"
        text += (
            f"; {what}, reported, not judged{'' if per_token else ')'}: {other['candidate']:.2f} vs "
            f"{other['champion']:.2f}, {other['candidate_only']} wins vs {other['champion_only']} "
            f"losses, McNemar one-sided p={_p(other['p_better'])}"
        )
    comparison = {
        **c.to_dict(),
        "metric": "preference_accuracy",
        "margin": "per-token" if per_token else "summed",  # the margin judged
        "test": "McNemar exact one-sided + paired Wald CI (Agresti-Min)",
        "champion": c.champion_accuracy,
        "candidate": c.candidate_accuracy,
        "champion_mean_margin": float(champion.mean()),
        "candidate_mean_margin": float(candidate.mean()),
        "margin_difference_ci": None if margin_ci is None else list(margin_ci),
        "min_n": gate.min_preference_pairs,
        "passed": enough and better,
        "required": not by_shift,
        # the other margin's accuracy, reported: per token when the summed one is judged, and so on
        "summed" if per_token else "per_token": other,
    }
    shift_comparison = {
        **{k: v for k, v in shift.items() if k != "better"},
        "set_name": "held_out_pairs",
        "margin": "per-token" if per_token else "summed",
        "n": c.n,
        "min_n": gate.min_preference_pairs,
        "passed": enough and bool(shift["better"]),
        "required": by_shift,
    }
    return _Check(passed, text, comparison, extra=(shift_comparison,))


def preference_shift(
    champion: Sequence[float] | FloatArray, candidate: Sequence[float] | FloatArray, *, confidence: float, alpha: float
) -> dict[str, Any]:
    """The share of pairs whose margin the candidate moved toward the chosen answer, of those
    it moved (a move within ``TIE`` is none), with its exact one-sided sign test and its Wilson
    interval at ``confidence``; ``better``: a share above one half with ``p < alpha``."""
    from scipy.stats import binomtest

    moved = np.asarray(candidate, dtype=np.float64) - np.asarray(champion, dtype=np.float64)
    toward, away = int((moved > TIE).sum()), int((moved < -TIE).sum())
    n = toward + away
    p = float(binomtest(toward, n, 0.5, alternative="greater").pvalue) if n else 1.0
    share = toward / n if n else 0.5
    low, high = wilson_interval(toward, n, confidence)
    return {
        "metric": "preference_shift",
        "test": SHIFT_TEST,
        "toward": toward,
        "away": away,
        "champion": None,  # the reference: the shift is measured from its margins
        "candidate": share,
        "difference": None,
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "p_better": p,
        "mean_shift": float(moved.mean()),
        "better": share > 0.5 and p < alpha,
    }


def _reported_accuracy(margins: tuple[Sequence[float], Sequence[float]], confidence: float) -> dict[str, Any] | None:
    """Preference accuracy on the margins the gate does not judge, paired as the judged ones."""
    if not margins[0]:
        return None
    champion = np.asarray(margins[0], dtype=np.float64)
    candidate = np.asarray(margins[1], dtype=np.float64)
    c = paired_outcomes("held_out_pairs_reported", champion > TIE, candidate > TIE, confidence=confidence)
    return {
        "champion": c.champion_accuracy,
        "candidate": c.candidate_accuracy,
        "champion_only": c.champion_only,
        "candidate_only": c.candidate_only,
        "p_better": c.p_better,
        "ci": [c.ci_low, c.ci_high],
        "champion_mean_margin": float(champion.mean()),
        "candidate_mean_margin": float(candidate.mean()),
    }


def _nll(scores: NllScores | None, policy: Policy, resamples: int, seed: int) -> _Check:
    gate = policy.gate
    if scores is None or not scores.tokens:
        return _Check(None, "held-out NLL per token: not judged (no held-out good answers)")
    tokens = np.asarray(scores.tokens, dtype=np.float64)
    champion_total = np.asarray(scores.champion, dtype=np.float64) * tokens
    candidate_total = np.asarray(scores.candidate, dtype=np.float64) * tokens
    champion, candidate = champion_total.sum() / tokens.sum(), candidate_total.sum() / tokens.sum()
    n = len(tokens)
    ci = _diff_ci(
        ratio_statistic(champion_total, tokens), ratio_statistic(candidate_total, tokens), n, policy, resamples, seed
    )
    passed = ci is not None and ci[1] < gate.nll_margin
    text = (
        f"held-out NLL per token of good answers {candidate:.3f} vs {champion:.3f} nats "
        f"(n={n} responses, {int(tokens.sum())} tokens, token-weighted; difference {candidate - champion:+.3f}, "
        f"{gate.confidence:.0%} CI {_interval(ci)}, paired bootstrap over responses, {resamples} resamples); "
        f"non-inferiority margin {gate.nll_margin:g}: " + ("non-inferior" if passed else "NOT shown non-inferior")
    )
    comparison = {
        **_paired_values("held_out_good_answers", "nll_per_token", NLL_TEST, (champion, candidate), ci, n),
        "tokens": int(tokens.sum()),
        "confidence": gate.confidence,
        "margin": gate.nll_margin,
        "passed": passed,
    }
    return _Check(passed, text, comparison)


def _wilcoxon(differences: FloatArray) -> tuple[float, float, float]:
    """Two-sided, "better" and "worse" p-values of Wilcoxon's signed-rank test (zero
    differences dropped; none left: 1)."""
    if not np.any(differences != 0):
        return 1.0, 1.0, 1.0
    from scipy.stats import wilcoxon

    two_sided, greater, less = (
        float(wilcoxon(differences, alternative=alternative).pvalue) for alternative in ("two-sided", "greater", "less")
    )
    return two_sided, greater, less


def _judge(scores: JudgeScores | None, policy: Policy, resamples: int, seed: int) -> _Check:
    gate = policy.gate
    required = " (required: judge_required)" if gate.judge_required else " (reported, not required)"
    if scores is None or not scores.champion:
        return _Check(
            False if gate.judge_required else None,
            "judge: no scores (judge_prompts=0, or no judge could be trained)"
            + (": NOT judged, and judge_required is set" if gate.judge_required else ""),
        )
    champion = np.asarray(scores.champion, dtype=np.float64)
    candidate = np.asarray(scores.candidate, dtype=np.float64)
    n = len(champion)
    p_two_sided, p_better, p_worse = _wilcoxon(candidate - champion)
    ci = _diff_ci(mean_statistic(champion), mean_statistic(candidate), n, policy, resamples, seed)
    difference = float(candidate.mean() - champion.mean())
    better = difference > 0 and p_better < gate.alpha
    quality = (
        "held-out AUC unknown"
        if scores.judge_auc is None
        else f"held-out AUC {scores.judge_auc:.2f} on {scores.judge_auc_n} rated answers"
    )
    text = (
        f"judge (a reward model trained on {scores.judge_trained_on} of this model's rated answers, {quality}): "
        f"mean score {candidate.mean():.3f} vs {champion.mean():.3f} on {scores.answered} "
        f"(difference {difference:+.3f}, {gate.confidence:.0%} CI {_interval(ci)}); Wilcoxon signed-rank "
        f"p={_p(p_two_sided)} two-sided, p(better)={_p(p_better)}: "
        + ("better" if better else "NOT shown better")
        + required
    )
    comparison = {
        **_paired_values("held_out_prompts", "judge_score", JUDGE_TEST, (champion.mean(), candidate.mean()), ci, n),
        "confidence": gate.confidence,
        "p_two_sided": p_two_sided,
        "p_better": p_better,
        "p_worse": p_worse,
        "judge_auc": scores.judge_auc,
        "judge_auc_n": scores.judge_auc_n,
        "judge_trained_on": scores.judge_trained_on,
        "samples_per_prompt": scores.samples_per_prompt,
        "required": gate.judge_required,
        "passed": better,
    }
    return _Check(better if gate.judge_required else None, text, comparison)


def _fallback(preference: _Check, judge: _Check, judge_scores: JudgeScores | None, policy: Policy) -> _Check:
    """With too few held-out pairs: the judge must show the candidate better and be trusted,
    and the pairs there are must not point the other way."""
    judge_better = bool(judge.comparison and judge.comparison["passed"])
    trusted = judge_scores is not None and judge_scores.trusted
    pairs = preference.comparison
    against = pairs is not None and (
        pairs["candidate_accuracy"] < pairs["champion_accuracy"]
        or pairs["candidate_mean_margin"] < pairs["champion_mean_margin"]
    )
    passed = judge_better and trusted and not against
    why = (
        "the held-out pairs there are point the other way"
        if against
        else "the judge does not show it better"
        if not judge_better
        else f"the judge's held-out AUC is unknown or below {JUDGE_MIN_AUC}"
        if not trusted
        else ""
    )
    text = (
        f"fewer than {policy.gate.min_preference_pairs} held-out preference pairs: the judge must show the "
        f"candidate better instead (with held-out AUC >= {JUDGE_MIN_AUC}): "
        + ("it does" if passed else f"NOT shown better ({why})")
    )
    return _Check(passed, text)


def _judge_decides(preference: _Check, judge: _Check, judge_scores: JudgeScores | None) -> tuple[_Check, _Check]:
    """``preference_required`` off: the preference check only reported (its comparisons marked
    not required), and the judge, required, decides only if it can be trusted."""
    reported = replace(
        preference,
        passed=None,
        reason=preference.reason + "; reported, not judged (preference_required=false: the judge decides)",
        comparison=None if preference.comparison is None else {**preference.comparison, "required": False},
        extra=tuple({**c, "required": False} for c in preference.extra),
    )
    if judge.passed and not (judge_scores is not None and judge_scores.trusted):
        judge = replace(
            judge,
            passed=False,
            reason=judge.reason + f"; but its held-out AUC is unknown or below {JUDGE_MIN_AUC}: it cannot decide",
        )
    return reported, judge


def compare_generators(
    preference: PreferenceScores | None,
    nll: NllScores | None,
    judge: JudgeScores | None,
    policy: Policy,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The gate's verdict on a generative candidate against the champion (every check and the
    passing rule of the module doc, at the ``1 - 2*alpha`` confidence). The keys are those of
    ``compare_classifiers`` (``passed``, ``decision``, ``reasons``, ``test``, ``alpha``,
    ``comparisons``) and ``checks`` (each check's outcome: True, False, or None when not
    judged), ``bootstrap`` and ``kind`` ("generative")."""
    checks = {
        "preference": _preference(preference, policy, resamples, seed),
        "nll": _nll(nll, policy, resamples, seed + 1),
        "judge": _judge(judge, policy, resamples, seed + 2),
    }
    if not policy.gate.preference_required:
        checks["preference"], checks["judge"] = _judge_decides(checks["preference"], checks["judge"], judge)
    reasons = [c.reason for c in checks.values()]
    pairs = 0 if preference is None else len(preference.champion_margins)
    preference_check: _Check | None
    if not policy.gate.preference_required:
        preference_ok, preference_check = True, None
    elif pairs >= policy.gate.min_preference_pairs:
        preference_ok = bool(checks["preference"].passed)
        preference_check = checks["preference"]
    else:
        fallback = _fallback(checks["preference"], checks["judge"], judge, policy)
        checks["preference_fallback"] = fallback
        reasons.insert(1, fallback.reason)  # beside the preference check it stands in for
        preference_ok = bool(fallback.passed)
        preference_check = fallback
    passed = preference_ok and checks["nll"].passed is not False and checks["judge"].passed is not False
    deciding = ([] if preference_check is None else [(preference_ok, preference_check.reason)]) + [
        (checks[name].passed is not False, checks[name].reason)
        for name in ("nll", "judge")
        if checks[name].passed is not None
    ]
    return {
        "passed": passed,
        "decision": "promote" if passed else "reject",
        "headline": compose_headline(deciding, passed),
        "reasons": reasons,
        "test": TEST_NAME,
        "alpha": policy.gate.alpha,
        "comparisons": [x for c in checks.values() for x in ((c.comparison,) if c.comparison else ()) + c.extra],
        "checks": {name: c.passed for name, c in checks.items()},
        "bootstrap": {
            "method": "percentile",
            "resamples": resamples,
            "seed": seed,
            "confidence": policy.gate.confidence,
        },
        "kind": "generative",
    }
