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


@pytest.mark.parametrize(
    "name", ["statement_timeout_seconds", "ready_stall_seconds", "live_stall_seconds", "shutdown_timeout_seconds"]
)
def test_timeouts_must_be_positive(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**{name: 0.0})
    assert refused.value.field == name


def test_the_environment_sets_the_prediction_log_and_the_statement_timeout() -> None:
    settings = Settings.from_env({"LEARNLOOP_PREDICTION_LOG": "durable", "LEARNLOOP_STATEMENT_TIMEOUT": "2.5"})
    assert (settings.prediction_log, settings.statement_timeout_seconds) == ("durable", 2.5)
    assert Settings.from_env({}).statement_timeout_seconds == 15.0


def test_the_environment_chooses_where_fits_run() -> None:
    assert (Settings().training_runner, Settings().ray_address, Settings().ray_num_cpus) == ("process", None, 1.0)
    env = {"LEARNLOOP_TRAINING_RUNNER": "ray", "LEARNLOOP_RAY_ADDRESS": "10.0.0.5:6379", "LEARNLOOP_RAY_NUM_CPUS": "2"}
    settings = Settings.from_env(env)
    assert (settings.training_runner, settings.ray_address, settings.ray_num_cpus) == ("ray", "10.0.0.5:6379", 2.0)
    with pytest.raises(ValidationError) as refused:
        Settings.from_env({"LEARNLOOP_TRAINING_RUNNER": "kubernetes"})
    assert refused.value.field == "training_runner" and "process or ray" in str(refused.value)
    for wrong in ("0", "many"):
        with pytest.raises(ValidationError):
            Settings.from_env({"LEARNLOOP_RAY_NUM_CPUS": wrong})


def test_the_environment_sets_the_torch_threads_of_generation_and_of_generative_fits() -> None:
    assert (Settings().generation.threads, Settings().generation.train_threads) == (1, 1)
    settings = Settings.from_env({"LEARNLOOP_GENERATION_THREADS": "2", "LEARNLOOP_TRAINING_THREADS": "2"})
    assert (settings.generation.threads, settings.generation.train_threads) == (2, 2)
    for wrong in ("0", "two"):
        with pytest.raises(ValidationError, match=r"LEARNLOOP_TRAINING_THREADS|train_threads"):
            Settings.from_env({"LEARNLOOP_TRAINING_THREADS": wrong})


def test_the_environment_sets_how_many_requests_share_a_forward_pass() -> None:
    assert Settings().generation.max_batch == 8
    assert Settings.from_env({"LEARNLOOP_GENERATION_MAX_BATCH": "32"}).generation.max_batch == 32
    for wrong in ("0", "many"):
        with pytest.raises(ValidationError, match=r"LEARNLOOP_GENERATION_MAX_BATCH|max_batch"):
            Settings.from_env({"LEARNLOOP_GENERATION_MAX_BATCH": wrong})
