"""Why a classifier answered what it did: a logged answer or a text explained term by term; a
version's strongest terms; what moved between two versions. Plain ``def`` routes: explaining is
CPU work (occlusion scores the text once per word), so it runs off the event loop.

Scopes: explaining a logged answer shows its stored text, as reading a feedback event does
(``read``); explaining a text sent in the body runs the model on it, which only a key that may
``predict`` may do (a ``read`` key must not get answers through it); weights are ``read``."""

from __future__ import annotations

from fastapi import APIRouter, Query

from learnloop.api.deps import PathInt, PredictDep, ReadDep, ServicesDep
from learnloop.api.explain_schemas import ExplainRequest, ExplanationPublic, VersionWeightsPublic, WeightsDiffPublic
from learnloop.api.openapi import problems
from learnloop.api.schemas import DB_INT_MAX
from learnloop.explanations.service import MAX_TOP

router = APIRouter(prefix="/v1/models/{model}", tags=["explanations"], responses=problems(404, 409))

TopQuery = Query(default=20, ge=1, le=MAX_TOP, description="Terms per label.")


@router.get("/predictions/{prediction_id}/explain", response_model=ExplanationPublic)
def explain_prediction(model: str, prediction_id: str, _: ReadDep, services: ServicesDep) -> ExplanationPublic:
    """A logged answer explained by the version that gave it: each term's contribution to each
    label (exact for linear families, by occlusion for others: see ``method``), and the text's
    words with what each added to the answered label."""
    return ExplanationPublic.of(services.explanations.explain_prediction(model, prediction_id))


@router.post("/explain", response_model=ExplanationPublic)
def explain_text(model: str, body: ExplainRequest, _: PredictDep, services: ServicesDep) -> ExplanationPublic:
    """A text explained by the champion (or ``version``), as for a logged answer; nothing is logged."""
    return ExplanationPublic.of(services.explanations.explain_text(model, body.text, body.version))


@router.get("/versions/{version}/weights", response_model=VersionWeightsPublic)
def version_weights(
    model: str, version: PathInt, _: ReadDep, services: ServicesDep, top: int = TopQuery
) -> VersionWeightsPublic:
    """A linear version's strongest terms per label (409 ``not_supported`` for a family whose
    features are not terms)."""
    return VersionWeightsPublic.of(services.explanations.weights(model, version, top))


@router.get("/weights/changes", response_model=WeightsDiffPublic)
def weight_changes(
    model: str,
    _: ReadDep,
    services: ServicesDep,
    a: int = Query(ge=1, le=DB_INT_MAX, description="The earlier version."),
    b: int = Query(ge=1, le=DB_INT_MAX, description="The later version: changes are b - a."),
    top: int = TopQuery,
) -> WeightsDiffPublic:
    """Per label, the terms whose weight rose most from version ``a`` to ``b`` and those that fell most."""
    return WeightsDiffPublic.of(services.explanations.changes(model, a, b, top))
