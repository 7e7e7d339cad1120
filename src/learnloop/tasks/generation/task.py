"""The generation task: a prompt (or a conversation) in, an LLM's response out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from learnloop.domain import FeedbackInput, FeedbackKind, Model, Prediction
from learnloop.drift import Window
from learnloop.drift.refusal import is_refusal
from learnloop.errors import NotSupportedError, ValidationError
from learnloop.families.external import ExternalFamily
from learnloop.tasks.base import Candidate, OutcomeRule, Report, RetrainInputs, TextRule, TrainingFeedback
from learnloop.tasks.generation.answers import GenAnswer
from learnloop.tasks.generation.drift import generation_window
from learnloop.tasks.generation.outcomes import GenerationOutcomes
from learnloop.tasks.signals import implicit_payload


class GenerationTask:
    """A generative model (in-process, or whose answers are made elsewhere and logged).
    Feedback: a rating (1-5), thumbs, a correction (the text the answer should have been), a
    preference between two answers to one prompt (or a standalone prompt with a chosen and a
    rejected text), and implicit signals."""

    key = "generation"
    feedback_kinds = frozenset(
        {
            FeedbackKind.RATING,
            FeedbackKind.THUMBS,
            FeedbackKind.CORRECTION,
            FeedbackKind.PREFERENCE,
            FeedbackKind.IMPLICIT,
        }
    )
    # Training rows of an LLM are dearer to come by than labels: retrain after fewer.
    policy_defaults: Mapping[str, Any] = {"retrain_every": 100}

    def describe(self, model: Model) -> str:
        return "generation"

    def feedback_payload(
        self, model: Model, kind: FeedbackKind, item: FeedbackInput, text_rule: TextRule
    ) -> dict[str, Any]:
        if kind not in self.feedback_kinds:
            raise ValidationError(
                f"a generative model takes {', '.join(sorted(self.feedback_kinds))} feedback, not {kind.value}",
                field=kind.value,
            )
        if kind == FeedbackKind.RATING:
            if item.rating is None or not 1 <= item.rating <= 5:
                raise ValidationError("rating must be an integer from 1 to 5", field="rating")
            return {"rating": item.rating}
        if kind == FeedbackKind.THUMBS:
            if item.thumbs not in ("up", "down"):
                raise ValidationError("thumbs must be 'up' or 'down'", field="thumbs")
            return {"thumbs": item.thumbs}
        if kind == FeedbackKind.CORRECTION:
            return {"correction": text_rule(item.correction or "", "correction")}
        if kind == FeedbackKind.IMPLICIT:
            return implicit_payload(model, item)
        return _preference(item, text_rule)

    def outcomes(self, model: Model) -> OutcomeRule:
        return GenerationOutcomes(model.policy.generation)

    def answer_category(self, answer: Mapping[str, Any]) -> str:
        """``truncated`` (cut off at the token limit), ``refusal`` or ``answer``."""
        generated = GenAnswer.of(answer)
        if generated.finish_reason == "length":
            return "truncated"
        return "refusal" if is_refusal(generated.response) else "answer"

    def answer_size(self, answer: Mapping[str, Any]) -> float | None:
        """The response's length in characters (comparable across providers and tokenizers)."""
        return float(len(GenAnswer.of(answer).response))

    def training_feedback(self, model: Model) -> TrainingFeedback:
        """Ratings, thumbs, corrections and preferences, and the implicit signals the policy
        maps to an outcome (``generation.implicit_outcomes``): each can become a training row."""
        signals = frozenset(model.policy.generation.signal_outcomes())
        return TrainingFeedback(self.feedback_kinds - {FeedbackKind.IMPLICIT}, signals, "training events")

    def drift_window(self, labels: tuple[str, ...], served: Sequence[Prediction]) -> Window:
        """The prompts served and their answers (``drift.generation_window``); ``labels`` are the
        reference's, always ``drift.LABELS`` for a generation reference."""
        return generation_window(served)

    def train(self, inputs: RetrainInputs, report: Report) -> Candidate:
        """Fit a LoRA adapter on the curated feedback and judge it (``retrain``; the LLM stack
        is imported there, in the training process)."""
        model = inputs.model
        if model.family == ExternalFamily.key:
            raise NotSupportedError(
                f"model {model.name!r} answers elsewhere: learnloop cannot fit its weights; export its training "
                "data (learnloop export --format trl-dpo, openai-chat, ...) to fine-tune it where it runs",
                field="family",
            )
        from learnloop.tasks.generation import retrain

        return retrain.train(inputs, report)


def _preference(item: FeedbackInput, text_rule: TextRule) -> dict[str, Any]:
    strength = 1.0 if item.strength is None else float(item.strength)
    if not 0.0 <= strength <= 1.0:  # NaN fails too
        raise ValidationError("strength must be a number from 0 to 1", field="strength")
    if item.rejected_prediction_id is not None:
        if item.rejected_prediction_id == item.chosen_prediction_id:
            raise ValidationError("a preference needs two different answers", field="rejected_prediction_id")
        return {"rejected_prediction_id": item.rejected_prediction_id, "strength": strength}
    chosen = text_rule(item.chosen or "", "chosen")
    rejected = text_rule(item.rejected or "", "rejected")
    if chosen == rejected:
        raise ValidationError(
            "a preference needs two different answers; chosen and rejected are the same", field="rejected"
        )
    return {
        "prompt": text_rule(item.prompt or "", "prompt"),
        "chosen": chosen,
        "rejected": rejected,
        "strength": strength,
    }
