"""Response schemas of the error-pattern routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from learnloop.monitoring.patterns import ErrorPattern, ErrorSlice, Excess, ModelPatterns, Reported


class ExcessPublic(BaseModel):
    """Errors in a group against the rest of the judged answers: Fisher's exact test
    (one-sided, the group's error rate higher), p-values corrected with Benjamini-Hochberg."""

    n: int = Field(description="Judged answers in the group.")
    errors: int
    error_rate: float
    rest_n: int
    rest_errors: int
    rest_error_rate: float
    p_value: float
    q_value: float = Field(description="Benjamini-Hochberg adjusted p-value.")
    significant: bool = Field(description="q < 0.05 and the group's error rate above the rest's.")

    @classmethod
    def of(cls, e: Excess) -> ExcessPublic:
        return cls(
            n=e.n, errors=e.errors, error_rate=e.error_rate, rest_n=e.rest_n, rest_errors=e.rest_errors,
            rest_error_rate=e.rest_rate, p_value=e.p_value, q_value=e.q_value, significant=e.significant,
        )  # fmt: skip


class PatternExamplePublic(BaseModel):
    prediction_id: str
    text: str
    pair: str = Field(description="predicted -> corrected")


class ErrorPatternPublic(BaseModel):
    """A cluster of corrected answers."""

    terms: list[str] = Field(description="The words that set the cluster apart.")
    size: int = Field(description="Corrected answers in the cluster.")
    pairs: list[tuple[str, int]] = Field(description="The most frequent 'predicted -> corrected', with counts.")
    examples: list[PatternExamplePublic] = Field(description="The corrected texts nearest the cluster's centre.")
    region: ExcessPublic = Field(description="Every judged answer nearest this cluster: its errors against the rest.")

    @classmethod
    def of(cls, p: ErrorPattern) -> ErrorPatternPublic:
        return cls(
            terms=p.terms,
            size=p.size,
            pairs=p.pairs,
            examples=[
                PatternExamplePublic(prediction_id=e.prediction_id, text=e.text, pair=e.pair) for e in p.examples
            ],
            region=ExcessPublic.of(p.region),
        )


class ErrorSlicePublic(BaseModel):
    key: str = Field(description="predicted=LABEL, metadata.FIELD=VALUE, length=A-B words or term=WORD")
    kind: str
    test: ExcessPublic

    @classmethod
    def of(cls, s: ErrorSlice) -> ErrorSlicePublic:
        return cls(key=s.key, kind=s.kind, test=ExcessPublic.of(s.test))


class ErrorPatternsPublic(BaseModel):
    """Where a model's answers keep being corrected: clusters of the corrected texts and the
    slices whose error rate is significantly above the rest's."""

    model: str
    version: int | None = Field(description="The version analysed; null: every version's answers.")
    window: int = Field(description="Newest judged answers read, at most.")
    judged: int = Field(description="Judged answers analysed (one per prediction).")
    disagreements: int = Field(description="Of them, answers users said were wrong.")
    k: int | None = Field(description="Clusters, chosen by the best mean silhouette; null: too few to cluster.")
    silhouette: float | None
    silhouettes: dict[int, float] = Field(description="Mean silhouette of every k tried.")
    patterns: list[ErrorPatternPublic] = Field(description="Largest first.")
    slices: list[ErrorSlicePublic] = Field(description="Significant slices only, most significant first.")
    slices_tested: int
    seconds: float
    note: str

    @classmethod
    def of(cls, found: ModelPatterns) -> ErrorPatternsPublic:
        a = found.analysis
        return cls(
            model=found.model, version=found.version, window=found.window, judged=a.judged,
            disagreements=a.disagreements, k=a.k, silhouette=a.silhouette, silhouettes=a.silhouettes,
            patterns=[ErrorPatternPublic.of(p) for p in a.patterns], slices=[ErrorSlicePublic.of(s) for s in a.slices],
            slices_tested=a.slices_tested, seconds=a.seconds, note=a.note,
        )  # fmt: skip


class ErrorPatternCheckPublic(BaseModel):
    """A check: the analysis, and the patterns it reported as new (one ``error_pattern`` event each)."""

    patterns: ErrorPatternsPublic
    new: list[dict[str, Any]] = Field(description="The data of each error_pattern event written now.")

    @classmethod
    def of(cls, reported: Reported) -> ErrorPatternCheckPublic:
        return cls(patterns=ErrorPatternsPublic.of(reported.patterns), new=reported.new)
