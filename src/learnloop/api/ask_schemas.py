"""Response schemas of the route that says which answers to ask users about."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from learnloop.feedback.asking import AskItem, AskResult


class AskItemPublic(BaseModel):
    prediction_id: str = Field(description="Send feedback with this id, as for any answer.")
    text: str = Field(description="The text as stored (scrubbed of personal data).")
    label: str = Field(description="What the champion answered.")
    probabilities: dict[str, float]
    score: float = Field(description="The strategy's score: the margin (smaller first) or entropy (larger first).")
    margin: float = Field(description="Top-1 minus top-2 probability.")
    entropy: float = Field(description="Entropy of the probabilities over log(number of labels).")
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, item: AskItem) -> AskItemPublic:
        p = item.pick
        return cls(
            prediction_id=p.id,
            text=p.text,
            label=p.label,
            probabilities=dict(p.probabilities),
            score=p.score,
            margin=p.margin,
            entropy=p.entropy,
            reason=p.reason,
            created_at=item.created_at,
        )


class AskPublic(BaseModel):
    model: str
    version: int | None = Field(description="The champion whose answers were considered.")
    strategy: str
    window: int
    considered: int = Field(description="Answers in the window that had no feedback yet.")
    items: list[AskItemPublic]

    @classmethod
    def of(cls, r: AskResult) -> AskPublic:
        return cls(
            model=r.model,
            version=r.version,
            strategy=r.strategy,
            window=r.window,
            considered=r.considered,
            items=[AskItemPublic.of(i) for i in r.items],
        )
