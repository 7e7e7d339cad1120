"""The stream events' JSON Schema in the repository is the one the models make."""

from __future__ import annotations

import json
from pathlib import Path

from learnloop.streams import stream_event_schema

SCHEMA = Path(__file__).parents[2] / "docs" / "schemas" / "stream-event.json"
REGENERATE = "json.dumps(learnloop.streams.stream_event_schema(), indent=2, sort_keys=True) plus a newline"


def test_the_stream_event_schema_in_docs_matches_the_models() -> None:
    assert json.loads(SCHEMA.read_text()) == stream_event_schema(), f"regenerate it: {REGENERATE}"


def test_the_schema_names_every_event_type_and_the_http_bodies() -> None:
    schema = stream_event_schema()
    assert set(schema["discriminator"]["mapping"]) == {"feedback", "prediction", "generation"}
    assert {"FeedbackCreate", "PredictRequest", "GenerationCreate"} <= set(schema["$defs"])
