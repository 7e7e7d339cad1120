"""Error patterns: where a model's answers keep being corrected, and a check that reports new ones."""

from __future__ import annotations

from fastapi import APIRouter, Query

from learnloop.api.deps import AdminDep, OptionalQueryInt, ReadDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.pattern_schemas import ErrorPatternCheckPublic, ErrorPatternsPublic
from learnloop.monitoring.patterns import WINDOW

router = APIRouter(tags=["models"], responses=problems(404))
PREFIX = "/v1/models/{model}/error-patterns"


@router.get(PREFIX, response_model=ErrorPatternsPublic, operation_id="get_error_patterns")
def error_patterns(
    model: str,
    _: ReadDep,
    services: ServicesDep,
    version: OptionalQueryInt = None,
    window: int = Query(default=WINDOW, ge=100, le=50_000, description="Newest judged answers to analyse."),
) -> ErrorPatternsPublic:
    """Clusters of the corrected answers (terms, sizes, label pairs, examples) and the slices
    whose error rate is significantly above the rest's, over the newest judged answers (every
    version's, or ``version``'s). Computed now, nothing written. A plain ``def``: the analysis
    is CPU work, so it runs in the thread pool, off the event loop."""
    return ErrorPatternsPublic.of(services.patterns.analyse(model, version=version, window=window))


@router.post(PREFIX + "/check", response_model=ErrorPatternCheckPublic, operation_id="check_error_patterns")
def check(model: str, actor: AdminDep, services: ServicesDep) -> ErrorPatternCheckPublic:
    """Analyse now and write an ``error_pattern`` event for each pattern not reported before
    (running it twice reports nothing the second time)."""
    return ErrorPatternCheckPublic.of(services.patterns.check(model, actor=actor.name))
