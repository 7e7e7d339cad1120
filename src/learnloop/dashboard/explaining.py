"""The dashboard's explanations: a logged answer's text with each word's background coloured by
what it added to the answer (green towards it, red against; stronger, deeper), and on a version
page its strongest terms and what moved since its parent.

The text reaches the page only as the segments below, which Jinja escapes like any other value:
the colours are computed from numbers, never from the text, so a user's text cannot become
markup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from learnloop.errors import LearnloopError
from learnloop.explanations import ExplainedAnswer
from learnloop.services import Services

TOP_TERMS = 12
FAINTEST = 0.05  # words below this share of the strongest are left unmarked


@dataclass(frozen=True)
class Segment:
    text: str
    contribution: float | None  # None: text between words
    colour: str | None  # an rgba() background, or None


def segments(answer: ExplainedAnswer) -> list[Segment]:
    """The text cut at its words, each word with its contribution and background."""
    tokens = answer.explanation.tokens
    strongest = max((abs(t.contribution) for t in tokens), default=0.0) or 1.0
    out: list[Segment] = []
    at = 0
    for t in tokens:
        if t.start > at:
            out.append(Segment(answer.text[at : t.start], None, None))
        share = min(abs(t.contribution) / strongest, 1.0)
        rgb = "22,163,74" if t.contribution > 0 else "220,38,38"
        out.append(Segment(t.text, t.contribution, f"rgba({rgb},{0.7 * share:.2f})" if share >= FAINTEST else None))
        at = t.end
    if at < len(answer.text):
        out.append(Segment(answer.text[at:], None, None))
    return out


def answer_page(services: Services, model: str, prediction_id: str) -> dict[str, Any]:
    answer = services.explanations.explain_prediction(model, prediction_id)
    return {
        "model": services.registry.get_model(model),
        "answer": answer,
        "x": answer.explanation,
        "segments": segments(answer),
        "terms": answer.explanation.terms[:TOP_TERMS],
    }


def weights_panel(services: Services, model: str, number: int, parent: int | None) -> dict[str, Any] | None:
    """A version's strongest terms per label and the terms that moved most since its parent
    (else the version before it); None for a version whose features are not terms."""
    try:
        weights = services.explanations.weights(model, number, TOP_TERMS)
    except LearnloopError:  # not linear, a generative model, an artifact that will not load
        return None
    against = parent if parent is not None else (number - 1 if number > 1 else None)
    changes = None
    if against is not None and against != number:
        try:
            changes = services.explanations.changes(model, against, number, TOP_TERMS // 2)
        except LearnloopError:
            changes = None
    return {"weights": weights, "changes": changes}
