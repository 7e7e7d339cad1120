"""The OpenAPI document a client is generated from and /docs shows: every operation named,
described, its errors declared as problem+json, its request body with examples that validate,
the admin key as a security scheme on exactly the admin routes."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from conftest import make_settings
from learnloop.api import routes as routes_package
from learnloop.api.deps import PUBLIC_PATHS, declared_needs
from learnloop.api.examples import CREATE_MODEL_JSON, CREATE_MODEL_UPLOAD
from learnloop.api.model_schemas import ModelCreate, ModelUpload
from learnloop.api.openapi import PROBLEM_MEDIA_TYPE, PROBLEM_REF, operations
from learnloop.app import create_app
from learnloop.services import build_services

KEY_SECURITY = [{"ApiKey": []}, {"Bearer": []}]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    tmp = tmp_path_factory.mktemp("openapi")
    services = build_services(make_settings(tmp / "home", f"sqlite:///{tmp}/ll.db"))
    try:
        yield create_app(services=services)
    finally:
        services.close()


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def api_routes() -> list[APIRoute]:
    """The routes of every module of ``learnloop.api.routes`` (the app includes each router as
    it is, with no prefix of its own)."""
    found = []
    for info in pkgutil.iter_modules(routes_package.__path__):
        router = importlib.import_module(f"{routes_package.__name__}.{info.name}").router
        found += [r for r in router.routes if isinstance(r, APIRoute) and r.include_in_schema]
    return found


def operation_of(spec: dict[str, Any], route: APIRoute) -> dict[str, Any]:
    (method,) = route.methods
    operation: dict[str, Any] = spec["paths"][route.path_format][method.lower()]
    return operation


def test_every_operation_has_a_readable_unique_id_and_a_description(spec: dict[str, Any]) -> None:
    ids = []
    for path, method, operation in operations(spec):
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation.get("operationId", "")), (method, path)
        assert len(operation.get("description", "")) > 20, f"{method.upper()} {path} has no description"
        assert operation.get("tags"), (method, path)
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)) > 40
    # the names a generated client's functions get, for the routes people call most
    assert {"predict", "predict_batch", "record_feedback", "record_feedback_batch", "get_model", "ask"} <= set(ids)
    assert {"promote_version", "rollback_model", "start_rollout", "promote_rollout", "create_model"} <= set(ids)


def test_every_error_response_is_a_problem(spec: dict[str, Any]) -> None:
    declared = 0
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")) or (path, status) == ("/ready", "503"):  # /ready's 503 is its report
                continue
            assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (method, path, status)
            media = response["content"][PROBLEM_MEDIA_TYPE]
            assert media["schema"] == {"$ref": PROBLEM_REF}
            assert media["example"]["status"] == int(status)
            declared += 1
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in operation["responses"], (method, path)
        if "requestBody" in operation:
            assert {"408", "413"} <= set(operation["responses"]), (method, path)
    assert declared > 200
    schemas = spec["components"]["schemas"]
    assert {"type", "title", "status", "detail", "code"} <= set(schemas["Problem"]["required"])
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 body, which is never sent


def test_domain_errors_are_declared_where_they_happen(spec: dict[str, Any]) -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in operations(spec)}
    assert {"404", "409", "422"} <= set(by_id["predict"]["responses"])
    assert "409" in by_id["record_feedback"]["responses"]  # a feedback_id reused for another event
    assert {"409", "415", "413"} <= set(by_id["create_model"]["responses"])
    assert "404" not in by_id["list_models"]["responses"]
    assert not any(status.startswith("4") for status in by_id["health"]["responses"])


def test_the_document_has_every_route(spec: dict[str, Any]) -> None:
    documented = {(method, path) for path, method, _ in operations(spec)}
    assert documented == {(m.lower(), r.path_format) for r in api_routes() for m in r.methods}


def test_the_key_is_a_security_scheme_of_exactly_the_routes_that_need_one(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key: a scoped key (learnloop keys create) or the admin key (LEARNLOOP_API_KEY).",
    }
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    for route in api_routes():
        operation = operation_of(spec, route)
        needs = declared_needs(route)
        if route.path in PUBLIC_PATHS:
            assert not needs and "security" not in operation and "401" not in operation["responses"], route.path
            continue
        assert len(needs) == 1, route.path
        assert operation["security"] == KEY_SECURITY, route.path
        assert {"401", "403", "429"} <= set(operation["responses"]), route.path
        assert operation["x-scope"] == needs[0].scope.value
        assert f"`{needs[0].scope}` scope" in operation["description"]
        # the key is not also a header parameter of each operation
        assert not any(p["in"] == "header" for p in operation.get("parameters", [])), route.path


def test_every_request_body_has_examples_that_validate(spec: dict[str, Any]) -> None:
    bodies = 0
    for route in api_routes():
        operation = operation_of(spec, route)
        if "requestBody" not in operation:
            continue
        bodies += 1
        for media_type, media in operation["requestBody"]["content"].items():
            assert media.get("examples"), f"{route.path} ({media_type}) has no example"
            for example in media["examples"].values():
                assert example["summary"]
                if route.body_field is not None:
                    TypeAdapter(route.body_field.field_info.annotation).validate_python(example["value"])
    assert bodies >= 20
    # POST /v1/models reads its two bodies by hand (api/model_schemas.py)
    for example in CREATE_MODEL_JSON.values():
        ModelCreate.model_validate(example["value"]).request()
    for example in CREATE_MODEL_UPLOAD.values():
        fields = {k: v for k, v in example["value"].items() if k != "file"}
        ModelUpload.model_validate(fields).request(Path("reviews.csv"), "reviews.csv")
