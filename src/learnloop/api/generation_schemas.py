"""Request and response schemas of logging answers made elsewhere
(``POST /v1/models/{model}/generations`` and ``/generations/batch``). The item's own schema is
``feedback.generations.GenerationCreate``, shared with the batch's per-item parse."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from learnloop.api.schemas import ItemError
from learnloop.feedback.generations import GenerationItemResult, LoggedGeneration


class GenerationBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, description="Generations, each as in POST /generations.")


class GenerationLogged(BaseModel):
    prediction_id: str = Field(description="Feedback on this answer names it.")
    model: str
    version: int
    route: str

    @classmethod
    def of(cls, logged: LoggedGeneration) -> GenerationLogged:
        return cls(prediction_id=logged.prediction_id, model=logged.model, version=logged.version, route=logged.route)


class GenerationItemPublic(BaseModel):
    """One item of a batch: logged (with its prediction id) or rejected, with the reason."""

    index: int
    status: Literal["logged", "rejected"]
    prediction_id: str | None = None
    version: int | None = None
    route: str | None = None
    error: ItemError | None = None

    @classmethod
    def of(cls, result: GenerationItemResult) -> GenerationItemPublic:
        if result.logged is not None:
            logged = result.logged
            return cls(
                index=result.index,
                status="logged",
                prediction_id=logged.prediction_id,
                version=logged.version,
                route=logged.route,
            )
        error = result.error
        return cls(
            index=result.index,
            status="rejected",
            error=ItemError(code=error.code, field=result.error_field, detail=error.message) if error else None,
        )


class GenerationBatchResult(BaseModel):
    logged: int
    rejected: int
    items: list[GenerationItemPublic]
