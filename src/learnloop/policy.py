"""A model's policy: the rules its loop follows, in one section per concern.

* ``triggers``: when a retrain starts;
* ``curation``: what a snapshot holds and how much each example weighs (and what personal
  data is scrubbed from stored text);
* ``gate``: how a candidate is judged against the champion before it may serve;
* ``rollout``: how a version that passed the gate reaches traffic, and what live evidence
  promotes or rolls it back;
* ``monitoring``: drift checks and online accuracy;
* ``generation``: a generative model's limits and how its feedback becomes training data;
* ``adapters``: how a generative model's retrain fits its LoRA adapter;
* ``value``: what a good answer and an hour of CPU or GPU are worth, for the report of each
  retrain's cost, gain and return;
* ``selection``: which candidates compete in a classifier's retrain (families, and whose
  parameters Optuna searches in a time budget), chosen on the training side only;
* ``retention``: which versions' artifacts are kept, and which re-creatable caches are dropped.

Every setting has one public *flat* name (``retrain_every``, ``alpha``, ``rollout``...), unique
across sections: ``learnloop config --set``, ``PATCH .../policy`` and the API's policy objects
speak those names, and errors name them (``policy.alpha``). Code reads the sections
(``policy.gate.alpha``). Policies are stored by section; policies stored flat by an earlier
learnloop still load.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

from croniter import croniter

from learnloop.errors import ValidationError

PII_KINDS = ("email", "phone", "card", "iban", "ip", "name")
STRATEGIES = ("swap", "canary", "shadow", "ab")
AUGMENT_METHODS = ("eda", "swap", "delete", "insert")  # curation.augment
_KIND_NAMES = {"bool": "true or false", "int": "a 64-bit integer", "float": "a finite number", "str": "a string"}
_INT64 = range(-(2**63), 2**63)


def _finite(value: float) -> bool:
    """NaN and infinities (JSON's ``NaN``, ``Infinity``, ``1e999``) have no place in a policy:
    SQLite stored them as null and PostgreSQL refused them."""
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond a float's range
        return False


# Fields older versions stored that no longer mean anything; ignored when a policy is loaded.
_RETIRED = frozenset({"recent_holdout_fraction"})


def check_schedule(expression: str) -> str:
    """A cron expression (five fields, UTC), or a clear error."""
    if expression and not croniter.is_valid(expression):
        raise ValidationError(
            f"policy.retrain_schedule must be a cron expression such as '0 3 * * *' (UTC); got {expression!r}",
            field="policy.retrain_schedule",
        )
    return expression


def parse_steps(value: str | Sequence[float]) -> tuple[float, ...]:
    """Canary traffic steps as shares in (0, 1), increasing: "5,25,50" (percent) or [0.05, 0.25]."""
    if isinstance(value, str):
        try:
            shares = tuple(float(part) / 100 for part in value.replace(" ", "").split(",") if part)
        except ValueError:
            raise ValidationError(
                f"canary steps must be comma-separated percentages such as 5,25,50; got {value!r}",
                field="policy.canary_steps",
            ) from None
    else:
        shares = tuple(float(v) for v in value)
    if not shares or any(not 0 < s < 1 for s in shares) or list(shares) != sorted(set(shares)):
        raise ValidationError(
            f"canary steps must be increasing shares strictly between 0% and 100%; got {value!r}",
            field="policy.canary_steps",
        )
    return shares


class _Section:
    """Type checks and coercion shared by every section (values arrive from JSON and the CLI)."""

    # flat name -> field name, where they differ
    FLAT_NAMES: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.type == "bool":
                ok = isinstance(value, bool)
            elif f.type == "str":
                if isinstance(value, int | float) and not isinstance(value, bool):  # --set canary_steps=50
                    value = str(value)
                    object.__setattr__(self, f.name, value)
                ok = isinstance(value, str)
            elif f.type == "int":  # bounded: counts reach SQL (LIMIT) and JSON columns
                ok = isinstance(value, int) and not isinstance(value, bool) and value in _INT64
            else:  # float: an int is fine and is stored as a float; never NaN or infinite
                ok = isinstance(value, int | float) and not isinstance(value, bool) and _finite(value)
                if ok:
                    object.__setattr__(self, f.name, float(value))
            if not ok:
                raise ValidationError(
                    f"policy.{self.flat_name(f.name)} must be {_KIND_NAMES[str(f.type)]}, got {reprlib.repr(value)}",
                    field=f"policy.{self.flat_name(f.name)}",
                )
        for ok, name, rule in self.rules():
            if not ok:
                raise ValidationError(f"policy.{name} {rule}", field=f"policy.{name}")
        for name, choices in self.choices().items():
            if getattr(self, self.FLAT_NAMES.get(name, name)) not in choices:
                raise ValidationError(
                    f"policy.{name} must be one of {', '.join(choices)}; got "
                    f"{getattr(self, self.FLAT_NAMES.get(name, name))!r}",
                    field=f"policy.{name}",
                )

    @classmethod
    def flat_name(cls, field_name: str) -> str:
        return next((flat for flat, name in cls.FLAT_NAMES.items() if name == field_name), field_name)

    @classmethod
    def flat_fields(cls) -> dict[str, str]:
        """flat name -> field name, for every field of the section."""
        return {cls.flat_name(f.name): f.name for f in fields(cls)}  # type: ignore[arg-type]

    def rules(self) -> list[tuple[bool, str, str]]:
        """(holds, flat name, what the rule says) for each range check."""
        return []

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {}


@dataclass(frozen=True)
class TriggerPolicy(_Section):
    """When a retrain starts (besides on demand)."""

    retrain_every: int = 200  # new training events that trigger a retrain (a generative model's default: 100)
    retrain_retries: int = 1  # a retrain whose worker vanished (lease expired) runs again this many times
    cooldown_seconds: float = 300.0  # minimum time between automatic retrains
    retrain_schedule: str = ""  # cron expression (UTC), e.g. "0 3 * * *"; empty: no scheduled retrain
    retrain_on_drift: bool = False  # a drift check that alarms queues a retrain
    retrain_on_accuracy_drop: bool = True  # the online-accuracy alarm queues a retrain
    # alarm (and queue a retrain) when the champion's online mean rating is shown below this
    # (its 95% interval's upper end, from 30 ratings), e.g. 3.5; 0: off
    min_mean_rating: float = 0.0

    def rules(self) -> list[tuple[bool, str, str]]:
        check_schedule(self.retrain_schedule)
        return [
            (
                self.min_mean_rating == 0 or 1 < self.min_mean_rating <= 5,
                "min_mean_rating",
                "must be 0 (off) or in (1, 5]",
            ),
            (self.retrain_every >= 1, "retrain_every", "must be >= 1"),
            (0 <= self.retrain_retries <= 10, "retrain_retries", "must be in [0, 10]"),
            (self.cooldown_seconds >= 0, "cooldown_seconds", "must be >= 0"),
        ]


@dataclass(frozen=True)
class CurationPolicy(_Section):
    """What a snapshot holds and how much each example weighs."""

    min_train_examples: int = 50
    feedback_weight: float = 1.0  # training weight of a feedback-derived example (a bootstrap one weighs 1)
    dedup_threshold: float = 0.85  # Jaccard (character 5-grams) at which two texts are near duplicates
    max_subject_share: float = 1.0  # most of a snapshot one subject may contribute (1: no cap)
    conflict_resolution: str = "dawid_skene"  # several voters on one item: "dawid_skene" (trust-weighted) or "latest"
    noise_filter: str = "off"  # likely mislabelled feedback (cleanlab): "off", "down_weight" or "hold" (weight 0)
    noise_folds: int = 5  # cross-validation folds of the noise filter: this many extra fits per retrain
    recency_half_life: int = 0  # feedback examples: weight halves every this many newer ones (0: no decay)
    pii_scrub: str = "email,phone,card,iban,ip,name"  # personal data replaced in stored text ("" keeps text as sent)
    # Synthetic training rows (``curation.augment``) for a class with fewer real training rows
    # than this (0: off); never in an evaluation set.
    augment_min_examples: int = 0
    augment_method: str = "eda"  # "eda" (one of the three per row), "swap", "delete" or "insert"
    augment_seed: int = 0  # the same snapshot rows and seed give the same synthetic rows

    def rules(self) -> list[tuple[bool, str, str]]:
        unknown = [k for k in (part.strip() for part in self.pii_scrub.split(",")) if k and k not in PII_KINDS]
        if unknown:
            raise ValidationError(
                f"policy.pii_scrub names unknown kind(s) {unknown}; known: {', '.join(PII_KINDS)} (empty: off)",
                field="policy.pii_scrub",
            )
        return [
            (self.min_train_examples >= 2, "min_train_examples", "must be >= 2"),
            (0 < self.feedback_weight <= 1000, "feedback_weight", "must be in (0, 1000]"),
            (0.5 <= self.dedup_threshold <= 1, "dedup_threshold", "must be in [0.5, 1]"),
            (0 < self.max_subject_share <= 1, "max_subject_share", "must be in (0, 1] (1: no cap)"),
            (2 <= self.noise_folds <= 10, "noise_folds", "must be in [2, 10]"),
            (self.recency_half_life >= 0, "recency_half_life", "must be >= 0 (0: no decay)"),
            (0 <= self.augment_min_examples <= 100_000, "augment_min_examples", "must be in [0, 100000] (0: off)"),
        ]

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {
            "conflict_resolution": ("dawid_skene", "latest"),
            "noise_filter": ("off", "down_weight", "hold"),
            "augment_method": AUGMENT_METHODS,
        }


@dataclass(frozen=True)
class GatePolicy(_Section):
    """How a candidate is judged against the champion on data it never trained on."""

    recent_blocks: int = 4  # forward-chaining blocks of the feedback the champion never saw
    recent_holdout_max: int = 2_000  # at most this many of the newest unseen events are judged on
    min_recent_examples: int = 30  # fewer than this: the recent check cannot pass
    golden_margin: float = 0.05  # non-inferiority margin on the golden set (accuracy, 0.05 = 5 points)
    # Test the golden set's texts against the recent feedback's (a domain classifier); when the
    # traffic is shown to have left the golden set, a refresh's golden checks are reported, not required
    golden_traffic_check: bool = True
    alpha: float = 0.05  # significance level of the paired tests
    min_recent_gain: float = 0.0  # required point gain on the recent holdout (not-worse: 0 is no requirement)
    # The recent check's test (``evaluation.gate``): "superiority" (shown better), "not-worse" (not
    # shown worse) or "refresh" (not-worse for the champion's family and parameters refitted on
    # newer data, superiority for any other change)
    recent_test: str = "refresh"
    # Golden set, non-inferiority of the other metrics (paired bootstrap, same confidence as accuracy):
    golden_f1_margin: float = 0.05  # macro-F1 may not be shown lower by more than this
    golden_auc_margin: float = 0.05  # ROC AUC likewise
    golden_ece_margin: float = 0.05  # expected calibration error may not be shown higher by more than this
    # Slices of the recent feedback (metadata fields, comma-separated, e.g. "domain,language"):
    slice_fields: str = ""
    slice_margin: float = 0.05  # a slice must not be significantly worse by more than this
    min_slice_examples: int = 50  # smaller slices are reported, not judged
    # Fairness (evaluation.fairness): metadata fields whose groups are compared, comma-separated, e.g. "region":
    fairness_fields: str = ""
    fairness_margin: float = 1.0  # a candidate may not be shown to widen the largest gap by more (1: not checked)
    fairness_min_group: int = 30  # rows a group (or its true label) needs for an interval and a place in the gaps
    fairness_window: int = 2_000  # newest feedback events behind GET /fairness
    auto_promote: bool = True  # a candidate that passes goes to traffic (per the rollout section)
    # Generative models, on the held-out part of their training sets (evaluation.generative_gate):
    min_preference_pairs: int = 20  # fewer held-out preference pairs: the preference check cannot pass
    # The margin a pair's preference accuracy judges: "summed" (log p(chosen) - log p(rejected) over
    # each answer's tokens) or "per-token" (each answer's mean log-probability: not dominated by
    # length); the other is reported beside it
    preference_margin: str = "summed"
    # What the preference check judges on that margin: "accuracy" (is each pair ranked right,
    # candidate against champion, McNemar) or "shift" (did the candidate move each pair's margin
    # toward the chosen answer, against the champion's, sign test); the other is reported
    preference_test: str = "accuracy"
    # False: the preference check is reported, not judged, and the judge decides in its place
    # (judge_required, with a trusted judge): for models whose held-out pairs are their own
    # samples, whose likelihood margins can miss what users see in sampled answers (README)
    preference_required: bool = True
    nll_margin: float = 0.05  # held-out NLL per token of good answers may not be shown higher by this (nats)
    judge_prompts: int = 16  # held-out prompts both versions answer for the judge to score (0: no judge)
    judge_required: bool = False  # the judge must show the candidate better (else it is only reported)
    judge_max_new_tokens: int = 48  # each version's answer to a judged prompt is at most this long
    # Answers of each version per judged prompt: 1, its greedy answer; more, that many sampled at
    # judge_temperature with the same seeds for both versions (what users are served when the
    # model samples; a few prompts x several samples give the paired test its power)
    judge_samples: int = 1
    judge_temperature: float = 0.9

    @property
    def slices(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.slice_fields.split(",")) if self.slice_fields.strip() else ()

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {
            "recent_test": ("refresh", "superiority", "not-worse"),
            "preference_margin": ("summed", "per-token"),
            "preference_test": ("accuracy", "shift"),
        }

    @property
    def fairness(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.fairness_fields.split(",")) if self.fairness_fields.strip() else ()

    @property
    def confidence(self) -> float:
        """The confidence of the gate's two-sided intervals (their one-sided ends are tests at ``alpha``)."""
        return 1 - 2 * self.alpha

    def rules(self) -> list[tuple[bool, str, str]]:
        if any(not f.strip() for f in self.slices) and self.slice_fields.strip():
            raise ValidationError("policy.slice_fields must be comma-separated names", field="policy.slice_fields")
        return [
            (2 <= self.recent_blocks <= 20, "recent_blocks", "must be in [2, 20]"),
            (self.recent_holdout_max >= 1, "recent_holdout_max", "must be >= 1"),
            (self.min_recent_examples >= 1, "min_recent_examples", "must be >= 1"),
            (0 <= self.golden_margin < 1, "golden_margin", "must be in [0, 1)"),
            (0 < self.alpha < 1, "alpha", "must be in (0, 1)"),
            (-1 < self.min_recent_gain < 1, "min_recent_gain", "must be in (-1, 1)"),
            (0 <= self.golden_f1_margin <= 1, "golden_f1_margin", "must be in [0, 1] (1: not checked)"),
            (0 <= self.golden_auc_margin <= 1, "golden_auc_margin", "must be in [0, 1] (1: not checked)"),
            (0 <= self.golden_ece_margin <= 1, "golden_ece_margin", "must be in [0, 1] (1: not checked)"),
            (0 <= self.slice_margin < 1, "slice_margin", "must be in [0, 1)"),
            (self.min_slice_examples >= 1, "min_slice_examples", "must be >= 1"),
            (all(self.fairness), "fairness_fields", "must be comma-separated names"),
            (0 <= self.fairness_margin <= 1, "fairness_margin", "must be in [0, 1] (1: not checked)"),
            (self.fairness_min_group >= 2, "fairness_min_group", "must be >= 2"),
            (1 <= self.fairness_window <= 100_000, "fairness_window", "must be in [1, 100000]"),
            (self.min_preference_pairs >= 1, "min_preference_pairs", "must be >= 1"),
            (0 <= self.nll_margin <= 10, "nll_margin", "must be in [0, 10] (nats per token)"),
            (0 <= self.judge_prompts <= 10_000, "judge_prompts", "must be in [0, 10000] (0: no judge)"),
            (1 <= self.judge_max_new_tokens <= 4_096, "judge_max_new_tokens", "must be in [1, 4096]"),
            (1 <= self.judge_samples <= 64, "judge_samples", "must be in [1, 64] (1: the greedy answer)"),
            (0 < self.judge_temperature <= 5, "judge_temperature", "must be in (0, 5]"),
            (
                self.preference_required or self.judge_required,
                "preference_required",
                "false needs judge_required=true: one of them must show the candidate better",
            ),
            (
                self.judge_prompts > 0 or not self.judge_required,
                "judge_required",
                "needs judge_prompts >= 1 (the judge scores no answers with judge_prompts=0)",
            ),
        ]


@dataclass(frozen=True)
class RolloutPolicy(_Section):
    """How a version that passed the gate reaches traffic (swap | canary | shadow | ab)."""

    FLAT_NAMES: ClassVar[dict[str, str]] = {"rollout": "strategy"}

    strategy: str = "swap"
    canary_steps: str = "5,25,50"  # percent of traffic on the challenger, step by step
    canary_step_seconds: float = 300.0  # at least this long on a step before the next
    canary_min_feedback: int = 100  # per arm, before the live test may decide anything
    canary_margin: float = 0.02  # non-inferiority margin of the live test (accuracy, 0.02 = 2 points)
    canary_require: str = "no_harm"  # promote at the end of the schedule unless harm shows; or
    # "non_inferior" (shown not worse than the margin) or "superior" (shown better)
    canary_max_seconds: float = 86_400.0  # an experiment still undecided after this ends ...
    canary_max_feedback: int = 20_000  # ... or after this much feedback per arm ...
    canary_on_inconclusive: str = "rollback"  # ... this way (or "promote")
    shadow_share: float = 1.0  # share of traffic copied to a shadow
    guardrail_max_error_rate: float = 0.01  # challenger answers that failed (served by the champion instead)
    guardrail_latency_ratio: float = 3.0  # challenger p99 latency above this multiple of the champion's
    guardrail_max_label_shift: float = 0.25  # total variation between the arms' predicted-label distributions
    guardrail_max_length_shift: float = 0.5  # relative change of the median answer size (generation: characters)
    guardrail_min_predictions: int = 200  # per arm, before latency, label- and length-shift guardrails may trip

    @property
    def steps(self) -> tuple[float, ...]:
        return parse_steps(self.canary_steps)

    def rules(self) -> list[tuple[bool, str, str]]:
        parse_steps(self.canary_steps)
        return [
            (self.canary_step_seconds >= 0, "canary_step_seconds", "must be >= 0"),
            (self.canary_min_feedback >= 10, "canary_min_feedback", "must be >= 10"),
            (0 <= self.canary_margin < 1, "canary_margin", "must be in [0, 1)"),
            (self.canary_max_seconds > 0, "canary_max_seconds", "must be > 0"),
            (
                self.canary_max_feedback >= self.canary_min_feedback,
                "canary_max_feedback",
                "must be >= canary_min_feedback",
            ),
            (0 < self.shadow_share <= 1, "shadow_share", "must be in (0, 1]"),
            (0 <= self.guardrail_max_error_rate <= 1, "guardrail_max_error_rate", "must be in [0, 1]"),
            (self.guardrail_latency_ratio >= 1, "guardrail_latency_ratio", "must be >= 1"),
            (0 < self.guardrail_max_label_shift <= 1, "guardrail_max_label_shift", "must be in (0, 1]"),
            (self.guardrail_max_length_shift > 0, "guardrail_max_length_shift", "must be > 0"),
            (self.guardrail_min_predictions >= 1, "guardrail_min_predictions", "must be >= 1"),
        ]

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {
            "rollout": STRATEGIES,
            "canary_require": ("no_harm", "non_inferior", "superior"),
            "canary_on_inconclusive": ("rollback", "promote"),
        }


@dataclass(frozen=True)
class MonitoringPolicy(_Section):
    """Drift checks of the serving version and its online accuracy."""

    drift_check_seconds: float = 300.0  # how often the worker checks the champion's inputs and outputs (0: never)
    drift_check_answers: int = 200  # and after this many new answers of the champion (0: only on the timer)
    drift_window: int = 1_000  # newest predictions a drift check reads
    accuracy_window: int = 200  # newest judged predictions behind the online accuracy
    accuracy_drop: float = 0.05  # alarm when online accuracy is shown this far below the golden accuracy

    def rules(self) -> list[tuple[bool, str, str]]:
        return [
            (self.drift_check_seconds >= 0, "drift_check_seconds", "must be >= 0 (0: never)"),
            (self.drift_check_answers >= 0, "drift_check_answers", "must be >= 0 (0: only on the timer)"),
            (self.drift_window >= 10, "drift_window", "must be >= 10"),
            (self.accuracy_window >= 10, "accuracy_window", "must be >= 10"),
            (0 < self.accuracy_drop < 1, "accuracy_drop", "must be in (0, 1)"),
        ]


BUILTIN_SIGNALS = ("copied", "regenerated", "dwell_ms", "completed", "abandoned")


@dataclass(frozen=True)
class GenerationPolicy(_Section):
    """A generative model's limits and how its feedback becomes training data."""

    max_prompt_chars: int = 8_000  # a prompt (all turns of a conversation) longer than this is refused (422)
    max_new_tokens: int = 256  # the most tokens one answer may ask for (422 beyond)
    sft_min_rating: int = 4  # an answer rated at least this becomes an SFT row (and a desirable KTO row)
    min_preference_strength: float = 0.5  # weaker explicit preferences are not training pairs
    rating_pair_gap: int = 2  # two answers to one prompt rated this far apart make a preference pair
    max_response_chars: int = 8_000  # longer responses are left out of training sets (counted)
    held_out_fraction: float = 0.2  # the newest share of the answers (all sets), never trained on (the gate's)
    # implicit signals the model takes beside the built-in ones (copied, regenerated, dwell_ms,
    # completed, abandoned), comma-separated
    implicit_signals: str = ""
    # signal=outcome pairs that make an implicit signal weak training signal, e.g.
    # "copied=good,regenerated=bad"; empty: implicit signals are stored and shown only
    implicit_outcomes: str = ""

    def signals(self) -> tuple[str, ...]:
        declared = tuple(s.strip() for s in self.implicit_signals.split(",") if s.strip())
        return BUILTIN_SIGNALS + tuple(s for s in declared if s not in BUILTIN_SIGNALS)

    def signal_outcomes(self) -> dict[str, bool]:
        """signal -> good (True) or bad (False), from ``implicit_outcomes``."""
        out: dict[str, bool] = {}
        for part in self.implicit_outcomes.split(","):
            if part.strip():
                name, _, word = part.partition("=")
                out[name.strip()] = word.strip() == "good"
        return out

    def rules(self) -> list[tuple[bool, str, str]]:
        outcomes_ok = all(
            "=" in part and part.partition("=")[2].strip() in ("good", "bad") and part.partition("=")[0].strip()
            for part in self.implicit_outcomes.split(",")
            if part.strip()
        )
        return [
            (self.max_prompt_chars >= 1, "max_prompt_chars", "must be >= 1"),
            (1 <= self.max_new_tokens <= 32_768, "max_new_tokens", "must be in [1, 32768]"),
            (1 <= self.sft_min_rating <= 5, "sft_min_rating", "must be in [1, 5]"),
            (0 <= self.min_preference_strength <= 1, "min_preference_strength", "must be in [0, 1]"),
            (1 <= self.rating_pair_gap <= 4, "rating_pair_gap", "must be in [1, 4]"),
            (self.max_response_chars >= 1, "max_response_chars", "must be >= 1"),
            (0 < self.held_out_fraction < 1, "held_out_fraction", "must be in (0, 1)"),
            (outcomes_ok, "implicit_outcomes", "must be signal=good|bad pairs, comma-separated"),
            (
                set(self.signal_outcomes()) <= set(self.signals()),
                "implicit_outcomes",
                "names a signal that is neither built in nor in implicit_signals",
            ),
        ]


@dataclass(frozen=True)
class AdapterTrainingPolicy(_Section):
    """How a generative model's retrain fits its LoRA adapter: the stages (SFT on good answers,
    then DPO on preference pairs, or KTO on rated answers when there are too few pairs), their
    settings, and a time budget. A stage with fewer rows than its minimum is skipped; a retrain
    with no stage left has too little data and changes nothing. Defaults fit SmolLM2-135M on
    CPU in a few minutes (../shared/LLM.md: LoRA needs learning rates near 1e-3; DPO at 2e-3
    over-optimised, 5e-4 kept text sensible)."""

    lora_rank: int = 8
    lora_alpha: int = 16
    sft_steps: int = 30  # most optimiser steps of the SFT stage (0: no SFT)
    sft_learning_rate: float = 2e-3
    min_sft_rows: int = 8  # fewer SFT rows (good answers, corrections, the model's own rows): no SFT stage
    dpo_steps: int = 30  # most steps of the DPO stage (0: no DPO)
    dpo_learning_rate: float = 5e-4
    dpo_beta: float = 0.1  # how far DPO may move from the SFT model
    # Weight of an SFT term (NLL of the chosen answers) added to the DPO loss (TRL's
    # loss_type ["sigmoid", "sft"], as RPO); 0: DPO alone. Keeps DPO from lowering the
    # likelihood of good answers, which the gate's NLL check would reject
    dpo_sft_weight: float = 0.0
    min_pairs: int = 16  # fewer preference pairs: no DPO stage (KTO instead, given enough rated answers)
    kto_steps: int = 30  # most steps of the KTO stage (0: no KTO)
    kto_learning_rate: float = 5e-4
    kto_beta: float = 0.1
    min_kto_rows: int = 16  # fewer rated answers (with both good and bad ones): no KTO stage
    train_batch_size: int = 4
    # Most passes of a stage over its rows (0: no cap): a stage's steps are at most
    # ceil(max_epochs * rows / train_batch_size), so a retrain on few rows does not repeat
    # them until it has learnt them by heart (24 SFT steps on 13 rows, 7 passes, raised the
    # held-out good answers' NLL 0.87 nats a token; on 41 rows, 2.3 passes, 0.11)
    max_epochs: float = 0.0
    train_max_length: int = 512  # tokens of prompt and answer; longer rows are cut
    train_budget_seconds: float = 1_800.0  # the stage running then stops after its step; later ones are skipped

    def steps(self, steps: int, rows: int) -> int:
        """A stage's steps on ``rows`` rows: ``steps``, at most ``max_epochs`` passes over them."""
        if self.max_epochs <= 0:
            return steps
        return min(steps, max(1, math.ceil(self.max_epochs * rows / self.train_batch_size)))

    def rules(self) -> list[tuple[bool, str, str]]:
        return [
            (1 <= self.lora_rank <= 256, "lora_rank", "must be in [1, 256]"),
            (1 <= self.lora_alpha <= 1024, "lora_alpha", "must be in [1, 1024]"),
            (0 <= self.sft_steps <= 100_000, "sft_steps", "must be in [0, 100000]"),
            (0 <= self.dpo_steps <= 100_000, "dpo_steps", "must be in [0, 100000]"),
            (0 <= self.kto_steps <= 100_000, "kto_steps", "must be in [0, 100000]"),
            (0 < self.sft_learning_rate <= 1, "sft_learning_rate", "must be in (0, 1]"),
            (0 < self.dpo_learning_rate <= 1, "dpo_learning_rate", "must be in (0, 1]"),
            (0 < self.kto_learning_rate <= 1, "kto_learning_rate", "must be in (0, 1]"),
            (0 < self.dpo_beta <= 10, "dpo_beta", "must be in (0, 10]"),
            (0 <= self.dpo_sft_weight <= 100, "dpo_sft_weight", "must be in [0, 100] (0: DPO alone)"),
            (0 < self.kto_beta <= 10, "kto_beta", "must be in (0, 10]"),
            (self.min_sft_rows >= 1, "min_sft_rows", "must be >= 1"),
            (self.min_pairs >= 1, "min_pairs", "must be >= 1"),
            (self.min_kto_rows >= 2, "min_kto_rows", "must be >= 2"),
            (1 <= self.train_batch_size <= 256, "train_batch_size", "must be in [1, 256]"),
            (0 <= self.max_epochs <= 1_000, "max_epochs", "must be in [0, 1000] (0: no cap)"),
            (16 <= self.train_max_length <= 32_768, "train_max_length", "must be in [16, 32768]"),
            (self.train_budget_seconds >= 0, "train_budget_seconds", "must be >= 0 (0: no budget)"),
        ]


def family_list(value: str) -> tuple[str, ...]:
    """Family keys from a comma-separated setting, in order, each once."""
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


@dataclass(frozen=True)
class SelectionPolicy(_Section):
    """Which candidates compete in a classifier's retrain. Each is scored by forward chaining
    over the training data that comes before the gate's evidence (never on the recent blocks
    or the golden set), and only the one chosen meets the gate, so choosing among many does
    not inflate the gate's error rate. Empty lists and a zero budget: the model's own family
    with its own parameters, as before (no selection fits)."""

    candidate_families: str = ""  # families that compete with the model's own, comma-separated
    search_families: str = ""  # families (the model's own or candidates) whose parameters Optuna searches
    search_budget_seconds: float = 0.0  # the retrain's search time, shared by the searched families
    search_trials: int = 30  # most Optuna trials per searched family in a retrain
    selection_blocks: int = 4  # forward-chaining blocks of the selection (a fold per block after the first)
    selection_max: int = 2_000  # newest training examples before the gate's evidence the folds judge on

    @property
    def candidates(self) -> tuple[str, ...]:
        return family_list(self.candidate_families)

    @property
    def searched(self) -> tuple[str, ...]:
        return family_list(self.search_families)

    def rules(self) -> list[tuple[bool, str, str]]:
        return [
            (self.search_budget_seconds >= 0, "search_budget_seconds", "must be >= 0 (0: no search)"),
            (
                self.search_budget_seconds > 0 or not self.searched,
                "search_families",
                "needs search_budget_seconds > 0 (the search's time)",
            ),
            (1 <= self.search_trials <= 10_000, "search_trials", "must be in [1, 10000]"),
            (2 <= self.selection_blocks <= 20, "selection_blocks", "must be in [2, 20]"),
            (self.selection_max >= 2, "selection_max", "must be >= 2"),
        ]


@dataclass(frozen=True)
class ValuePolicy(_Section):
    """Prices for the report of what each retrain cost and what it bought (``learnloop value``).
    All zero: the report counts in answers and CPU hours, not money."""

    value_per_correct_answer: float = 0.0  # one more correct (classification) or good answer
    value_per_rating_point: float = 0.0  # generation: one rating point more on one answer
    cost_per_cpu_hour: float = 0.0
    cost_per_gpu_hour: float = 0.0
    value_min_judged: int = 30  # judged answers on each side of a promotion before a gain is claimed

    def rules(self) -> list[tuple[bool, str, str]]:
        return [
            (self.value_per_correct_answer >= 0, "value_per_correct_answer", "must be >= 0"),
            (self.value_per_rating_point >= 0, "value_per_rating_point", "must be >= 0"),
            (self.cost_per_cpu_hour >= 0, "cost_per_cpu_hour", "must be >= 0"),
            (self.cost_per_gpu_hour >= 0, "cost_per_gpu_hour", "must be >= 0"),
            (self.value_min_judged >= 2, "value_min_judged", "must be >= 2"),
        ]

    @property
    def priced(self) -> bool:
        return any((self.value_per_correct_answer, self.value_per_rating_point, self.cost_per_cpu_hour,
                    self.cost_per_gpu_hour))  # fmt: skip


@dataclass(frozen=True)
class RetentionPolicy(_Section):
    """What is kept of versions that no longer serve (``learnloop.retention``). The champion,
    every serving arm, the version a rollback goes to and versions in flight are never touched."""

    drop_caches: bool = True  # drop re-creatable caches (a tfidf-logreg version's term counts) once it no longer serves
    remove_artifacts: bool = True  # remove rejected and retired versions' artifacts beyond the limits below
    keep_rejected: int = 10  # newest rejected (and failed) versions whose artifacts are kept
    keep_rejected_days: float = 30.0  # ... and any rejected for less than this
    keep_retired: int = 10  # newest retired versions whose artifacts are kept
    keep_retired_days: float = 90.0  # ... and any retired for less than this (since its retirement)

    def rules(self) -> list[tuple[bool, str, str]]:
        return [
            (0 <= self.keep_rejected <= 100_000, "keep_rejected", "must be in [0, 100000]"),
            (0 <= self.keep_retired <= 100_000, "keep_retired", "must be in [0, 100000]"),
            (0 <= self.keep_rejected_days <= 36_500, "keep_rejected_days", "must be in [0, 36500]"),
            (0 <= self.keep_retired_days <= 36_500, "keep_retired_days", "must be in [0, 36500]"),
        ]


_SECTIONS: dict[str, type[_Section]] = {
    "triggers": TriggerPolicy,
    "curation": CurationPolicy,
    "gate": GatePolicy,
    "rollout": RolloutPolicy,
    "monitoring": MonitoringPolicy,
    "generation": GenerationPolicy,
    "adapters": AdapterTrainingPolicy,
    "selection": SelectionPolicy,
    "value": ValuePolicy,
    "retention": RetentionPolicy,
}
# flat name -> (section, field)
_FLAT: dict[str, tuple[str, str]] = {
    flat: (section, name) for section, cls in _SECTIONS.items() for flat, name in cls.flat_fields().items()
}
# Every field a policy change may name (``PATCH .../policy``; its OpenAPI document lists them).
FIELD_NAMES: tuple[str, ...] = tuple(sorted(_FLAT))


@dataclass(frozen=True)
class Policy:
    """Per-model rules for retraining, judging and rolling out. Stored with the model."""

    triggers: TriggerPolicy = field(default_factory=TriggerPolicy)
    curation: CurationPolicy = field(default_factory=CurationPolicy)
    gate: GatePolicy = field(default_factory=GatePolicy)
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    monitoring: MonitoringPolicy = field(default_factory=MonitoringPolicy)
    generation: GenerationPolicy = field(default_factory=GenerationPolicy)
    adapters: AdapterTrainingPolicy = field(default_factory=AdapterTrainingPolicy)
    selection: SelectionPolicy = field(default_factory=SelectionPolicy)
    value: ValuePolicy = field(default_factory=ValuePolicy)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    @classmethod
    def of(cls, **settings: Any) -> Policy:
        """The default policy with some settings changed, by flat name: ``Policy.of(alpha=0.01)``."""
        return cls().updated(settings)

    @staticmethod
    def names() -> list[str]:
        """Every setting's flat name."""
        return list(_FLAT)

    def _items(self) -> Iterator[tuple[str, str, str, Any]]:
        for flat, (section, name) in _FLAT.items():
            yield flat, section, name, getattr(getattr(self, section), name)

    def to_dict(self) -> dict[str, Any]:
        """Flat: the names users set and read."""
        return {flat: value for flat, _, _, value in self._items()}

    def to_sections(self) -> dict[str, dict[str, Any]]:
        """By section: how a policy is stored."""
        return {name: asdict(getattr(self, name)) for name in _SECTIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """A stored policy (by section) or settings by flat name (a policy stored by an earlier
        learnloop, or what a user sends)."""
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SECTIONS and isinstance(value, dict):
                flat_of = {name: flat_name for flat_name, name in _SECTIONS[key].flat_fields().items()}
                for name, inner in value.items():
                    flat[flat_of.get(str(name), str(name))] = inner
            elif key not in _RETIRED:
                flat[key] = value
        unknown = sorted(set(flat) - set(_FLAT))
        if unknown:
            raise ValidationError(
                f"unknown policy field(s): {', '.join(unknown)}; known: {', '.join(sorted(_FLAT))}",
                field="policy",
            )
        by_section: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, value in flat.items():
            section, name = _FLAT[key]
            by_section[section][name] = value
        return cls(**{name: _SECTIONS[name](**values) for name, values in by_section.items()})  # type: ignore[arg-type]

    def updated(self, changes: dict[str, Any]) -> Policy:
        """This policy with ``changes`` (by flat name) applied, checked."""
        unknown = sorted(set(changes) - set(_FLAT))
        if unknown:
            raise ValidationError(
                f"unknown policy field(s): {', '.join(unknown)}; known: {', '.join(sorted(_FLAT))}",
                field="policy",
            )
        sections: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            section, name = _FLAT[key]
            sections.setdefault(section, {})[name] = value
        return replace(self, **{s: replace(getattr(self, s), **v) for s, v in sections.items()})
