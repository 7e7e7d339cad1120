"""The generation engine's Prometheus metrics and its full queue's Retry-After, through the app
(HTTPX's ASGI transport) serving a generative model on the tiny Llama built locally: the
counters and histograms move with each answer and show at /metrics; a full queue answers 503
problem+json whose Retry-After is the engine's estimate."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import make_settings
from learnloop.app import create_app
from learnloop.config import GenerationSettings
from learnloop.families.causal_lm import GenerationEngine, GenerationRequest
from learnloop.families.causal_lm.engine import retry_after_seconds
from learnloop.models import NewModel
from learnloop.services import Services, build_services

pytest.importorskip("torch")

MAX_QUEUE = 3


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Iterator[Services]:
    """One request generating at a time (``max_batch`` 1), at most ``MAX_QUEUE`` waiting."""
    home = tmp_path_factory.mktemp("metrics") / "home"
    settings = make_settings(
        home,
        f"sqlite:///{home.parent / 'll.db'}",
        generation=GenerationSettings(max_batch=1, batch_wait_ms=0, max_queue=MAX_QUEUE),
    )
    built = build_services(settings)
    try:
        built.cache.serve()  # as an API replica does at start (the ASGI transport runs no lifespan)
        built.creation.create(
            NewModel("npc", task="generation", params={"base": str(tiny_llama_dir)}), None, actor="test"
        )
        yield built
    finally:
        built.close()


def engine_of(services: Services) -> GenerationEngine:
    (engine,) = services.generators.engines()
    return engine


def call(services: Services, *requests: tuple[str, str, dict[str, object] | None]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60) as http:
            return [await http.request(method, path, json=body) for method, path, body in requests]

    return asyncio.run(main())


def scrape(services: Services) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every learnloop_generation_* sample at /metrics, by name and labels."""
    (response,) = call(services, ("GET", "/metrics", None))
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name.startswith("learnloop_generation_")
        for sample in family.samples
    }


def generate(prompt: str, max_new_tokens: int) -> tuple[str, str, dict[str, object]]:
    return ("POST", "/v1/models/npc/generate", {"prompt": prompt, "max_new_tokens": max_new_tokens, "temperature": 0})


def test_the_engine_metrics_move_with_each_answer_and_show_at_metrics(services: Services) -> None:
    call(services, generate("warm up", 2))  # the engine (and its series) exist from here on
    base = (("base", engine_of(services).loaded.ref.name),)
    before = scrape(services)
    answers = call(services, generate("hello", 6), generate("The capital of France is", 9))
    after = scrape(services)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    bodies = [a.json() for a in answers]

    def moved(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(sorted(base + labels)))
        return after[key] - before.get(key, 0.0)

    assert moved("learnloop_generation_requests_total", ("outcome", "admitted")) == 2
    assert moved("learnloop_generation_requests_total", ("outcome", "full")) == 0
    assert moved("learnloop_generation_tokens_total", ("kind", "completion")) == sum(
        b["completion_tokens"] for b in bodies
    )
    assert moved("learnloop_generation_tokens_total", ("kind", "prompt")) == sum(b["prompt_tokens"] for b in bodies)
    assert moved("learnloop_generation_first_token_seconds_count") == 2
    assert moved("learnloop_generation_seconds_count") == 2
    assert moved("learnloop_generation_seconds_sum") > 0
    # one forward pass per token after the first; one request at a time here (max_batch 1)
    steps = sum(b["completion_tokens"] - 1 for b in bodies if b["finish_reason"] == "length")
    assert moved("learnloop_generation_batch_rows_count") >= steps
    assert moved("learnloop_generation_batch_rows_sum") == moved("learnloop_generation_batch_rows_count")
    assert after[("learnloop_generation_queued", base)] == 0
    assert after[("learnloop_generation_running", base)] == 0
    assert after[("learnloop_generation_adapters_loaded", base)] == 0  # version 1 is the base itself


def test_a_full_queue_answers_503_with_the_engines_retry_after_estimate(services: Services) -> None:
    call(services, generate("measure", 8))  # at least one answer: the estimate has a mean to use
    engine = engine_of(services)
    running = engine.submit(GenerationRequest(prompt="hold the engine", max_new_tokens=480))
    next(iter(running))  # it generates: the queue only fills from here
    waiting = [engine.submit(GenerationRequest(prompt=f"wait {i}", max_new_tokens=2)) for i in range(MAX_QUEUE)]
    try:
        before = scrape(services)
        (refused,) = call(services, generate("one too many", 4))
        assert engine.waiting == MAX_QUEUE and not running.done  # nothing moved meanwhile: the mean is as used
        expected = retry_after_seconds(MAX_QUEUE, engine.seconds_per_request, engine.max_batch)
        after = scrape(services)
    finally:
        running.cancel()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == str(expected)
    problem = refused.json()
    assert (problem["code"], problem["retry_after"]) == ("overloaded", expected)
    assert f"retry after {expected} s" in problem["detail"]
    base = (("base", engine.loaded.ref.name),)
    full = ("learnloop_generation_requests_total", tuple(sorted((*base, ("outcome", "full")))))
    assert after[full] - before.get(full, 0.0) == 1
    assert after[("learnloop_generation_queued", base)] == MAX_QUEUE
    assert after[("learnloop_generation_running", base)] == 1
    assert [w.result(60).finish_reason for w in waiting] == ["length"] * MAX_QUEUE  # the queue drains
