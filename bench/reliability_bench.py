"""Reliability benchmark of learnloop: memory under sustained load, and what a SIGKILL loses.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/reliability_bench.py                      # SQLite, both parts
    .venv/bin/python bench/reliability_bench.py --only soak --predictions 400000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

* **soak**: one `learnloop serve` driven by wrk (16 connections) until ``--predictions`` have
  been served, in segments; after each segment the server's resident memory (VmRSS) and its
  prediction-log backlog are sampled. Memory must stay flat once warm. Rows logged are then
  checked against predictions served, as in serve_bench.
* **join** (PostgreSQL only): the online-accuracy join (``judged_answers``) on 1M predictions
  and 250k feedback events loaded in bulk, timed with statistics gathered while the tables
  were empty (stale) and after ``ANALYZE`` (fresh).
* **kill**: Python clients stream predictions (recording when each answer arrived); the
  server is SIGKILLed mid-stream, restarted, and every answered id is looked up. For the
  buffered log it reports the answers lost and the window they fall in (how long before the
  kill the oldest lost answer arrived); the durable log must lose none.

Servers, temporary homes and PostgreSQL databases are cleaned up as in serve_bench (whose
helpers this script uses). Prints a table and writes JSON (bench/results/reliability-*.json).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import serve_bench as sb

SEGMENT_SECONDS = 10


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(ctx: sb.Context, name: str, *extra: str, home: Path | None = None, url: str = "") -> sb.Served:
    if home is None:
        args = ["--no-header", "--text-column", "0", "--label-column", "1", "--retrain-every", str(10**9)]
        home, url, _ = sb.init_home(ctx, name, sb.DATA / "yelp_labelled.txt", args)
    port = sb.free_port()
    argv = sb.serve_argv(home, url, port, sb.DEFAULT_LOOP, *extra)
    server = sb.Server(name, argv, port, ctx.res.root / f"{name}-{port}.log")
    ctx.res.servers.append(server)
    server.start()
    return sb.Served(server, home, url, rows_before=sb.count_rows(url, "predictions"))


def soak(ctx: sb.Context) -> dict[str, Any]:
    lua = sb.predict_lua(ctx)
    served = start_server(ctx, "soak")
    pid = served.server.proc.pid if served.server.proc else 0
    samples = [{"served": 0, "rss_mb": rss_mb(pid), "backlog": 0}]
    total = 0
    while total < ctx.args.predictions:
        run = served.load(ctx, "predict c=16", sb.PREDICT, lua, connections=16, seconds=SEGMENT_SECONDS)
        total += run.ok
        health = sb.http_json(served.server.port, "GET", "/health")[1]
        samples.append({"served": total, "rss_mb": rss_mb(pid), "backlog": health["prediction_log_backlog"]})
        sb.log(f"soak: {total:,} served, RSS {samples[-1]['rss_mb']:.0f} MB")
    served.scrape()
    sb.stop_served(ctx, served)
    check = sb.rows_check(served)
    warm = samples[min(2, len(samples) - 1)]["rss_mb"]
    return {"samples": samples, "rss_warm_mb": warm, "rss_end_mb": samples[-1]["rss_mb"], "rows_check": check}


@dataclass
class Stream:
    url: str
    answered: list[tuple[str, float]] = field(default_factory=list)  # (id, monotonic time of the answer)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    response = http.post(sb.PREDICT, json={"text": f"client {n} review {i}: it works well"})
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    self.answered.append((response.json()["prediction_id"], time.monotonic()))


def logged(url: str, ids: list[str]) -> set[str]:
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url)
    found: set[str] = set()
    try:
        with engine.connect() as conn:
            q = text("SELECT id FROM predictions WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
            for start in range(0, len(ids), 500):
                found |= {r[0] for r in conn.execute(q, {"ids": ids[start : start + 500]})}
    finally:
        engine.dispose()
    return found


def kill_once(ctx: sb.Context, mode: str, served: sb.Served) -> dict[str, Any]:
    stream = Stream(f"http://{sb.HOST}:{served.server.port}")
    threads = [threading.Thread(target=stream.run, args=(n,), daemon=True) for n in range(ctx.args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(ctx.args.kill_after)
    proc = served.server.proc
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    stream.stop.set()
    for t in threads:
        t.join(15)
    proc.wait(10)
    served.server.proc = None
    answered = list(stream.answered)
    found = logged(served.url, [pid for pid, _ in answered])
    lost = [(pid, at) for pid, at in answered if pid not in found]
    window = max((killed - at for _, at in lost), default=0.0)
    rate = len(answered) / (killed - started)
    sb.log(f"kill ({mode}): {len(answered):,} answered at {rate:,.0f}/s, {len(lost)} lost, window {window:.3f} s")
    return {"answered": len(answered), "rate_per_s": rate, "lost": len(lost), "window_s": window}


def kills(ctx: sb.Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("buffered", "durable"):
        extra = ("--prediction-log", mode)
        served = start_server(ctx, f"kill-{mode}", *extra)
        runs = []
        for k in range(ctx.args.kills):
            runs.append(kill_once(ctx, mode, served))
            ctx.res.servers.remove(served.server)
            if k + 1 < ctx.args.kills:
                served = start_server(ctx, f"kill-{mode}", *extra, home=served.home, url=served.url)
        out[mode] = runs
    return out


JOIN_CASES = ((3, 600, "champion, 600 newest"), (4, 600, "new champion, none yet"), (None, 5000, "all versions, 5,000"))


def join(ctx: sb.Context) -> dict[str, Any]:
    from sqlalchemy import text

    from learnloop.store.db import Database
    from learnloop.store.migrate import upgrade
    from learnloop.store.repositories import feedback as feedback_repo

    n = ctx.args.join_rows
    url = ctx.res.database_url(ctx.res.root)
    db = Database(url, statement_timeout=600)
    out: dict[str, Any] = {"predictions": n, "feedback": n // 4}
    try:
        upgrade(db)
        with db.write() as conn:  # statistics of empty tables, and no autovacuum to refresh them
            for table in ("predictions", "feedback"):
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
                conn.execute(text(f"ANALYZE {table}"))
            conn.execute(text(JOIN_PREDICTIONS), {"n": n})
            conn.execute(text(JOIN_FEEDBACK), {"n": n // 4})
        for stats in ("stale", "fresh"):
            if stats == "fresh":
                with db.write() as conn:
                    conn.execute(text("ANALYZE predictions"))
                    conn.execute(text("ANALYZE feedback"))
            for version, limit, label in JOIN_CASES:
                started = time.perf_counter()
                with db.read() as conn:
                    rows = feedback_repo.judged_answers(conn, "m", version, limit)
                ms = 1000 * (time.perf_counter() - started)
                out[f"{stats}: {label}"] = {"ms": ms, "rows": len(rows)}
                sb.log(f"join, {stats} statistics, {label}: {len(rows)} rows in {ms:.0f} ms")
    finally:
        db.dispose()
    return out


# 80% of the answers for model "m" (versions 1, 2, 3 as it was retrained), 20% for another model;
# every fourth answer gets a label correction, and as many standalone examples arrive between.
JOIN_PREDICTIONS = """
INSERT INTO predictions (id, model, version, route, text, answer, subject, created_at, latency_ms)
SELECT lpad(i::text, 12, '0'), CASE WHEN i % 5 = 0 THEN 'other' ELSE 'm' END,
       CASE WHEN i < :n * 0.6 THEN 1 WHEN i < :n * 0.95 THEN 2 ELSE 3 END, 'champion',
       'served text ' || i, '{"label": "' || (i % 2)::text || '", "probabilities": {"0": 0.4, "1": 0.6}}', NULL,
       timestamptz '2025-01-01' + i * interval '10 ms', 0.5
FROM generate_series(0, :n - 1) i"""
JOIN_FEEDBACK = """
INSERT INTO feedback (id, model, client_id, prediction_id, kind, payload, subject, metadata, created_at)
SELECT 'f' || lpad(j::text, 12, '0'), 'm', NULL, CASE WHEN j % 2 = 0 THEN lpad((j * 4 + 1)::text, 12, '0') END,
       CASE WHEN j % 2 = 0 THEN 'label' ELSE 'example' END,
       CASE WHEN j % 2 = 0 THEN json_build_object('label', (j % 2)::text)
            ELSE json_build_object('label', (j % 2)::text, 'text', 'example ' || j) END, NULL, NULL,
       timestamptz '2025-01-01' + (j * 4 + 1) * interval '10 ms' + interval '1 s'
FROM generate_series(0, :n - 1) j"""


def report(results: dict[str, Any], backend: str) -> str:
    lines = [f"learnloop reliability benchmark - {backend}"]
    if "soak" in results:
        s = results["soak"]
        lines += ["", "soak: predictions served -> server RSS (MB), prediction-log backlog"]
        lines += [f"  {x['served']:>9,}  {x['rss_mb']:7.0f}  {x['backlog']:>6,}" for x in s["samples"]]
        c = s["rows_check"]
        lines.append(
            f"  RSS warm {s['rss_warm_mb']:.0f} MB -> end {s['rss_end_mb']:.0f} MB; rows logged {c['rows_logged']:,}"
            f" = served {c['served_server_count']:,}: {sb.verdict(c['met'])}"
        )
    if "join" in results:
        j = results["join"]
        lines += ["", f"online-accuracy join at {j['predictions']:,} predictions, {j['feedback']:,} feedback:"]
        lines += [f"  {k:<40} {v['rows']:>5} rows in {v['ms']:8.0f} ms" for k, v in j.items() if isinstance(v, dict)]
    if "kill" in results:
        lines += ["", "SIGKILL mid-stream: answered, rate, answered ids lost, window (oldest lost answer's age)"]
        for mode, runs in results["kill"].items():
            for r in runs:
                lines.append(
                    f"  {mode:<9} {r['answered']:>7,} answered at {r['rate_per_s']:>6,.0f}/s: {r['lost']:>5} lost,"
                    f" window {1000 * r['window_s']:6.0f} ms"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="learnloop reliability benchmark (see the module docstring)")
    p.add_argument("--database-url", default="", help="empty: SQLite; a PostgreSQL URL: fresh databases on it")
    p.add_argument("--only", nargs="+", choices=("soak", "join", "kill"), default=["soak", "join", "kill"])
    p.add_argument("--join-rows", type=int, default=1_000_000, help="join: predictions loaded (default 1M)")
    p.add_argument("--predictions", type=int, default=400_000, help="soak: predictions to serve (default 400,000)")
    p.add_argument("--kills", type=int, default=3, help="kill: SIGKILLs per prediction-log mode (default 3)")
    p.add_argument("--kill-after", type=float, default=4.0, help="kill: seconds of streaming before each kill")
    p.add_argument("--clients", type=int, default=8, help="kill: client threads (default 8)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.threads, args.duration, args.quiet_wait = 1, SEGMENT_SECONDS, 0.0
    url = args.database_url.strip()
    backend = "postgresql" if url else "sqlite"
    corpus = [row for name in ("yelp", "amazon_cells", "imdb") for row in sb.read_sentences(name)]
    texts = [t for name in ("amazon_cells", "imdb") for t, _ in sb.read_sentences(name)]
    results: dict[str, Any] = {}
    with sb.signals_as_exceptions():
        res = sb.Resources(url or None)
        ctx = sb.Context(args, res, backend, corpus, texts)
        try:
            if "soak" in args.only:
                results["soak"] = soak(ctx)
            if "join" in args.only and backend == "postgresql":
                results["join"] = join(ctx)
            if "kill" in args.only:
                results["kill"] = kills(ctx)
        except sb.BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        finally:
            res.close()
    table = report(results, backend)
    print(table)
    out = args.out or sb.ROOT / "bench" / "results" / f"reliability-{backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backend": backend, "results": sb.to_jsonable(results), "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
