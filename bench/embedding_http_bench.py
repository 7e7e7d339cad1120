"""embedding-logreg over HTTP against a plain sentence-transformers + scikit-learn app.

Run from the repository root with the project's virtual environment (needs ``wrk``)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/embedding_http_bench.py

On this machine, in the same period: ``learnloop serve`` with an ``embedding-logreg`` model
(``learnloop init --family embedding-logreg`` on SST-2 sentences) and
``bench/plain_embedding_app.py serve`` (FastAPI, one sentence-transformers encode and one
LogisticRegression predict per request) trained on the same rows. wrk drives each at
``--connections`` (8) for ``--duration`` seconds, the two sides alternating for ``--rounds``
rounds, with single-text ``predict`` requests:

- ``cold``: texts neither side has seen (each run its own slice of SST-2; a run that sends more
  requests than its slice repeats texts, which the report counts), so learnloop's vector cache
  does not help and only batching can;
- ``repeat``: 200 texts over and over, as a popular query would be (learnloop's cache answers).

Then the retrain on ``--retrain-texts`` (10,000) new labelled texts: learnloop takes them as
feedback (``POST /feedback/batch``) and ``learnloop retrain --wait`` runs (curation, selection,
fit, the gate, registration); the plain script encodes all its rows (bootstrap + new) and fits
(``plain_embedding_app.py fit``, timed inside; its model load reported apart).

Every figure carries the CPU used by others on the machine (``other``, 100 = one core).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import serve_bench as sb

ROOT = Path(__file__).resolve().parent.parent
PLAIN = ROOT / "bench" / "plain_embedding_app.py"
MODEL = sb.MODEL
REPEATED = 200  # texts of the ``repeat`` load


def sst2_rows(min_words: int, data_dir: Path | None) -> list[tuple[str, str]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "bench" / "datasets.py")
    assert spec is not None and spec.loader is not None
    readers = importlib.util.module_from_spec(spec)
    sys.modules["bench_datasets"] = readers  # its dataclasses look their module up
    spec.loader.exec_module(readers)
    rows = readers.read_sst2((data_dir or readers.default_data_dir()) / "sst2" / "train.tsv.gz")
    seen: set[str] = set()
    out = []
    for text, label in rows:
        if len(text.split()) >= min_words and text not in seen:
            seen.add(text)
            out.append((text, label))
    random.Random(0).shuffle(out)
    return out


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def machine_other_pct(seconds: float = 3.0) -> float:
    """CPU used by every process on the machine over a few idle seconds (100 = one core)."""
    meter = sb.CpuMeter(None)
    with meter:
        time.sleep(seconds)
    return meter.other_pct


def wrk_run(
    label: str, server: sb.Server, path: str, texts: list[str], args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    lua = sb.write_lua(root / f"{label}.lua", path, [sb.json_body({"text": t}) for t in texts])
    r = sb.run_wrk(
        label, server, path, lua, connections=args.connections, threads=1, seconds=args.duration,
        sample_health=False,
    )  # fmt: skip
    return {
        "label": label, "rps": r.ok / r.seconds if r.seconds else 0.0, "sent_rps": r.rps,  # rps: 2xx answers
        "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "requests": r.requests,
        "non2xx": r.non2xx, "socket_errors": r.socket_errors, "distinct_texts": len(texts),
        "repeated_requests": max(0, r.requests - len(texts)), "server_cpu_pct": r.server_cpu_pct,
        "wrk_cpu_pct": r.load_cpu_pct, "other_cpu_pct": r.other_cpu_pct,
    }  # fmt: skip


def warm(port: int, path: str, texts: list[str]) -> None:
    for text in texts:
        status, body = sb.http_json(port, "POST", path, {"text": text}, timeout=60)
        if status != 200:
            raise sb.BenchError(f"warm-up predict answered {status}: {str(body)[:300]}")


def send_feedback(port: int, rows: list[tuple[str, str]]) -> int:
    stored = 0
    for i in range(0, len(rows), 500):
        items = [{"text": t, "label": lab} for t, lab in rows[i : i + 500]]
        status, body = sb.http_json(port, "POST", f"/v1/models/{MODEL}/feedback/batch", {"items": items}, timeout=120)
        if status != 200:
            raise sb.BenchError(f"feedback batch answered {status}: {str(body)[:500]}")
        stored += int(body["stored"])
    return stored


def run(args: argparse.Namespace, root: Path, servers: list[sb.Server]) -> dict[str, Any]:
    rows = sst2_rows(args.min_words, args.data_dir)
    runs = 2 * args.rounds
    needed = args.init_texts + args.retrain_texts + runs * args.cold_texts + REPEATED
    if len(rows) < needed:
        raise sb.BenchError(f"SST-2 has {len(rows)} distinct texts of >= {args.min_words} words; {needed} needed")
    init_rows = rows[: args.init_texts]
    new_rows = rows[args.init_texts : args.init_texts + args.retrain_texts]
    rest = [t for t, _ in rows[args.init_texts + args.retrain_texts :]]
    repeated, cold = rest[:REPEATED], rest[REPEATED:]
    init_csv = write_csv(root / "init.csv", init_rows)
    result: dict[str, Any] = {"idle_other_cpu_pct_before": machine_other_pct()}

    home = root / "learnloop"
    home.mkdir()
    url = f"sqlite:///{(home / 'learnloop.db').resolve()}"
    wall, _ = sb.run_cli([
        "init", "--home", str(home), "--database-url", url, "--model", MODEL, "--data", str(init_csv),
        "--text-column", "text", "--label-column", "label", "--family", "embedding-logreg",
        "--retrain-every", str(10**9),
    ])  # fmt: skip
    result["learnloop_init_s"] = wall
    sb.log(f"learnloop init (embedding-logreg, {len(init_rows)} rows) took {wall:.1f}s")
    ll_port = sb.free_port()
    ll = sb.Server("learnloop", sb.serve_argv(home, url, ll_port, sb.DEFAULT_LOOP), ll_port, root / "learnloop.log")
    plain_port = sb.free_port()
    plain_argv = [sys.executable, str(PLAIN), "serve", "--data", str(init_csv), "--port", str(plain_port)]
    plain = sb.Server("plain", plain_argv, plain_port, root / "plain.log")
    sides = {"learnloop": (ll, f"/v1/models/{MODEL}/predict"), "plain": (plain, "/predict")}
    for server, path in sides.values():
        servers.append(server)
        server.start(timeout=300)
        warm(server.port, path, cold[-20:])  # the first requests load torch's kernels
    sb.log("both servers ready")

    predict: list[dict[str, Any]] = []
    for k in range(args.rounds):
        order = ["learnloop", "plain"] if k % 2 == 0 else ["plain", "learnloop"]
        for j, name in enumerate(order):
            server, path = sides[name]
            start = (2 * k + j) * args.cold_texts
            predict.append({"side": name, "load": "cold", **wrk_run(
                f"{name}-cold-{k}", server, path, cold[start : start + args.cold_texts], args, root)})  # fmt: skip
        for name in order:
            server, path = sides[name]
            predict.append({"side": name, "load": "repeat", **wrk_run(
                f"{name}-repeat-{k}", server, path, repeated, args, root)})  # fmt: skip
    result["predict"] = predict

    stored = send_feedback(ll.port, new_rows)
    for server in (ll, plain):
        server.stop()
        servers.remove(server)
    before = sb.latest_version(url)
    meter = sb.CpuMeter(None)
    with meter:
        wall, output = sb.run_cli(["retrain", "--home", str(home), "--database-url", url, "--model", MODEL, "--wait"])
    after = sb.latest_version(url)
    if after["version"] == before["version"]:
        raise sb.BenchError(f"retrain registered no new version:\n{output}")
    result["learnloop_retrain"] = {
        "feedback_stored": stored, "wall_s": wall, "train_seconds": after["train_seconds"],
        "version": after["version"], "status": after["status"], "other_cpu_pct": meter.other_pct,
    }  # fmt: skip
    sb.log(f"learnloop retrain --wait on {stored} new texts: {wall:.1f}s (fit {after['train_seconds']:.1f}s)")

    all_csv = write_csv(root / "all.csv", init_rows + new_rows)
    meter = sb.CpuMeter(None)
    started = time.perf_counter()
    with meter:
        proc = subprocess.run([sys.executable, str(PLAIN), "fit", "--data", str(all_csv)], capture_output=True,
                              text=True, timeout=3600, cwd=ROOT)  # fmt: skip
    if proc.returncode != 0:
        raise sb.BenchError(f"plain fit failed:\n{proc.stderr[-2000:]}")
    plain_fit = json.loads(proc.stdout.strip().splitlines()[-1])
    result["plain_retrain"] = {**plain_fit, "wall_s": time.perf_counter() - started, "other_cpu_pct": meter.other_pct}
    sb.log(f"plain encode+fit on {plain_fit['texts']} texts: {plain_fit['encode_s'] + plain_fit['fit_s']:.1f}s "
           f"(+ {plain_fit['load_s']:.1f}s loading the model)")  # fmt: skip
    result["idle_other_cpu_pct_after"] = machine_other_pct()
    return result


def summary(result: dict[str, Any]) -> str:
    lines = [f"embedding-logreg over HTTP vs plain sentence-transformers + scikit-learn ({os.cpu_count()} CPUs); "
             f"others' CPU when idle: {result['idle_other_cpu_pct_before']:.0f}% before, "
             f"{result['idle_other_cpu_pct_after']:.0f}% after (100 = one core)"]  # fmt: skip
    for load in ("cold", "repeat"):
        for side in ("learnloop", "plain"):
            got = [r for r in result["predict"] if r["side"] == side and r["load"] == load]
            rps = statistics.median(r["rps"] for r in got)
            p99 = statistics.median(r["p99_ms"] for r in got)
            lines.append(
                f"  {load:<6} {side:<9} {rps:7.1f} answered/s  p99 {p99:7.1f} ms  (runs: "
                + ", ".join(f"{r['rps']:.0f}/s, {r['non2xx']} refused, other {r['other_cpu_pct']:.0f}%" for r in got)
                + ")"
            )
        ratio = statistics.median(r["rps"] for r in result["predict"] if r["side"] == "learnloop" and r["load"] == load)
        ratio /= statistics.median(r["rps"] for r in result["predict"] if r["side"] == "plain" and r["load"] == load)
        lines.append(f"  {load}: learnloop / plain throughput (2xx answers) {ratio:.2f}x")
    ll, pl = result["learnloop_retrain"], result["plain_retrain"]
    lines.append(f"  retrain on {ll['feedback_stored']} new texts: learnloop retrain --wait {ll['wall_s']:.1f}s "
                 f"(fit {ll['train_seconds']:.1f}s, version {ll['version']} {ll['status']}, "
                 f"other {ll['other_cpu_pct']:.0f}%); "
                 f"plain encode+fit of {pl['texts']} texts {pl['encode_s'] + pl['fit_s']:.1f}s "
                 f"(+ {pl['load_s']:.1f}s model load, other {pl['other_cpu_pct']:.0f}%)")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=2, help="alternations of the two sides")
    p.add_argument("--init-texts", type=int, default=1_000, help="the bootstrap data of both sides")
    p.add_argument("--retrain-texts", type=int, default=10_000)
    p.add_argument("--cold-texts", type=int, default=4_000, help="distinct texts per cold run")
    p.add_argument("--min-words", type=int, default=5, help="SST-2 phrases shorter than this are left out")
    p.add_argument("--data-dir", type=Path, help="the shared datasets folder (default: found beside the checkout)")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    servers: list[sb.Server] = []
    with tempfile.TemporaryDirectory(prefix="llembed_") as tmp, sb.signals_as_exceptions():
        try:
            result = run(args, Path(tmp), servers)
        finally:
            for server in servers:
                server.stop()
    text = summary(result)
    print(text)
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **result}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
