from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from learnloop.api.deps import (
    AdminDep,
    OptionalQueryInt,
    PageLimit,
    PathInt,
    ReadDep,
    ServicesDep,
    check_model,
)
from learnloop.api.model_schemas import ModelCreate, ModelCreated, ModelDeleted, ModelUpload, create_body_openapi
from learnloop.api.openapi import problems
from learnloop.api.schemas import (
    ActionRequest,
    DeploymentPublic,
    EventPublic,
    JobAccepted,
    JobPublic,
    ModelDetail,
    ModelSummary,
    PerformancePublic,
    PolicyUpdate,
    PromoteRequest,
    RolloutPublic,
    VersionPublic,
    VersionSummary,
)
from learnloop.api.uploads import UnsupportedMediaTypeError, media_type, multipart_upload, read_body
from learnloop.api.value_schemas import RetrainValueReport
from learnloop.domain import SERVER_TRAIL, Scope
from learnloop.models import DataSource, NewModel
from learnloop.tasks.classification.export import FORMATS as TABLE_FORMATS
from learnloop.tasks.generation.export import FORMATS as TRAINER_FORMATS

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=list[ModelSummary])
async def list_models(principal: ReadDep, services: ServicesDep) -> list[ModelSummary]:
    """Every model, with its task, family and champion version."""
    return [
        ModelSummary.of(m, services.registry.deployment(m.name).champion_version)
        for m in services.registry.list_models()
        if principal.may(Scope.READ, m.name)
    ]


@router.post(
    "",
    response_model=ModelCreated,
    status_code=201,
    openapi_extra=create_body_openapi(),
    responses=problems(409, 415),
)
async def create_model(request: Request, actor: AdminDep, services: ServicesDep) -> ModelCreated:
    """Admin: create a model from labelled data, a multipart upload (a CSV, TSV or JSONL ``file``
    and form fields) or a JSON body of ``rows``; answers once version 1, trained in the training
    process, is champion. Bad data is a 422 naming the field, and leaves nothing behind. A
    generative model whose answers are made elsewhere (``"task": "generation", "backend":
    "external"``) needs no data: version 1 is champion at once."""
    async with _model_request(request, services.settings.limits.max_upload_bytes) as (new, source):
        created = await run_in_threadpool(services.creation.create, new, source, actor=actor.name)
    return ModelCreated.of_created(await get_model(created.model.name, actor, services), created)


@asynccontextmanager
async def _model_request(request: Request, limit: int) -> AsyncIterator[tuple[NewModel, DataSource | None]]:
    kind = media_type(request)
    try:
        if kind == "multipart/form-data":
            async with multipart_upload(request, limit) as upload:
                yield ModelUpload.model_validate(upload.fields).request(upload.path, upload.filename)
        elif kind == "application/json":
            yield ModelCreate.model_validate_json(await read_body(request, limit)).request()
        else:
            raise UnsupportedMediaTypeError(
                f"send multipart/form-data (a file and form fields) or application/json (rows), not {kind or 'no type'}"
            )
    except pydantic.ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


@router.delete("/{model}", response_model=ModelDeleted, responses=problems(404, 409))
async def delete_model(model: str, actor: AdminDep, services: ServicesDep, reason: str | None = None) -> ModelDeleted:
    """Admin: delete a model with its versions, predictions, feedback, snapshots, rollouts, jobs,
    drift checks and artifacts; a ``model_deleted`` event stays in the audit trail. 409 while a
    job of the model runs."""
    report = await run_in_threadpool(
        services.deletion.delete, model, actor=actor.name, reason=reason or "deleted through the API"
    )
    return ModelDeleted.of(report)


@router.get("/{model}", response_model=ModelDetail, responses=problems(404))
async def get_model(model: str, _: ReadDep, services: ServicesDep) -> ModelDetail:
    """A model: its policy, deployment (champion, rollout), versions, feedback counts and last retrain."""
    o = services.registry.overview(model)
    return ModelDetail(
        **ModelSummary.of(o.model, o.deployment.champion_version).model_dump(),
        policy=o.model.policy.to_dict(),
        deployment=DeploymentPublic.of(o.deployment),
        rollout=RolloutPublic.of(o.rollout) if o.rollout else None,
        versions=[VersionSummary.of(v) for v in o.versions],
        feedback_counts=o.feedback_counts,
        last_retrain=JobPublic.of(o.last_retrain) if o.last_retrain else None,
        created_at=o.model.created_at,
    )


@router.get("/{model}/events", response_model=list[EventPublic], responses=problems(404))
async def list_events(
    model: str,
    request: Request,
    principal: ReadDep,
    services: ServicesDep,
    limit: PageLimit = 50,
    after_id: OptionalQueryInt = None,
    kind: Annotated[list[str] | None, Query(max_length=20, description="Only these kinds, repeatable.")] = None,
) -> list[EventPublic]:
    """The audit trail: newest first; with ``after_id``, the events after it, oldest first.
    The model ``*`` is the server's own trail, for admins: admin actions, keys created and
    revoked, authentication failures and their bursts (``kind=auth_failure``, ...)."""
    if model == SERVER_TRAIL:  # an admin's, of every model
        await check_model(request, principal, Scope.ADMIN, model)
    found = services.registry.events(model, limit, after_id, kind or None)
    return [EventPublic.of(e) for e in found]


@router.get(
    "/{model}/performance", response_model=PerformancePublic, operation_id="get_performance", responses=problems(404)
)
async def performance(model: str, _: ReadDep, services: ServicesDep) -> PerformancePublic:
    """Online accuracy of the champion from feedback (95% Wilson interval), the label-free
    estimate, the drop alarm, and a daily series per version."""
    return PerformancePublic.model_validate(services.performance.performance(model, series=True).to_dict())


@router.get(
    "/{model}/retrains/value",
    response_model=RetrainValueReport,
    operation_id="get_retrain_value",
    responses=problems(404),
)
async def retrain_value(model: str, _: ReadDep, services: ServicesDep) -> RetrainValueReport:
    """What each retrain cost and what its promotion bought on live traffic, with intervals,
    the return at the model's prices, and the retrains that bought nothing flagged."""
    report = await run_in_threadpool(services.value.report, model)
    return RetrainValueReport.model_validate(report.to_dict())


@router.get("/{model}/versions/{version}", response_model=VersionPublic, responses=problems(404))
async def get_version(model: str, version: PathInt, _: ReadDep, services: ServicesDep) -> VersionPublic:
    """A version: its metrics on the golden set, the gate's verdict and reasons, params and lineage."""
    return VersionPublic.of(services.registry.version(model, version))


# The document lists every format; which apply is the model's task's rule (a classifier's
# table, a generative model's trainer format), answered 422 ``validation_error`` otherwise.
DataFormat = Annotated[
    str,
    Query(
        description="jsonl or csv (a classifier); a trainer's format (a generative model).",
        json_schema_extra={"enum": [*TABLE_FORMATS, *TRAINER_FORMATS]},
    ),
]
DataPart = Literal["train", "held_out"]
DATA_FILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-ndjson": {}, "text/csv": {}}, "description": "The examples, one per line."}
}


@router.get(
    "/{model}/versions/{version}/training-data",
    operation_id="get_version_training_data",
    response_class=Response,
    responses={**problems(404, 409), **DATA_FILE},
)
async def training_data(
    model: str,
    version: PathInt,
    actor: AdminDep,
    services: ServicesDep,
    format: DataFormat = "jsonl",
    part: DataPart = "train",
) -> Response:
    """Admin: the curated examples the version was trained on, as JSON Lines or CSV (a generative
    model: in a trainer's format, its ``train`` or ``held_out`` part)."""
    data = await run_in_threadpool(services.registry.training_data, model, version, format, part)
    return _data_file(data, format, f"{model}-v{version}-training-data")


@router.get(
    "/{model}/training-data",
    operation_id="get_training_data",
    response_class=Response,
    responses={**problems(404, 409), **DATA_FILE},
)
async def next_training_data(
    model: str, actor: AdminDep, services: ServicesDep, format: DataFormat = "jsonl", part: DataPart = "train"
) -> Response:
    """Admin: what the model trains on now: a generative model's feedback curated as its next
    version would train on it (``part=held_out``: what the gate would judge it on), in a
    trainer's format (``trl-sft``, ``trl-dpo``, ``trl-kto``, ``openai-chat``, ``openai-dpo``,
    ``bedrock``); a classifier's champion's snapshot."""
    data = await run_in_threadpool(services.registry.training_data, model, None, format, part)
    return _data_file(data, format, f"{model}-{part}-training-data")


def _data_file(data: bytes, format: str, stem: str) -> Response:
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    suffix = "csv" if format == "csv" else "jsonl"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{stem}.{suffix}"'})


@router.post(
    "/{model}/versions/{version}/promote",
    response_model=DeploymentPublic,
    operation_id="promote_version",
    responses=problems(404, 409),
)
async def promote(
    model: str,
    version: PathInt,
    actor: AdminDep,
    services: ServicesDep,
    body: PromoteRequest | None = None,
) -> DeploymentPublic:
    """Make a version champion; one the offline gate rejected needs ``"force": true`` (409
    ``gate_rejected`` says why it was rejected)."""
    reason = body.reason if body else None
    return DeploymentPublic.of(
        services.registry.promote(
            model, version, actor=actor.name, reason=reason or "manual promotion", force=bool(body and body.force)
        )
    )


@router.post(
    "/{model}/rollback", response_model=DeploymentPublic, operation_id="rollback_model", responses=problems(404, 409)
)
async def rollback(
    model: str, actor: AdminDep, services: ServicesDep, body: ActionRequest | None = None
) -> DeploymentPublic:
    """Take the newest change off traffic: a running rollout's challenger, else the champion
    (back to the previous one). Instant: what it goes back to is loaded already."""
    reason = body.reason if body else None
    return DeploymentPublic.of(services.registry.rollback(model, actor=actor.name, reason=reason or "manual rollback"))


@router.post("/{model}/retrain", response_model=JobAccepted, status_code=202, responses=problems(404, 409))
async def retrain(model: str, actor: AdminDep, services: ServicesDep, body: ActionRequest | None = None) -> JobAccepted:
    """Queue a retrain now (202 with its job id: follow it at ``GET /v1/jobs/{job_id}``); 409 while
    one of the model is queued or running."""
    job = services.jobs.enqueue(
        model,
        "retrain",
        requested_by=actor.name,
        reason=body.reason if body else "requested through the API",
    )
    return JobAccepted(job_id=job.id, status=job.status.value)


@router.patch("/{model}/policy", response_model=ModelDetail, responses=problems(404))
async def update_policy(model: str, body: PolicyUpdate, actor: AdminDep, services: ServicesDep) -> ModelDetail:
    """Change some of the model's policy settings (retrain triggers, gate, rollout, drift); answers
    the model with its whole policy. An unknown setting or a value out of range is a 422."""
    services.registry.update_policy(model, body.changes, actor.name)
    return await get_model(model, actor, services)
