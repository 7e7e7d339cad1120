"""The OpenAPI document: readable operation ids, problem+json errors, request examples.

Every error is an RFC 9457 problem (``api/errors.py``); the document says so once, in the
shared ``PROBLEMS`` responses. A route declares the errors of its domain (``responses=
problems(404, 409)``); the errors of the edge are added to every operation they apply to by
``complete``, from the operation itself:

* 422 and 503 on every route but the probes (validation; the edge guard refuses a URL holding
  a NUL or a query parameter given twice, whatever the route takes, and answers overload; an
  unavailable model), 408 and 413 where it takes a body (``api/guard.py`` reads it), 401, 403
  and 429 where it needs a key (its ``security``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from learnloop.api.admission import PROBES
from learnloop.api.deps import app_routes, declared_needs
from learnloop.api.errors import problem_body
from learnloop.api.examples import REQUEST_EXAMPLES

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ProblemItem(BaseModel):
    """One failed check of a ``validation_error``."""

    field: str = Field(description="The field, dotted (``items.0.text``), or ``body``.")
    message: str
    type: str = Field(description="The check that failed (pydantic's error type).")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``). ``code`` is stable:
    branch on it, not on ``detail``'s words. Some codes carry more members (``retry_after``,
    ``limit``, ``existing_feedback_id``, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the problem: https://learnloop.dev/problems/{code}.")
    title: str
    status: int = Field(description="The HTTP status.")
    detail: str = Field(description="What went wrong, for a person.")
    code: str = Field(description="Stable machine-readable code: validation_error, not_found, conflict, ...")
    field: str | None = Field(default=None, description="The request field at fault, when there is one.")
    errors: list[ProblemItem] | None = Field(default=None, description="validation_error: every failed check.")
    retry_after: float | None = Field(default=None, description="overloaded: seconds to wait (also Retry-After).")
    limit: int | None = Field(default=None, description="The bound exceeded (payload_too_large, nesting depth).")


def _response(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}, "example": example}},
    }


# The shared responses: one per status an operation can answer with a problem.
PROBLEMS: dict[int, dict[str, Any]] = {
    401: _response(
        "The key is missing, unknown, revoked or expired (once the server has keys), or a bearer JWT is"
        " refused (``token_expired``, ``token_wrong_audience``, ...: the README lists them).",
        problem_body(
            401, "unauthorized", "this route needs a key with the read scope (X-API-Key or Authorization: Bearer)"
        ),
    ),
    403: _response(
        "The key does not carry the scope this route needs, or is limited to other models.",
        problem_body(403, "forbidden", "key 'key:app' does not have the admin scope"),
    ),
    404: _response(
        "The model, version, rollout, job, feedback or webhook named does not exist.",
        problem_body(404, "not_found", "model 'reviews' not found", field="model"),
    ),
    408: _response(
        "The request body did not arrive in time.",
        problem_body(408, "request_timeout", "the request body took longer than 10 s to arrive"),
    ),
    409: _response(
        "The state forbids it (already exists, already running, rejected by the gate, ended, ...).",
        problem_body(409, "conflict", "a retrain of model 'reviews' is already queued or running", field="job_id"),
    ),
    413: _response(
        "The request body is larger than the server accepts.",
        problem_body(413, "payload_too_large", "the request body exceeds 1048576 bytes", field="body", limit=1048576),
    ),
    429: _response(
        "Too many failed authentications from this address (``too_many_failures``), or the key, token or"
        " subject is over its rate (``rate_limited``, with ``RateLimit-*`` headers); retry after"
        " ``retry_after`` seconds.",
        problem_body(
            429,
            "too_many_failures",
            "too many failed authentications from this address; retry after 42 s",
            retry_after=42,
        ),
    ),
    415: _response(
        "The body's media type is not one the route reads.",
        problem_body(415, "unsupported_media_type", "send multipart/form-data or application/json, not text/plain"),
    ),
    422: _response(
        "The request breaks a rule: a field is missing, malformed or out of range.",
        problem_body(
            422,
            "validation_error",
            "text: String should have at least 1 character",
            field="text",
            errors=[
                {"field": "text", "message": "String should have at least 1 character", "type": "string_too_short"}
            ],
        ),
    ),
    503: _response(
        "Overloaded or unavailable for now; retry after ``retry_after`` seconds (also Retry-After).",
        problem_body(
            503, "overloaded", "the server is at its bound for predict requests (no free slot)", retry_after=1
        ),
    ),
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The shared problem responses of these statuses, for a route's ``responses=``."""
    return {status: PROBLEMS[status] for status in statuses}


def operation_id(route: APIRoute) -> str:
    """An operation's id is its handler's name (``predict``, ``record_feedback``); a route
    whose name is ambiguous names its own (``operation_id=``). Unique: a test checks."""
    return route.name


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, with the edge's problem responses and the request examples added,
    each operation summed up by its id (in place; returned for convenience)."""
    for path, _, operation in operations(spec):
        operation["summary"] = operation["operationId"].replace("_", " ").capitalize()  # "Promote version"
        responses = operation.setdefault("responses", {})
        for status in _edge_statuses(path, operation):
            responses[str(status)] = copy.deepcopy(PROBLEMS[status])  # the document may be edited
        if "requestBody" in operation:
            _add_examples(operation["requestBody"])
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, never sent
        if f"#/components/schemas/{unused}" not in str(spec["paths"]):
            schemas.pop(unused, None)
    return spec


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _edge_statuses(path: str, operation: dict[str, Any]) -> list[int]:
    statuses = []
    if operation.get("security"):
        statuses += [401, 403, 429]
    if "requestBody" in operation:
        statuses += [408, 413]
    if path not in PROBES:
        statuses += [422, 503]
    return statuses


def _add_examples(body: dict[str, Any]) -> None:
    for media in body.get("content", {}).values():
        name = _schema_name(media.get("schema", {}))
        if name in REQUEST_EXAMPLES and "examples" not in media:
            media["examples"] = copy.deepcopy(REQUEST_EXAMPLES[name])


def _schema_name(schema: dict[str, Any]) -> str | None:
    """The component a body's schema names, directly or as ``X | None`` (an optional body)."""
    for candidate in [schema, *schema.get("anyOf", [])]:
        ref = candidate.get("$ref")
        if isinstance(ref, str):
            return ref.rsplit("/", 1)[-1]
    return None


TAGS: list[dict[str, Any]] = [
    {"name": "predictions", "description": "Answer with the serving version; each answer is logged for feedback."},
    {"name": "feedback", "description": "What users said about answers: labels, thumbs, ratings, corrections."},
    {"name": "models", "description": "Models, versions, their data and policy; what is worth asking users."},
    {"name": "rollouts", "description": "Canary, shadow and A/B rollouts of a version beside the champion."},
    {"name": "drift", "description": "Drift of a model's inputs and outputs."},
    {"name": "fairness", "description": "A classifier's accuracy and rates per group of its requests' metadata."},
    {"name": "studies", "description": "Optuna studies of a model's parameters: trials, best parameters, pictures."},
    {"name": "jobs", "description": "Retrains and other background jobs."},
    {"name": "generation", "description": "Generative models answering in process."},
    {"name": "generations", "description": "Answers a generative model made elsewhere, logged for feedback."},
    {"name": "openai", "description": "An OpenAI-compatible surface: change only the client's base_url."},
    {"name": "webhooks", "description": "Events sent to your URLs (admin)."},
    {"name": "privacy", "description": "A subject's data: export, erase (admin)."},
    {"name": "keys", "description": "Scoped API keys: create, list, revoke (admin)."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def with_scopes(spec: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Each operation says the scope its key needs (``x-scope``, and a line of its description)."""
    scopes = {
        (method.lower(), route.path_format): needs[0].scope
        for route in app_routes(app.routes)
        if (needs := declared_needs(route))
        for method in route.methods or ()
    }
    for path, method, operation in operations(spec):
        scope = scopes.get((method, path))
        if scope is not None:
            operation["x-scope"] = scope.value
            operation["description"] = f"{operation.get('description', '')}\n\nNeeds a key with the `{scope}` scope."
    return spec


def install(app: FastAPI) -> None:
    """Serve the completed document at ``app.openapi_url`` (FastAPI's documented extension point)."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_scopes(complete(generate()), app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
