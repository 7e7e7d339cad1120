"""The offline gate: is a candidate good enough to replace the champion?

Both versions are scored on the same examples, so the comparison is paired:

* **McNemar's exact test** on the discordant pairs (examples exactly one version gets
  right): under "no difference" the candidate wins each such pair with probability 1/2.
* a **confidence interval for the accuracy difference** (Wald interval for paired
  proportions with the Agresti-Min adjustment, which keeps its coverage at small n).

The verdict needs every check of the model's ``Policy``:

1. *golden set, non-inferiority*: the lower bound of the ``1 - 2*alpha`` interval for
   (candidate - champion) accuracy lies above ``-golden_margin``;
2. *recent feedback*: on the feedback the champion never saw, scored by forward chaining
   (``curation.snapshot``), at least ``min_recent_examples`` examples, judged by the test
   ``recent_test`` names:

   * ``superiority``: a gain above ``min_recent_gain`` and a one-sided exact McNemar p-value
     of "better" below ``alpha``: the change is *shown* better;
   * ``not-worse``: a one-sided exact McNemar p-value of "worse" at or above ``alpha`` (and a
     gain above ``min_recent_gain`` where that is above 0): the change is not shown worse;
   * ``refresh`` (the default): ``not-worse`` when the candidate is a *refresh* of the champion
     (its family with its parameters, fitted on the champion's data and newer feedback),
     ``superiority`` for any other change (another family, other parameters: a selection or a
     search must prove itself). A refresh carries no burden to prove that more and newer data
     helps: the gains feedback brings per retrain (1-4 points) cannot be shown on the few
     hundred labels between retrains, and demanding that proof held the loop significantly
     below a naive loop under drift (``bench/scenarios_bench.py``). Its one burden of proof
     is the golden set's accuracy (check 1, and fairness where the policy asks for it); every
     other check asks of it only whether the evidence shows it worse. The golden set is that
     burden only while it describes the traffic: with ``golden_traffic_check`` (the default)
     the golden texts are tested against the recent feedback's (``GoldenDeparture``, a
     classifier two-sample test), and when the traffic is shown to have left the golden set's
     distribution (a topic or domain shift), a refresh's golden checks (1 and 3) are reported,
     not required: a golden set of a domain the traffic left would otherwise veto every refit
     that learns the new one (``bench/scenarios_bench.py``, ``topic``). A change of family or
     parameters keeps them;
3. *golden set, the other metrics*: paired percentile-bootstrap ``1 - 2*alpha`` intervals of
   the difference in macro-F1 and ROC AUC must lie above ``-golden_f1_margin`` /
   ``-golden_auc_margin`` at their lower end, and the interval of the difference in expected
   calibration error below ``golden_ece_margin`` at its upper end (a margin of 1 turns a
   check off); for a change judged ``not-worse``, the interval must not lie wholly beyond the
   margin instead (not *shown* worse by more than it);
4. *slices*: on each value of each ``slice_fields`` metadata field of the recent feedback
   with at least ``min_slice_examples`` examples, the candidate must not be *shown* worse by
   more than ``slice_margin``: a slice fails when its accuracy difference is below
   ``-slice_margin`` and McNemar's one-sided test of "worse" is significant at ``alpha``.
   Smaller slices are reported, not judged (their intervals are too wide to mean anything).
5. *fairness*: for each ``fairness_fields`` metadata field, on the rows of each set that have
   it, the largest gap between groups (``evaluation.fairness``: demographic parity and equal
   opportunity differences over the groups of at least ``fairness_min_group`` rows) under each
   version, paired on the same rows; with ``fairness_margin`` below 1 the candidate must be
   *shown* not to widen it by more than the margin: the upper end of the ``1 - 2*alpha``
   paired bootstrap interval of (candidate gap - champion gap) lies below the margin. A field
   with fewer than two groups that large is reported, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from learnloop.evaluation.fairness import GapComparison, compare_largest_gap, field_values
from learnloop.evaluation.headline import compose_headline, p_text
from learnloop.evaluation.metrics import paired_metric_differences
from learnloop.policy import Policy

TEST_NAME = "McNemar exact (one-sided) + paired Wald CI (Agresti-Min)"
SUPERIORITY, NOT_WORSE = "superiority", "not-worse"


@dataclass(frozen=True)
class PairedComparison:
    set_name: str
    n: int
    champion_accuracy: float
    candidate_accuracy: float
    difference: float  # candidate - champion
    ci_low: float
    ci_high: float
    confidence: float
    champion_only: int  # champion right, candidate wrong
    candidate_only: int  # candidate right, champion wrong
    p_better: float  # one-sided: candidate better
    p_worse: float  # one-sided: candidate worse

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_comparison(
    set_name: str,
    y_true: Sequence[str],
    champion_pred: Sequence[str],
    candidate_pred: Sequence[str],
    *,
    confidence: float = 0.90,
) -> PairedComparison:
    truth = np.asarray(y_true, dtype=object)
    return paired_outcomes(
        set_name,
        np.asarray(champion_pred, dtype=object) == truth,
        np.asarray(candidate_pred, dtype=object) == truth,
        confidence=confidence,
    )


def paired_outcomes(
    set_name: str,
    champion_right: Sequence[bool] | npt.NDArray[np.bool_],
    candidate_right: Sequence[bool] | npt.NDArray[np.bool_],
    *,
    confidence: float = 0.90,
) -> PairedComparison:
    """McNemar's exact tests and the paired interval from each example's outcome under each
    version (right or not): what ``paired_comparison`` reads from labels, and the generative
    gate from preference margins."""
    a = np.asarray(champion_right, dtype=bool)
    b = np.asarray(candidate_right, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"champion and candidate outcomes differ in length: {a.shape} vs {b.shape}")
    n = len(a)
    champion_only = int((a & ~b).sum())
    candidate_only = int((~a & b).sum())
    discordant = champion_only + candidate_only
    if discordant:
        from scipy.stats import binomtest

        p_better = float(binomtest(candidate_only, discordant, 0.5, alternative="greater").pvalue)
        p_worse = float(binomtest(candidate_only, discordant, 0.5, alternative="less").pvalue)
    else:
        p_better = p_worse = 1.0
    low, high = _paired_difference_interval(champion_only, candidate_only, n, confidence)
    return PairedComparison(
        set_name=set_name,
        n=n,
        champion_accuracy=float(a.mean()) if n else 0.0,
        candidate_accuracy=float(b.mean()) if n else 0.0,
        difference=(candidate_only - champion_only) / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        champion_only=champion_only,
        candidate_only=candidate_only,
        p_better=p_better,
        p_worse=p_worse,
    )


def _paired_difference_interval(b: int, c: int, n: int, confidence: float) -> tuple[float, float]:
    """Wald interval for p(candidate right) - p(champion right), Agresti-Min adjusted
    (half a count added to each of the four cells)."""
    if n == 0:
        return -1.0, 1.0
    b_adj, c_adj, n_adj = b + 0.5, c + 0.5, n + 2.0
    diff = (c_adj - b_adj) / n_adj
    var = ((b_adj + c_adj) / n_adj - diff * diff) / n_adj
    from scipy.special import ndtri  # the standard normal quantile (scipy.stats.norm.ppf)

    z = float(ndtri(0.5 + confidence / 2))
    half = z * float(np.sqrt(max(var, 0.0)))
    return max(-1.0, diff - half), min(1.0, diff + half)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    test: str = TEST_NAME
    alpha: float = 0.05
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    headline: str = ""  # the deciding words, first (``evaluation.headline``)
    recent_test: str = SUPERIORITY  # the recent check's test (``recent_test``)
    golden_departure: dict[str, Any] | None = None  # ``GoldenDeparture.to_dict``, where it was tested

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decision": "promote" if self.passed else "reject"}


@dataclass(frozen=True)
class GoldenDeparture:
    """Whether the recent feedback comes from another distribution than the golden set: a
    classifier two-sample test (``drift.multivariate.domain_classifier_test``) of golden texts
    against recent ones, with the thresholds of the multivariate drift detector: departed when
    the held-out AUC is significant (one-sided Mann-Whitney p < ``alpha``) and at least
    ``0.5 + effect_threshold``. ``n_golden`` / ``n_recent``: the rows the test scored."""

    auc: float
    p_value: float
    n_golden: int
    n_recent: int
    alpha: float
    effect_threshold: float = 0.10

    @property
    def departed(self) -> bool:
        return self.p_value < self.alpha and self.auc - 0.5 >= self.effect_threshold

    def describe(self) -> str:
        return (
            f"golden set against the recent feedback, domain classifier: held-out AUC {self.auc:.2f} "
            f"on {self.n_golden} golden and {self.n_recent} recent texts, Mann-Whitney {p_text(self.p_value)} "
            f"vs alpha {self.alpha:g}, effect threshold AUC {0.5 + self.effect_threshold:.2f}: "
            + (
                "the traffic has LEFT the golden set's distribution"
                if self.departed
                else "not shown to have left the golden set's distribution"
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "departed": self.departed}


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def slice_comparisons(
    metadata: Sequence[Mapping[str, Any] | None],
    y_true: Sequence[str],
    champion_pred: Sequence[str],
    candidate_pred: Sequence[str],
    fields: Sequence[str],
    *,
    confidence: float,
) -> list[PairedComparison]:
    """One paired comparison per value of each metadata field (``recent[domain=books]``)."""
    out = []
    for name in fields:
        groups: dict[str, list[int]] = {}
        for i, meta in enumerate(metadata):
            value = (meta or {}).get(name)
            if value is not None:
                groups.setdefault(str(value), []).append(i)
        for value, idx in sorted(groups.items()):
            out.append(
                paired_comparison(
                    f"recent[{name}={value}]",
                    [y_true[i] for i in idx],
                    [champion_pred[i] for i in idx],
                    [candidate_pred[i] for i in idx],
                    confidence=confidence,
                )
            )
    return out


# (metric, policy field, +1: higher is better / -1: lower is better, name)
_GOLDEN_SECONDARY = (
    ("macro_f1", "golden_f1_margin", 1, "macro-F1"),
    ("roc_auc", "golden_auc_margin", 1, "ROC AUC"),
    ("ece", "golden_ece_margin", -1, "ECE"),
)


def _secondary_checks(
    secondary: Mapping[str, Mapping[str, Any]], policy: Policy, test: str = SUPERIORITY
) -> list[tuple[bool, str]]:
    """Each golden-set secondary metric judged: (passed, its paired difference and verdict).
    Shown within its margin; for a change judged ``not-worse`` (a refresh), not shown beyond it."""
    checks = []
    for metric, field_name, direction, name in _GOLDEN_SECONDARY:
        margin = getattr(policy.gate, field_name)
        found = secondary.get(metric)
        if margin >= 1 or not found or found.get("ci") is None:
            continue
        low, high = found["ci"]
        shown = f"{name} {found['difference']:+.3f} [{low:+.3f}, {high:+.3f}] "
        if test == NOT_WORSE:
            passed = high >= -margin if direction > 0 else low <= margin
            checks.append(
                (passed, shown + ("not shown beyond" if passed else "shown BEYOND") + f" the margin {margin:g}")
            )
        else:
            passed = low > -margin if direction > 0 else high < margin
            checks.append((passed, shown + ("ok" if passed else f"NOT within the margin {margin:g}")))
    return checks


def _slice_checks(slices: Sequence[PairedComparison], policy: Policy) -> list[tuple[bool, str]]:
    """Each slice judged: (passed, its reason); a slice too small to judge passes."""
    checks = []
    for c in slices:
        if c.n < policy.gate.min_slice_examples:
            checks.append((True, f"slice {c.set_name} (n={c.n}): {_pts(c.difference)}, too small to judge"))
            continue
        worse = c.difference < -policy.gate.slice_margin and c.p_worse < policy.gate.alpha
        checks.append(
            (
                not worse,
                f"slice {c.set_name} (n={c.n}): {_pts(c.difference)}, McNemar p(worse)={c.p_worse:.4f}: "
                + (f"REGRESSES beyond {_pts(-policy.gate.slice_margin)}" if worse else "no regression shown"),
            )
        )
    return checks


def _fairness_checks(gaps: Sequence[tuple[str, GapComparison]], policy: Policy) -> list[tuple[bool, str]]:
    """Each field's largest gap judged on each set: (passed, reason); not judged passes."""
    margin = policy.gate.fairness_margin
    checks = []
    for set_name, c in gaps:
        name = f"fairness {set_name}[{c.field}] (n={c.n}, {c.groups} groups of >= {policy.gate.fairness_min_group})"
        if c.difference is None or c.low is None or c.high is None:
            checks.append((True, f"{name}: too few rows per group to judge"))
            continue
        shown = f"largest gap {c.champion:.3f} -> {c.candidate:.3f} ({c.difference:+.3f}, paired bootstrap "
        shown += f"{c.confidence:.0%} CI [{c.low:+.3f}, {c.high:+.3f}])"
        if margin >= 1:
            checks.append((True, f"{name}: {shown}, not judged (fairness_margin 1)"))
            continue
        passed = c.high < margin
        verdict = "not widened beyond" if passed else "NOT shown within"
        checks.append((passed, f"{name}: {shown}: {verdict} the margin {margin:g}"))
    return checks


def judge(
    golden: PairedComparison,
    recent: PairedComparison | None,
    policy: Policy,
    *,
    golden_secondary: Mapping[str, Mapping[str, Any]] | None = None,
    slices: Sequence[PairedComparison] = (),
    fairness: Sequence[tuple[str, GapComparison]] = (),
    refresh: bool = False,
    departure: GoldenDeparture | None = None,
) -> Verdict:
    """Every check of the module doc; ``refresh``: the candidate is the champion's family with
    its parameters, fitted on more and newer data (which test the recent check uses);
    ``departure``: the golden set tested against the recent feedback (``GoldenDeparture``)."""
    reasons: list[str] = []
    golden_ok = golden.n > 0 and golden.ci_low > -policy.gate.golden_margin
    # A refresh's golden checks are its burden of proof only while the golden set describes the
    # traffic: once the traffic is shown to have left it, they are reported, not required.
    golden_binds = not (refresh and departure is not None and departure.departed)
    deciding = []
    if golden_binds:
        deciding.append(
            (
                golden_ok,
                f"golden set {'non-inferior' if golden_ok else 'NOT shown non-inferior'} ({_pts(golden.difference)}, "
                f"CI low {_pts(golden.ci_low)} vs margin {_pts(-policy.gate.golden_margin)}, n={golden.n})",
            )
        )
    reasons.append(
        f"golden set (n={golden.n}): {_pts(golden.difference)}, "
        f"{golden.confidence:.0%} CI [{_pts(golden.ci_low)}, {_pts(golden.ci_high)}]; "
        f"non-inferiority margin {_pts(-policy.gate.golden_margin)}: "
        + ("non-inferior" if golden_ok else "NOT shown non-inferior")
        + ("" if golden_binds else " (reported, not required: the traffic has left the golden set)")
    )
    if departure is not None:
        reasons.append(
            departure.describe() + ("" if golden_binds else "; a refresh's golden checks are reported, not required")
        )
    test = recent_test(policy, refresh=refresh)
    if recent is None or recent.n < policy.gate.min_recent_examples:
        n = 0 if recent is None else recent.n
        reasons.append(
            f"recent feedback: {n} labelled examples judged by forward chaining; "
            f"{policy.gate.min_recent_examples} required to judge a change"
        )
        deciding.append(
            (False, f"recent feedback too little to judge (n={n}, {policy.gate.min_recent_examples} required)")
        )
    else:
        recent_ok, shown, said = _recent_check(recent, policy, test)
        reasons.append(
            f"recent feedback, forward-chained (n={recent.n}): {_pts(recent.difference)} "
            f"({recent.candidate_only} wins vs {recent.champion_only} losses), {shown}: {said}"
        )
        deciding.append(
            (recent_ok, f"recent feedback {said} ({_pts(recent.difference)}, {_short(recent, test)}, n={recent.n})")
        )
    secondary = _secondary_checks(golden_secondary or {}, policy, test)
    if secondary:
        reasons.append("golden set, paired bootstrap differences: " + "; ".join(text for _, text in secondary))
        if golden_binds:
            deciding += [(ok, f"golden {text}") for ok, text in secondary if not ok]
    slice_checks = _slice_checks(slices, policy)
    reasons += [text for _, text in slice_checks]
    deciding += [(ok, text) for ok, text in slice_checks if not ok]
    fairness_checks = _fairness_checks(fairness, policy)
    reasons += [text for _, text in fairness_checks]
    deciding += [(ok, text) for ok, text in fairness_checks if not ok]
    comparisons = [golden.to_dict()] + ([recent.to_dict()] if recent is not None else [])
    comparisons += [c.to_dict() for c in slices]
    passed = all(ok for ok, _ in deciding)
    return Verdict(
        passed=passed,
        reasons=reasons,
        alpha=policy.gate.alpha,
        comparisons=comparisons,
        headline=compose_headline(deciding, passed),
        recent_test=test,
        golden_departure=None if departure is None else departure.to_dict(),
    )


def recent_test(policy: Policy, *, refresh: bool) -> str:
    """The test the recent check applies: ``policy.recent_test``, where ``refresh`` resolves to
    ``not-worse`` for a refresh of the champion and ``superiority`` for any other change."""
    chosen = policy.gate.recent_test
    if chosen == "refresh":
        return NOT_WORSE if refresh else SUPERIORITY
    return chosen


def _recent_check(recent: PairedComparison, policy: Policy, test: str) -> tuple[bool, str, str]:
    """(passed, the test as stated, its outcome in words) of the recent check."""
    gain, alpha = policy.gate.min_recent_gain, policy.gate.alpha
    if test == SUPERIORITY:
        ok = recent.difference > gain and recent.p_better < alpha
        shown = f"superiority, McNemar exact one-sided p(better)={recent.p_better:.4f} vs alpha {alpha}"
        return ok, shown, "better" if ok else "NOT shown better"
    worse = recent.p_worse < alpha
    short = gain > 0 and recent.difference <= gain
    shown = f"no regression, McNemar exact one-sided p(worse)={recent.p_worse:.4f} vs alpha {alpha}"
    if gain > 0:
        shown += f", and a gain above {_pts(gain)}"
    said = "shown WORSE" if worse else f"NOT {_pts(gain)} ahead" if short else "not shown worse"
    return not (worse or short), shown, said


def _short(recent: PairedComparison, test: str) -> str:
    if test == SUPERIORITY:
        return f"McNemar {p_text(recent.p_better)}"
    return f"McNemar p(worse){p_text(recent.p_worse)[1:]}"


@dataclass(frozen=True)
class ScoredSet:
    """One evaluation set scored by both versions: the true labels, each version's predicted
    labels and probabilities (columns in the model's label order), and each example's metadata."""

    truth: Sequence[str]
    champion: Sequence[str]
    candidate: Sequence[str]
    champion_proba: npt.NDArray[np.float64] | None = None
    candidate_proba: npt.NDArray[np.float64] | None = None
    metadata: Sequence[Mapping[str, Any] | None] = ()


def compare_classifiers(
    golden: ScoredSet,
    recent: ScoredSet,
    labels: Sequence[str],
    policy: Policy,
    *,
    resamples: int = 1000,
    seed: int = 0,
    refresh: bool = False,
    departure: GoldenDeparture | None = None,
) -> dict[str, Any]:
    """The gate's verdict on a candidate classifier against the champion (every check of the
    module doc, at the ``1 - 2*alpha`` confidence), with the informative paired differences of
    the other metrics on both sets (``secondary``)."""
    confidence = policy.gate.confidence
    golden_cmp = paired_comparison("golden", golden.truth, golden.champion, golden.candidate, confidence=confidence)
    recent_cmp = (
        paired_comparison("recent", recent.truth, recent.champion, recent.candidate, confidence=confidence)
        if recent.truth
        else None
    )
    secondary = {
        name: paired_metric_differences(
            scored.truth,
            scored.champion_proba,
            scored.candidate_proba,
            labels,
            resamples=resamples,
            confidence=confidence,
            seed=seed,
        )
        for name, scored in (("golden", golden), ("recent", recent))
        if scored.truth and scored.champion_proba is not None and scored.candidate_proba is not None
    }
    slices = slice_comparisons(
        list(recent.metadata) or [None] * len(recent.truth),
        recent.truth,
        recent.champion,
        recent.candidate,
        policy.gate.slices,
        confidence=confidence,
    )
    fairness = [
        (
            name,
            compare_largest_gap(
                field,
                scored.truth,
                scored.champion,
                scored.candidate,
                field_values(scored.metadata, field),
                labels,
                min_n=policy.gate.fairness_min_group,
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            ),
        )
        for field in policy.gate.fairness
        for name, scored in (("golden", golden), ("recent", recent))
        if scored.metadata
    ]
    verdict = judge(
        golden_cmp,
        recent_cmp,
        policy,
        golden_secondary=secondary.get("golden"),
        slices=slices,
        fairness=fairness,
        refresh=refresh,
        departure=departure,
    )
    return {**verdict.to_dict(), "secondary": secondary, "fairness": [{"set": n, **c.to_dict()} for n, c in fairness]}
