"""``GET /v1/families``: the model families a model can be created with, and their parameters."""

from __future__ import annotations

from fastapi import APIRouter

from learnloop.api.deps import ReadDep
from learnloop.api.model_schemas import FamilyPublic
from learnloop.families import FAMILIES

router = APIRouter(tags=["models"])


@router.get("/v1/families", response_model=list[FamilyPublic])
def list_families(_: ReadDep) -> list[FamilyPublic]:
    """Every family (``family`` in ``POST /v1/models``) with its parameters (``params``): type,
    default and meaning."""
    return [FamilyPublic.of(family) for family in FAMILIES.values()]
