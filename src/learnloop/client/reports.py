"""What the client's analytics calls return: fairness, explanations, error patterns and the
value of retrains, as typed, read-only views of the server's JSON answers.

As in ``learnloop.client.results`` (whose conventions these follow), each mirrors a response
schema of the HTTP API, and ``tests/e2e/test_client_http.py`` checks every field against the
server's OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from learnloop.client.results import _Result

# -- fairness (GET /v1/models/{m}/fairness) ---------------------------------------------------


class Estimate(_Result):
    """A rate with its sample size and bootstrap interval (``EstimatePublic``); ``meaningful``:
    ``n`` reaches the policy's ``fairness_min_group``."""

    value: float | None
    n: int
    low: float | None
    high: float | None
    meaningful: bool


class FairnessGroup(_Result):
    """One group's figures (``GroupPublic``): rates per label."""

    group: str
    n: int
    accuracy: Estimate
    selection_rate: dict[str, Estimate]
    true_positive_rate: dict[str, Estimate]


class FairnessGap(_Result):
    """The largest minus the smallest rate over the groups (``GapPublic``): ``metric`` is
    demographic_parity (selection rates) or equal_opportunity (true-positive rates)."""

    metric: str
    label: str
    value: float
    low: float | None
    high: float | None
    highest: str
    lowest: str
    groups: int


class FairnessField(_Result):
    """The groups of one metadata field and the gaps between them (``FieldPublic``)."""

    field: str
    n: int
    min_n: int
    confidence: float
    groups: list[FairnessGroup]
    gaps: list[FairnessGap]
    largest: FairnessGap | None


class VersionFairness(_Result):
    """One version's fairness on the rows it answered (``VersionFairnessPublic``)."""

    version: int
    created_at: datetime | None
    n: int
    first_at: datetime | None
    last_at: datetime | None
    fields: list[FairnessField]
    golden: list[FairnessField] = []  # on the golden set, where its rows carry the fields
    artifact_removed: bool = False  # the retention policy removed its artifact: no golden figures


class Fairness(_Result):
    """A classifier's fairness per version, newest first, on recent labelled feedback and, where
    its rows carry the fields, on the golden set (``FairnessPublic``)."""

    model: str
    fields: list[str]
    window: int
    labelled: int
    min_group: int
    confidence: float
    versions: list[VersionFairness]
    notes: list[str]
    golden: int = 0


# -- explanations ------------------------------------------------------------------------------


class TermContribution(_Result):
    """What one term of the text added to each label (``TermContributionPublic``)."""

    term: str
    value: float | None
    contributions: dict[str, float]


class Token(_Result):
    """A word of the text at ``start:end`` and what it added to the answered label (``TokenPublic``)."""

    start: int
    end: int
    text: str
    contribution: float


class Explanation(_Result):
    """Why a version answered a text what it did (``ExplanationPublic``): ``method`` linear
    (exact contributions to the logit) or occlusion."""

    model: str
    version: int
    family: str
    prediction_id: str | None
    served_label: str | None
    text: str
    method: str
    target: str
    label: str
    probabilities: dict[str, float]
    scores: dict[str, float] | None
    intercept: dict[str, float] | None
    terms: list[TermContribution]
    tokens: list[Token]
    truncated: bool


class TermWeight(_Result):
    term: str
    weight: float


class VersionWeights(_Result):
    """A linear version's strongest terms per label (``VersionWeightsPublic``)."""

    model: str
    version: int
    family: str
    terms: int
    top: dict[str, list[TermWeight]]


class WeightChange(_Result):
    """A term's weight in version ``a`` (``before``) and ``b`` (``after``); null: no such term."""

    term: str
    before: float | None
    after: float | None
    change: float


class LabelChanges(_Result):
    gained: list[WeightChange]
    lost: list[WeightChange]


class WeightsDiff(_Result):
    """Per label, the terms that gained and lost most weight from version ``a`` to ``b`` (``WeightsDiffPublic``)."""

    model: str
    a: int
    b: int
    new_terms: int
    dropped_terms: int
    labels: dict[str, LabelChanges]


# -- error patterns ----------------------------------------------------------------------------


class Excess(_Result):
    """Errors in a group against the rest (``ExcessPublic``): Fisher's exact test, q-values by
    Benjamini-Hochberg."""

    n: int
    errors: int
    error_rate: float
    rest_n: int
    rest_errors: int
    rest_error_rate: float
    p_value: float
    q_value: float
    significant: bool


class PatternExample(_Result):
    prediction_id: str
    text: str
    pair: str


class ErrorPattern(_Result):
    """A cluster of corrected answers: its terms, size, label pairs and examples (``ErrorPatternPublic``)."""

    terms: list[str]
    size: int
    pairs: list[tuple[str, int]]
    examples: list[PatternExample]
    region: Excess


class ErrorSlice(_Result):
    """A slice whose error rate is significantly above the rest's (``ErrorSlicePublic``)."""

    key: str
    kind: str
    test: Excess


class ErrorPatterns(_Result):
    """Where a model's answers keep being corrected (``ErrorPatternsPublic``)."""

    model: str
    version: int | None
    window: int
    judged: int
    disagreements: int
    k: int | None
    silhouette: float | None
    silhouettes: dict[int, float]
    patterns: list[ErrorPattern]
    slices: list[ErrorSlice]
    slices_tested: int
    seconds: float
    note: str


class ErrorPatternCheck(_Result):
    """A check: the analysis, and the data of each ``error_pattern`` event it wrote for a
    pattern not reported before (``ErrorPatternCheckPublic``)."""

    patterns: ErrorPatterns
    new: list[dict[str, Any]]


# -- the cost and value of retrains (GET /v1/models/{m}/retrains/value) ------------------------


class TrainingCost(_Result):
    """What a fit used (``TrainingCostPublic``)."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    scope: str
    memory_measure: str
    gpu_seconds: float | None
    gpu_peak_bytes: int | None


class OnlineGain(_Result):
    """The change in the online measure after a promotion, times the answers served (``OnlineGainPublic``)."""

    measure: str
    unit: str
    before_version: int
    before_n: int
    before_mean: float | None
    after_n: int
    after_mean: float | None
    served: int
    claimed: bool
    reason: str
    delta: float | None
    delta_ci: tuple[float, float] | None
    gain: float | None
    gain_ci: tuple[float, float] | None


class RetrainValue(_Result):
    """One retrain's cost, gain and return (``RetrainValuePublic``)."""

    version: int
    status: str
    created_at: datetime
    promoted_at: datetime | None
    cost: TrainingCost | None
    gain: OnlineGain | None
    verdict: str
    bought_nothing: bool
    cost_money: float
    value_money: float | None
    value_money_ci: tuple[float, float] | None
    return_money: float | None


class ValueReport(_Result):
    """What each retrain cost and bought, at the model's prices (``RetrainValueReport``)."""

    model: str
    measure: str
    unit: str
    priced: bool
    prices: dict[str, float]
    retrains: list[RetrainValue]
    totals: dict[str, Any]
