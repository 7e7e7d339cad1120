"""A model's parameter studies (``learnloop tune``, retrains' searches): the list, one study in
full (best parameters, trials, importance), and its pictures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from learnloop.api.deps import ReadDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.schemas import StudyPublic, StudySummaryPublic

router = APIRouter(tags=["studies"], responses=problems(404))
PREFIX = "/v1/models/{model}/studies"
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "A PNG picture."}}


@router.get(PREFIX, response_model=list[StudySummaryPublic], operation_id="list_studies")
def list_studies(model: str, services: ServicesDep, _: ReadDep) -> list[StudySummaryPublic]:
    """The model's studies, newest first."""
    return [StudySummaryPublic.of(s) for s in services.studies.studies(model)]


@router.get(PREFIX + "/{study}", response_model=StudyPublic, operation_id="get_study")
def get_study(model: str, study: str, services: ServicesDep, _: ReadDep) -> StudyPublic:
    """One study: its best parameters, every trial (with its fold scores) and parameter importance."""
    return StudyPublic.of(services.studies.study(model, study))


@router.get(PREFIX + "/{study}/trials.png", response_class=Response, responses=PNG, operation_id="get_study_trials_png")
def trials_picture(model: str, study: str, services: ServicesDep, _: ReadDep) -> Response:
    """Each trial's score against when it ended (pruned ones where they stopped), the best so far as a line."""
    from learnloop.reports.study_plots import trials_png

    return Response(trials_png(services.studies.study(model, study)), media_type="image/png")


@router.get(
    PREFIX + "/{study}/importance.png", response_class=Response, responses=PNG, operation_id="get_study_importance_png"
)
def importance_picture(model: str, study: str, services: ServicesDep, _: ReadDep) -> Response:
    """Each searched parameter's importance (fANOVA), largest on top."""
    from learnloop.reports.study_plots import importance_png

    return Response(importance_png(services.studies.study(model, study)), media_type="image/png")
