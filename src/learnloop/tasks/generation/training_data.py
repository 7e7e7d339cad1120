"""What a generative model's next version would train on, in a trainer's format. Pure.

``training_data`` curates the model's feedback events up to ``now`` under a policy (the model's
own, or one to try) and exports one part of the set the format reads: ``train`` (what training
would see) or ``held_out`` (what the gate would judge on). ``snapshot_training_data`` does the
same for a version's stored snapshot (what it did train on). The edges call them through the
registry service (``learnloop export --format trl-sft``, ``GET /v1/models/{m}/training-data``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from learnloop.domain import FeedbackEvent, Model
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.tasks.generation.curate import curate
from learnloop.tasks.generation.export import FORMATS, export_sets
from learnloop.tasks.generation.sets import Part
from learnloop.tasks.generation.snapshot import read_snapshot

TASK_KEY = "generation"  # the generation task's key (``GenerationTask.key``)


def check_format(model: Model, fmt: str) -> None:
    """A generation format for a generative model, and only for one: a ``ValidationError`` otherwise."""
    generative = model.task == TASK_KEY
    if generative and fmt not in FORMATS:
        raise ValidationError(
            f"model {model.name!r} is generative: its training data exports as {', '.join(FORMATS)}; got {fmt!r}",
            field="format",
        )
    if not generative and fmt in FORMATS:
        raise ValidationError(
            f"format {fmt!r} is for generative models; model {model.name!r} is a {model.task} model", field="format"
        )


def training_data(
    model: Model, events: Iterable[FeedbackEvent], policy: Policy, now: datetime, fmt: str, part: Part = "train"
) -> bytes:
    """The ``part`` of the set ``fmt`` reads, curated from ``events`` (feedback up to ``now``,
    with their answers) under ``policy``, as JSON Lines in format ``fmt``."""
    check_format(model, fmt)
    return export_sets(curate(events, policy, now), fmt, part)


def snapshot_training_data(model: Model, snapshot: bytes, fmt: str, part: Part = "train") -> bytes:
    """The ``part`` of a stored snapshot's set that ``fmt`` reads, in that format."""
    check_format(model, fmt)
    return export_sets(read_snapshot(snapshot).sets, fmt, part)
