"""Drift of a generative model: what its served answers are checked on, and the reference.

Five detectors (``DETECTOR_KEYS``), all through the drift package's protocol:

* ``text_length``: the length of the prompts (the served input, ``Prediction.text``: the
  conversation as ``answers.prompt_text`` renders it);
* ``oov``: the prompts' out-of-vocabulary rate against the training prompts (the vocabulary is
  made of a random half of the reference prompts and the baseline rate measured on the other
  half, see ``drift.oov``);
* ``multivariate``: a domain classifier telling served prompts from reference prompts (on a
  hashed bag of words unless the version exposes a feature map);
* ``response_length`` and ``refusal``: the length of the answers and the share of refusals
  (``drift.refusal.is_refusal``).

The label-mix and confidence detectors do not apply (an answer has no probabilities): the window
carries one-hot columns ``LABELS`` (answered / refused) because a ``Window`` needs columns, and
the reference is fitted without those two detectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learnloop.artifacts import ArtifactStore
from learnloop.domain import Prediction
from learnloop.drift import DETECTORS, ReferenceData, Window, fit_all, is_refusal
from learnloop.drift.reference import DriftReference, reference_key
from learnloop.tasks.generation.answers import GenAnswer, prompt_text
from learnloop.tasks.generation.sets import PARTS, SET_NAMES, GenerationSets, PreferencePair

LABELS = ("answered", "refused")
DETECTOR_KEYS = ("text_length", "oov", "multivariate", "response_length", "refusal")


def _one_hot(refused: Sequence[bool]) -> np.ndarray:
    flags = np.asarray(refused, dtype=np.float64).reshape(len(refused))
    return np.column_stack([1.0 - flags, flags]).reshape(len(refused), len(LABELS))


def generation_window(served: Sequence[Prediction]) -> Window:
    """The window of served generations: prompts as texts, answers as responses."""
    responses = [GenAnswer.of(p.answer).response for p in served]
    return Window([p.text for p in served], _one_hot([is_refusal(r) for r in responses]), LABELS, responses=responses)


def reference_texts(sets: GenerationSets) -> tuple[list[str], list[str]]:
    """The prompts (distinct, as ``prompt_text`` renders them) and the answers (every response a
    row holds, both sides of a pair) of a snapshot's sets, train and held-out parts alike: the
    traffic the version was curated from."""
    prompts: dict[str, None] = {}
    responses: list[str] = []
    for name in SET_NAMES:
        for part in PARTS:
            for row in sets.rows(name, part):
                prompts.setdefault(prompt_text(row.messages))
                if isinstance(row, PreferencePair):
                    responses += [row.chosen, row.rejected]
                else:
                    responses.append(row.response)
    return list(prompts), responses


def fit_generation_reference(prompts: Sequence[str], responses: Sequence[str], *, source: str) -> DriftReference:
    """Every generation detector's summary of the training ``prompts`` and ``responses``
    (``source`` says which, e.g. ``"snapshot"``); what a version stores as its drift reference
    (``DriftReference.to_bytes`` under ``drift.reference.reference_key``)."""
    reference = ReferenceData(
        list(prompts), _one_hot([False] * len(prompts)), LABELS, vocabulary=None, responses=list(responses)
    )
    return DriftReference(
        labels=LABELS,
        n=len(prompts),
        source=source,
        vocabulary="reference texts",
        summaries=fit_all(reference, {key: DETECTORS[key] for key in DETECTOR_KEYS}),
    )


def store_generation_reference(
    store: ArtifactStore, model: str, artifact_key: str, sets: GenerationSets
) -> tuple[str | None, str | None]:
    """Fit a version's reference on its snapshot's sets (``reference_texts``) and store it
    under ``drift.reference.reference_key``: (its key, None), or (None, why not), which the
    version's metrics record as ``drift_reference`` / ``drift_reference_error``. Monitoring
    never fails a training: an error is a reason, not an exception."""
    prompts, responses = reference_texts(sets)
    if not prompts:
        return None, "no prompts in the snapshot to fit a drift reference on"
    try:
        reference = fit_generation_reference(prompts, responses, source="snapshot")
    except Exception as exc:  # monitoring never fails a training
        return None, f"the drift reference could not be fitted: {type(exc).__name__}: {exc}"
    return store.put_bytes(reference_key(model, artifact_key), reference.to_bytes()), None
