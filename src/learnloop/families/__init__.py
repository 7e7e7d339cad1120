"""Model families: one file each, registered by stable key in ``FAMILIES``."""

from learnloop.errors import ValidationError
from learnloop.families.base import ModelFamily, Predictor
from learnloop.families.external import AnsweredElsewhere, ExternalFamily
from learnloop.families.tfidf_logreg import TfidfLogRegFamily

FAMILIES: dict[str, ModelFamily] = {
    TfidfLogRegFamily.key: TfidfLogRegFamily(),
    ExternalFamily.key: ExternalFamily(),
}
DEFAULT_FAMILY = TfidfLogRegFamily.key


def get_family(key: str) -> ModelFamily:
    try:
        return FAMILIES[key]
    except KeyError:
        raise ValidationError(
            f"unknown model family {key!r}; known: {', '.join(sorted(FAMILIES))}", field="family"
        ) from None


__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "AnsweredElsewhere",
    "ExternalFamily",
    "ModelFamily",
    "Predictor",
    "get_family",
]
