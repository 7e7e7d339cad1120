"""Settings refuse values that would make the server misbehave, and read the environment."""

from __future__ import annotations

import pytest

from learnloop.config import Settings
from learnloop.errors import ValidationError


def test_the_prediction_log_mode_is_buffered_or_durable() -> None:
    assert Settings().prediction_log == "buffered"
    assert Settings(prediction_log="durable").prediction_log == "durable"
    with pytest.raises(ValidationError) as refused:
        Settings(prediction_log="sometimes")
    assert refused.value.field == "prediction_log"


@pytest.mark.parametrize("name", ["statement_timeout_seconds", "ready_stall_seconds", "shutdown_timeout_seconds"])
def test_timeouts_must_be_positive(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**{name: 0.0})
    assert refused.value.field == name


def test_the_environment_sets_the_prediction_log_and_the_statement_timeout() -> None:
    settings = Settings.from_env({"LEARNLOOP_PREDICTION_LOG": "durable", "LEARNLOOP_STATEMENT_TIMEOUT": "2.5"})
    assert (settings.prediction_log, settings.statement_timeout_seconds) == ("durable", 2.5)
    assert Settings.from_env({}).statement_timeout_seconds == 15.0
