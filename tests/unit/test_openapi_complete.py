"""``api.openapi.complete``: the edge's problem responses and the examples, added to FastAPI's
document from each operation alone."""

from __future__ import annotations

from typing import Any

from learnloop.api.openapi import PROBLEM_MEDIA_TYPE, PROBLEM_REF, complete

FASTAPI_422 = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}


def document() -> dict[str, Any]:
    optional_body = {"anyOf": [{"$ref": "#/components/schemas/ActionRequest"}, {"type": "null"}]}
    return {
        "openapi": "3.1.0",
        "paths": {
            "/v1/models/{model}/retrain": {
                "post": {
                    "operationId": "retrain",
                    "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"content": {"application/json": {"schema": optional_body}}},
                    "security": [{"ApiKey": []}, {"Bearer": []}],
                    "responses": {"202": {"description": "Accepted"}, "422": FASTAPI_422},
                }
            },
            "/v1/models": {"get": {"operationId": "list_models", "responses": {"200": {"description": "OK"}}}},
            "/health": {"get": {"operationId": "health", "responses": {"200": {"description": "OK"}}}},
        },
        "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}, "ActionRequest": {}}},
    }


def test_an_admin_route_with_a_body_gets_every_edge_problem_and_its_examples() -> None:
    operation = complete(document())["paths"]["/v1/models/{model}/retrain"]["post"]
    assert set(operation["responses"]) == {"202", "401", "403", "408", "413", "422", "429", "503"}
    for status in ("401", "403", "408", "413", "422", "429", "503"):
        media = operation["responses"][status]["content"]
        assert list(media) == [PROBLEM_MEDIA_TYPE] and media[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": PROBLEM_REF}
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples and all("reason" in e["value"] or e["value"] == {} for e in examples.values())
    assert operation["summary"] == "Retrain"


def test_a_route_without_inputs_gets_only_the_edge_guards_problems_and_a_probe_none() -> None:
    """The guard answers any route 422 (a NUL or a repeated query parameter) and 503."""
    paths = complete(document())["paths"]
    assert set(paths["/v1/models"]["get"]["responses"]) == {"200", "422", "503"}
    assert paths["/v1/models"]["get"]["summary"] == "List models"
    assert set(paths["/health"]["get"]["responses"]) == {"200"}


def test_the_problem_schema_replaces_fastapis_validation_error() -> None:
    schemas = complete(document())["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Problem"]["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/ProblemItem"
    }
    assert set(schemas["ProblemItem"]["required"]) == {"field", "message", "type"}


def test_the_shared_responses_are_copied_into_the_document() -> None:
    first, second = complete(document()), complete(document())
    first["paths"]["/v1/models"]["get"]["responses"]["503"]["description"] = "edited"
    assert second["paths"]["/v1/models"]["get"]["responses"]["503"]["description"] != "edited"
