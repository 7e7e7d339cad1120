"""Model families: one file each, registered by stable key in ``FAMILIES``."""

from learnloop.domain import DEFAULT_FAMILY
from learnloop.errors import ValidationError
from learnloop.families.base import ModelFamily, Predictor
from learnloop.families.dp_logreg import DpLogRegFamily
from learnloop.families.embedding_logreg import EmbeddingLogRegFamily
from learnloop.families.external import AnsweredElsewhere, ExternalFamily
from learnloop.families.generation import Generator
from learnloop.families.incremental import IncrementalFamily
from learnloop.families.lora import LoraFamily
from learnloop.families.tfidf_logreg import TfidfLogRegFamily

FAMILIES: dict[str, ModelFamily] = {
    TfidfLogRegFamily.key: TfidfLogRegFamily(),
    EmbeddingLogRegFamily.key: EmbeddingLogRegFamily(),
    IncrementalFamily.key: IncrementalFamily(),
    DpLogRegFamily.key: DpLogRegFamily(),
    ExternalFamily.key: ExternalFamily(),
    LoraFamily.key: LoraFamily(),
}


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
    "Generator",
    "LoraFamily",
    "ModelFamily",
    "Predictor",
    "get_family",
]
