"""Request and response schemas of the explanation routes (``routes/explanations.py``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from learnloop.api.schemas import DB_INT_MAX, _Strict
from learnloop.explanations import ExplainedAnswer, VersionWeights, WeightsDiff
from learnloop.families.explanation import WeightChange


class ExplainRequest(_Strict):
    text: str = Field(min_length=1, description="The text to explain (it is not logged).")
    version: int | None = Field(
        default=None, ge=1, le=DB_INT_MAX, description="The version that answers it; the champion if left out."
    )


class TermContributionPublic(BaseModel):
    term: str = Field(description="A term of the model's features: a word, a word n-gram or a character n-gram.")
    value: float | None = Field(description="The term's feature value in this text (linear); null for occlusion.")
    contributions: dict[str, float] = Field(description="What the term added to each label's score or probability.")


class TokenPublic(BaseModel):
    start: int = Field(description="Character offset of the word in the text.")
    end: int
    text: str
    contribution: float = Field(description="What the word added to the answered label (its terms' shares).")


class ExplanationPublic(BaseModel):
    model: str
    version: int = Field(description="The version that answered (a logged answer's own version).")
    family: str
    prediction_id: str | None = Field(description="The logged answer explained; null for a text sent to explain.")
    served_label: str | None = Field(description="What the logged answer said when it was served.")
    text: str
    method: str = Field(description="linear (exact: contributions to the logit) or occlusion (leave one word out).")
    target: str = Field(description="What contributions add up to: logit (a label's score) or probability.")
    label: str = Field(description="The answered label.")
    probabilities: dict[str, float]
    scores: dict[str, float] | None = Field(description="linear: each label's logit, intercept plus terms.")
    intercept: dict[str, float] | None = Field(description="linear: each label's score of a text with no known term.")
    terms: list[TermContributionPublic] = Field(description="Every term of the text, strongest first.")
    tokens: list[TokenPublic] = Field(description="The text's words in order, for highlighting.")
    truncated: bool = Field(description="occlusion: only the first words were taken out one by one.")

    @classmethod
    def of(cls, e: ExplainedAnswer) -> ExplanationPublic:
        x = e.explanation
        return cls(
            model=e.model,
            version=e.version,
            family=e.family,
            prediction_id=e.prediction_id,
            served_label=e.served_label,
            text=e.text,
            method=x.method,
            target=x.target,
            label=x.label,
            probabilities=x.probabilities,
            scores=x.scores,
            intercept=x.intercept,
            terms=[TermContributionPublic(term=t.term, value=t.value, contributions=t.contributions) for t in x.terms],
            tokens=[TokenPublic(start=t.start, end=t.end, text=t.text, contribution=t.contribution) for t in x.tokens],
            truncated=x.truncated,
        )


class TermWeightPublic(BaseModel):
    term: str
    weight: float = Field(description="The coefficient on the term's feature; positive pushes towards the label.")


class VersionWeightsPublic(BaseModel):
    model: str
    version: int
    family: str
    terms: int = Field(description="Terms the version weighs.")
    top: dict[str, list[TermWeightPublic]] = Field(description="Per label, the terms that push hardest towards it.")

    @classmethod
    def of(cls, w: VersionWeights) -> VersionWeightsPublic:
        return cls(
            model=w.model,
            version=w.version,
            family=w.family,
            terms=w.terms,
            top={
                label: [TermWeightPublic(term=t.term, weight=t.weight) for t in terms] for label, terms in w.top.items()
            },
        )


class WeightChangePublic(BaseModel):
    term: str
    before: float | None = Field(description="Its weight in version a; null: a had no such term.")
    after: float | None = Field(description="Its weight in version b; null: b has no such term.")
    change: float = Field(description="after - before (a missing term weighs 0).")

    @classmethod
    def of(cls, c: WeightChange) -> WeightChangePublic:
        return cls(term=c.term, before=c.before, after=c.after, change=c.change)


class LabelChangesPublic(BaseModel):
    gained: list[WeightChangePublic] = Field(description="Terms that now push harder towards the label.")
    lost: list[WeightChangePublic] = Field(description="Terms that now push less (or against it).")


class WeightsDiffPublic(BaseModel):
    model: str
    a: int
    b: int
    new_terms: int = Field(description="Terms b weighs that a did not.")
    dropped_terms: int = Field(description="Terms a weighed that b does not.")
    labels: dict[str, LabelChangesPublic]

    @classmethod
    def of(cls, d: WeightsDiff) -> WeightsDiffPublic:
        return cls(
            model=d.model,
            a=d.a,
            b=d.b,
            new_terms=d.new_terms,
            dropped_terms=d.dropped_terms,
            labels={
                label: LabelChangesPublic(
                    gained=[WeightChangePublic.of(c) for c in gained], lost=[WeightChangePublic.of(c) for c in lost]
                )
                for label, (gained, lost) in d.changes.items()
            },
        )
