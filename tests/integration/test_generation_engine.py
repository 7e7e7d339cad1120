"""The generation engine on a tiny locally built Llama: greedy output equals transformers'
``generate`` (alone, batched, and joining a running batch), seeded sampling is reproducible
whatever shares the batch, streaming, cancellation, a bounded queue, adapters by name, and a
clean close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from learnloop.errors import ModelUnavailableError, NotFoundError, OverloadedError, ValidationError
from learnloop.families.causal_lm import (
    BaseModelRef,
    GenerationEngine,
    GenerationRequest,
    LoadedBase,
    attach_adapter,
    load_base,
    resolve_base,
    save_adapter,
)

torch = pytest.importorskip("torch")

PROMPTS = ["hello", "The capital of France is", "Les élèves étudient", "x", "What is the weather like today?"]


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedBase:
    return load_base(resolve_base(str(tiny_llama_dir), tmp_path_factory.mktemp("bases")), threads=1)


@pytest.fixture
def engine(loaded: LoadedBase) -> Iterator[GenerationEngine]:
    with GenerationEngine(loaded, max_batch=8, batch_wait_ms=50) as built:
        yield built


def reference_ids(loaded: LoadedBase, prompt: str, max_new_tokens: int, model: Any = None) -> list[int]:
    """What ``model.generate(do_sample=False)`` answers to ``prompt`` as a single user message."""
    tokenizer = loaded.tokenizer
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = (model or loaded.model).generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return list(out[0, ids["input_ids"].shape[1] :].tolist())


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("learnloop-generate-")]


def test_greedy_output_equals_generate_alone(loaded: LoadedBase, engine: GenerationEngine) -> None:
    result = engine.submit(GenerationRequest(prompt=PROMPTS[1], max_new_tokens=24)).result(60)
    assert list(result.token_ids) == reference_ids(loaded, PROMPTS[1], 24)
    assert result.prompt_tokens == len(
        loaded.tokenizer(
            loaded.tokenizer.apply_chat_template(
                [{"role": "user", "content": PROMPTS[1]}], add_generation_prompt=True, tokenize=False
            ),
            add_special_tokens=False,
        )["input_ids"]
    )


def test_left_padding_in_a_batch_does_not_change_greedy_output(loaded: LoadedBase, engine: GenerationEngine) -> None:
    handles = [engine.submit(GenerationRequest(prompt=p, max_new_tokens=16 + 4 * i)) for i, p in enumerate(PROMPTS)]
    for i, (prompt, handle) in enumerate(zip(PROMPTS, handles, strict=True)):
        assert list(handle.result(60).token_ids) == reference_ids(loaded, prompt, 16 + 4 * i), prompt


def test_requests_joining_a_running_batch_get_the_same_greedy_output(loaded: LoadedBase) -> None:
    with GenerationEngine(loaded, max_batch=4, batch_wait_ms=0) as engine:
        first = engine.submit(GenerationRequest(prompt=PROMPTS[4], max_new_tokens=200))
        next(iter(first))  # it is generating
        late = [engine.submit(GenerationRequest(prompt=p, max_new_tokens=20)) for p in PROMPTS[:3]]
        for prompt, handle in zip(PROMPTS[:3], late, strict=True):
            assert list(handle.result(60).token_ids) == reference_ids(loaded, prompt, 20), prompt
        assert list(first.result(60).token_ids) == reference_ids(loaded, PROMPTS[4], 200)


def test_a_seed_gives_the_same_sample_whatever_shares_the_batch(engine: GenerationEngine) -> None:
    def sampled(seed: int) -> GenerationRequest:
        return GenerationRequest(prompt="hello", max_new_tokens=30, temperature=1.0, top_p=0.9, seed=seed)

    alone = engine.submit(sampled(7)).result(60)
    crowd = [
        engine.submit(GenerationRequest(prompt=p, max_new_tokens=25, temperature=0.8, seed=i))
        for i, p in enumerate(PROMPTS)
    ]
    amid = engine.submit(sampled(7))
    other_seed = engine.submit(sampled(8))
    assert amid.result(60).token_ids == alone.token_ids
    assert other_seed.result(60).token_ids != alone.token_ids
    for handle in crowd:
        handle.result(60)


def test_max_new_tokens_ends_with_finish_reason_length(engine: GenerationEngine) -> None:
    result = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=5)).result(60)
    assert (result.finish_reason, result.completion_tokens, len(result.token_ids)) == ("length", 5, 5)


def test_an_eos_token_ends_with_finish_reason_stop(loaded: LoadedBase, tiny_llama_dir: Path, tmp_path: Path) -> None:
    greedy = reference_ids(loaded, "hello", 10)
    stop_token = greedy[3]
    fresh = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    fresh.model.generation_config.eos_token_id = [2, stop_token]
    with GenerationEngine(fresh) as engine:
        result = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=10)).result(60)
    expected = greedy[: greedy.index(stop_token) + 1]
    assert (result.finish_reason, list(result.token_ids)) == ("stop", expected)
    assert result.text == fresh.tokenizer.decode(expected[:-1], skip_special_tokens=True)


def test_streamed_deltas_concatenate_to_the_final_text(engine: GenerationEngine) -> None:
    handle = engine.submit(GenerationRequest(prompt="Les élèves", max_new_tokens=40, temperature=1.0, seed=3))
    deltas = list(handle)
    result = handle.result(60)
    assert "".join(deltas) == result.text and len(deltas) > 1
    assert all(deltas)


def test_streaming_works_from_an_asyncio_loop(engine: GenerationEngine) -> None:
    async def consume() -> tuple[list[str], str]:
        handle = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=30, temperature=1.0, seed=1))
        deltas = [delta async for delta in handle]
        return deltas, (await handle.wait()).text

    deltas, text = asyncio.run(consume())
    assert "".join(deltas) == text and len(deltas) > 1


def test_messages_go_through_the_chat_template(loaded: LoadedBase, engine: GenerationEngine) -> None:
    as_prompt = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=12)).result(60)
    as_messages = engine.submit(
        GenerationRequest(messages=[{"role": "user", "content": "hello"}], max_new_tokens=12)
    ).result(60)
    with_system = engine.submit(
        GenerationRequest(
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
            max_new_tokens=12,
        )
    ).result(60)
    assert as_messages.token_ids == as_prompt.token_ids
    assert with_system.prompt_tokens > as_prompt.prompt_tokens


def test_cancel_stops_a_running_request_and_frees_its_slot(engine: GenerationEngine, loaded: LoadedBase) -> None:
    with GenerationEngine(loaded, max_batch=1, max_queue=1, batch_wait_ms=0) as small:
        running = small.submit(GenerationRequest(prompt="hello", max_new_tokens=480))
        next(iter(running))
        queued = small.submit(GenerationRequest(prompt="x", max_new_tokens=8))
        with pytest.raises(OverloadedError, match="full") as refused:
            small.submit(GenerationRequest(prompt="x"))
        assert refused.value.retry_after > 0
        running.cancel()
        cancelled = running.result(60)
        assert cancelled.finish_reason == "cancelled" and 0 < cancelled.completion_tokens < 480
        assert queued.result(60).finish_reason == "length"  # the slot went to the next request


def test_cancelling_a_waiting_request_frees_its_place_in_the_queue(loaded: LoadedBase) -> None:
    with GenerationEngine(loaded, max_batch=1, max_queue=1, batch_wait_ms=0) as small:
        running = small.submit(GenerationRequest(prompt="hello", max_new_tokens=480))
        next(iter(running))
        waiting = small.submit(GenerationRequest(prompt="x", max_new_tokens=8))
        waiting.cancel()
        assert waiting.result(1).finish_reason == "cancelled"
        replacement = small.submit(GenerationRequest(prompt="x", max_new_tokens=8))
        running.cancel()
        assert replacement.result(60).completion_tokens == 8


def test_close_fails_what_is_pending_and_leaves_no_thread(loaded: LoadedBase) -> None:
    before = engine_threads()
    small = GenerationEngine(loaded, max_batch=1, batch_wait_ms=0)
    assert len(engine_threads()) == len(before) + 1
    running = small.submit(GenerationRequest(prompt="hello", max_new_tokens=480))
    next(iter(running))
    waiting = small.submit(GenerationRequest(prompt="x"))
    small.close()
    assert engine_threads() == before
    with pytest.raises(ModelUnavailableError, match="closed before this request ran"):
        waiting.result(1)
    with pytest.raises(ModelUnavailableError, match="closed while this request was generating"):
        running.result(1)
    with pytest.raises(ModelUnavailableError, match="is closed"):
        small.submit(GenerationRequest(prompt="x"))
    small.close()  # idempotent


def test_bad_requests_are_refused_before_they_queue(engine: GenerationEngine) -> None:
    with pytest.raises(ValidationError, match="exactly one of prompt and messages"):
        GenerationRequest()
    with pytest.raises(ValidationError, match="top_p"):
        GenerationRequest(prompt="x", top_p=0.0)
    with pytest.raises(ValidationError, match="max_new_tokens"):
        GenerationRequest(prompt="x", max_new_tokens=0)
    with pytest.raises(NotFoundError, match="adapter 'nope' is not loaded"):
        engine.submit(GenerationRequest(prompt="x", adapter="nope"))


def test_a_base_without_chat_template_takes_raw_prompts(tiny_llama_dir: Path, tmp_path: Path) -> None:
    plain = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    plain.tokenizer.chat_template = None
    with GenerationEngine(plain) as engine:
        result = engine.submit(GenerationRequest(prompt="The capital", max_new_tokens=12)).result(60)
        with pytest.raises(ValidationError, match="no chat template"):
            engine.submit(GenerationRequest(messages=[{"role": "user", "content": "x"}])).result(60)
    ids = plain.tokenizer("The capital", return_tensors="pt")
    with torch.inference_mode():
        out = plain.model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert list(result.token_ids) == out[0, ids["input_ids"].shape[1] :].tolist()
    assert result.prompt_tokens == ids["input_ids"].shape[1]


def test_each_request_is_served_by_the_adapter_it_names(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    ref = resolve_base(str(tiny_llama_dir), tmp_path)
    for seed, name in enumerate(["champion", "challenger"], start=1):
        trainer = load_base(ref)
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        save_adapter(get_peft_model(trainer.model, config), tmp_path / name, base=trainer)
    served = load_base(ref)
    base_only = reference_ids(served, "hello", 20)
    for name in ["champion", "challenger"]:
        attach_adapter(served, name, tmp_path / name)
    expected = {}
    for name in ["champion", "challenger"]:
        served.model.set_adapter(name)
        expected[name] = reference_ids(served, "hello", 20)
    assert expected["champion"] != expected["challenger"] != base_only
    with GenerationEngine(served, batch_wait_ms=50) as engine:
        names = ["champion", None, "challenger", "champion", None]
        handles = [engine.submit(GenerationRequest(prompt="hello", max_new_tokens=20, adapter=n)) for n in names]
        for name, handle in zip(names, handles, strict=True):
            want = base_only if name is None else expected[name]
            assert list(handle.result(60).token_ids) == want, name


def test_every_forward_pass_runs_on_the_engine_thread(tiny_llama_dir: Path, tmp_path: Path) -> None:
    own = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    seen: set[str] = set()
    hook = own.model.register_forward_pre_hook(lambda module, args: seen.add(threading.current_thread().name))
    try:

        async def from_a_loop() -> str:
            with GenerationEngine(own) as engine:
                return (await engine.submit(GenerationRequest(prompt="hello", max_new_tokens=4)).wait()).text

        asyncio.run(from_a_loop())
    finally:
        hook.remove()
    assert seen == {f"learnloop-generate-{own.ref.name}"}


def test_adapters_attach_and_detach_between_batches_of_a_running_engine(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    ref = resolve_base(str(tiny_llama_dir), tmp_path)
    trainer = load_base(ref)
    torch.manual_seed(3)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    tuned = get_peft_model(trainer.model, config).eval()
    save_adapter(tuned, tmp_path / "champion", base=trainer)
    with_adapter = reference_ids(trainer, "hello", 20, model=tuned)

    served = load_base(ref)
    base_only = reference_ids(served, "hello", 20)
    assert with_adapter != base_only
    with GenerationEngine(served, batch_wait_ms=0) as engine:
        running = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=60))
        next(iter(running))
        engine.attach_adapter("champion", tmp_path / "champion", timeout=60)
        assert running.done  # the running batch finished first
        assert running.result(1).finish_reason in ("stop", "length")
        tuned_answer = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=20, adapter="champion"))
        base_answer = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=20))
        assert list(tuned_answer.result(60).token_ids) == with_adapter
        assert list(base_answer.result(60).token_ids) == base_only
        engine.detach_adapter("champion", timeout=60)
        with pytest.raises(NotFoundError):
            engine.submit(GenerationRequest(prompt="hello", adapter="champion"))
        with pytest.raises(NotFoundError):
            engine.detach_adapter("champion", timeout=60)
        assert (
            list(engine.submit(GenerationRequest(prompt="hello", max_new_tokens=20)).result(60).token_ids) == base_only
        )


def two_adapters(tiny_llama_dir: Path, tmp_path: Path) -> BaseModelRef:
    """Random LoRA adapters ``champion`` and ``challenger`` of the tiny base saved in ``tmp_path``."""
    from peft import LoraConfig, get_peft_model

    ref = resolve_base(str(tiny_llama_dir), tmp_path)
    for name, seed in (("champion", 3), ("challenger", 4)):
        trainer = load_base(ref)
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        save_adapter(get_peft_model(trainer.model, config).eval(), tmp_path / name, base=trainer)
    return ref


def test_the_adapter_that_served_last_detaches_cleanly_and_the_other_still_serves(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    """A rollback detaches the challenger, often the adapter of the last batch (PEFT's active
    one): no warning (an error here), and the champion's adapter answers as before."""
    ref = two_adapters(tiny_llama_dir, tmp_path)
    with GenerationEngine(load_base(ref), batch_wait_ms=0) as engine:
        engine.attach_adapter("champion", tmp_path / "champion", timeout=60)
        engine.attach_adapter("challenger", tmp_path / "challenger", timeout=60)
        request = GenerationRequest(prompt="hello", max_new_tokens=20, adapter="champion")
        champion = list(engine.submit(request).result(60).token_ids)
        challenger = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=20, adapter="challenger"))
        assert list(challenger.result(60).token_ids) != champion
        engine.detach_adapter("challenger", timeout=60)
        assert set(engine.loaded.adapters) == {"champion"}
        assert list(engine.submit(request).result(60).token_ids) == champion


def test_a_detach_waits_for_the_requests_already_queued_for_its_adapter(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """A rollback switches the route, then detaches the challenger: requests that picked the
    challenger just before, still queued behind another adapter's batch, get their answers."""
    ref = two_adapters(tiny_llama_dir, tmp_path)
    with GenerationEngine(load_base(ref), batch_wait_ms=0) as engine:
        engine.attach_adapter("champion", tmp_path / "champion", timeout=60)
        engine.attach_adapter("challenger", tmp_path / "challenger", timeout=60)
        running = engine.submit(GenerationRequest(prompt="hello", max_new_tokens=200, adapter="champion"))
        next(iter(running))  # the champion's batch is generating
        queued = [
            engine.submit(GenerationRequest(prompt=p, max_new_tokens=10, adapter="challenger")) for p in ("hi", "yo")
        ]
        detached = threading.Event()

        def detach() -> None:
            engine.detach_adapter("challenger", timeout=120)
            detached.set()

        worker = threading.Thread(target=detach)
        worker.start()
        results = [handle.result(120) for handle in queued]
        worker.join(120)
        assert detached.is_set()
        assert all(r.finish_reason in ("stop", "length") and r.completion_tokens > 0 for r in results)
        assert running.result(1).finish_reason in ("stop", "length")
        assert set(engine.loaded.adapters) == {"champion"}
        with pytest.raises(NotFoundError):
            engine.submit(GenerationRequest(prompt="hello", adapter="challenger"))


def test_offline_sampled_answers_are_reproducible_by_seed_and_differ_between_samples(loaded: LoadedBase) -> None:
    """The gate's judge asks each version for several sampled answers per held-out prompt with
    the same seeds: a seed gives the same answers again, another seed others, and each prompt
    gets its own ``samples`` answers (not one answer repeated)."""
    from learnloop.families.causal_lm.scoring import greedy_answers, sampled_answers

    conversations = [[{"role": "user", "content": p}] for p in PROMPTS[:3]]
    first = sampled_answers(loaded, None, conversations, samples=4, temperature=1.0, seed=7, max_new_tokens=8)
    again = sampled_answers(loaded, None, conversations, samples=4, temperature=1.0, seed=7, max_new_tokens=8)
    other = sampled_answers(loaded, None, conversations, samples=4, temperature=1.0, seed=8, max_new_tokens=8)
    assert [len(answers) for answers in first] == [4, 4, 4]
    assert first == again and first != other
    assert all(len(set(answers)) > 1 for answers in first)
    greedy = greedy_answers(loaded, None, conversations, max_new_tokens=8)
    assert greedy == greedy_answers(loaded, None, conversations, max_new_tokens=8) and len(greedy) == 3
