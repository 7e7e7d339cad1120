"""Fleet benchmark: two replicas and two workers on hosts that share no disk, under wrk.

Run from the repository root with the project's virtual environment (the s3 and test extras:
s3fs, moto[server]) and ``wrk`` (``apt-get install wrk``)::

    .venv/bin/python bench/fleet_bench.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

The topology of README "A fleet on hosts that share no disk", on one machine: a fresh
PostgreSQL database (made through ``--database-url``, dropped at the end), a moto S3 server on
127.0.0.1 (or ``--endpoint``), and four processes with a home of their own each: two
``learnloop serve --no-worker`` replicas and two ``learnloop worker`` processes. A model is
created from the shipped Yelp sentences by a fifth home (``learnloop init``), its version 1
saved to the bucket. Then:

1. ``steady``: wrk on both replicas at once (``--connections`` each, ``--duration`` s):
   requests/s, p50 and p99 per replica, non-2xx and socket errors.
2. ``promotion``: the same load again; a third of the way in, 300 labelled examples go in
   through replica A and a retrain is asked of it; a worker fits and saves it to the bucket,
   and it is promoted through the API (forced if the gate rejected it: the figure is about
   serving through a promotion, not about the gate). Measured: the seconds from the promotion
   to both replicas answering with the new version, and the failed requests during the run
   (the target is 0).
3. The replicas are stopped gracefully (their buffered prediction logs are written) and the
   rows in ``predictions`` are compared with the predictions the replicas counted
   (``learnloop_predictions_total``) and with wrk's successful responses (equal, up to the
   requests in flight when wrk stopped).

Everything shares these 2 cores (wrk, PostgreSQL, moto, four learnloop processes): figures are
what this machine gives with that crowd, not what a replica gives on a host of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' moto server helper (s3_server.py)
sys.path.insert(0, str(ROOT / "bench"))

import serve_bench as sb  # noqa: E402

MODEL = sb.MODEL
PREDICT = f"/v1/models/{MODEL}/predict"


# Appended to serve_bench's script: responses counted by status in every thread, summed at the end.
COUNT_STATUSES = r"""
statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local summarise = done
function done(summary, latency, requests)
  summarise(summary, latency, requests)
  local total, parts = {}, {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  io.write("MARKER{" .. table.concat(parts, ",") .. "}\n")
end
"""


def start_worker(res: sb.Resources, name: str, home: Path, url: str) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    log = (res.root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [*sb.learnloop_cmd(), "worker", "--home", str(home), "--database-url", url],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "LEARNLOOP_ARTIFACT_CACHE": str(home / "cache")},
        start_new_session=True,
    )


def load_both(
    replicas: list[sb.Server], lua: Path, args: argparse.Namespace, label: str, during: Any = None
) -> tuple[list[sb.WrkResult], Any]:
    """wrk on every replica at once (one thread each); ``during`` runs beside them."""
    results: list[sb.WrkResult | None] = [None] * len(replicas)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = sb.run_wrk(
                f"{replicas[i].name}: {label}",
                replicas[i],
                PREDICT,
                lua,
                connections=args.connections,
                threads=1,
                seconds=args.duration,
                sample_health=False,
            )
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
    for t in threads:
        t.start()
    outcome = during() if during is not None else None
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None], outcome


def predictions_counted(server: sb.Server) -> int:
    return int(sb.metric_total(sb.http_text(server.port, "/metrics"), "learnloop_predictions"))


PROBES = [0]  # predictions the bench itself asked for (served_version), beside wrk's


def served_version(server: sb.Server) -> int:
    PROBES[0] += 1
    status, body = sb.http_json(server.port, "POST", PREDICT, {"text": "The food was fine."})
    if status != 200:
        raise sb.BenchError(f"{server.name} answered {status}: {body}")
    return int(body["version"])


def retrain_and_promote(replicas: list[sb.Server], args: argparse.Namespace) -> dict[str, float]:
    a = replicas[0]
    time.sleep(args.duration / 3)
    rows = sb.read_sentences("amazon_cells")[:300]
    items = [{"text": text, "label": label} for text, label in rows]
    status, body = sb.http_json(a.port, "POST", f"/v1/models/{MODEL}/feedback/batch", {"items": items})
    if status >= 300:
        raise sb.BenchError(f"feedback batch: {status} {body}")
    asked = time.perf_counter()
    status, body = sb.http_json(a.port, "POST", f"/v1/models/{MODEL}/retrain", {})
    if status != 202:
        raise sb.BenchError(f"retrain: {status} {body}")
    job_id = body["job_id"]
    while True:
        status, job = sb.http_json(a.port, "GET", f"/v1/jobs/{job_id}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.perf_counter() - asked > 300:
            raise sb.BenchError(f"the retrain did not finish in 300 s: {job}")
        time.sleep(0.1)
    if job["status"] != "succeeded":
        raise sb.BenchError(f"the retrain ended {job['status']}: {job.get('error')}")
    fitted = time.perf_counter()
    version = int(job["result"]["version"])
    if not job["result"].get("promoted"):
        status, body = sb.http_json(
            a.port, "POST", f"/v1/models/{MODEL}/versions/{version}/promote", {"force": True, "reason": "fleet bench"}
        )
        if status != 200:
            raise sb.BenchError(f"promote: {status} {body}")
    promoted = time.perf_counter()
    while any(served_version(r) != version for r in replicas):
        if time.perf_counter() - promoted > 60:
            raise sb.BenchError("the replicas did not serve the new version within 60 s")
        time.sleep(0.05)
    return {
        "version": version,
        "retrain_s": round(fitted - asked, 2),
        "promotion_to_both_serving_s": round(time.perf_counter() - promoted, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server URL: a fresh database on it")
    parser.add_argument("--endpoint", help="an S3-compatible endpoint to use instead of a moto server")
    parser.add_argument("--bucket", help="an existing bucket at --endpoint (default: a new one on moto)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections per replica")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("a fleet shares PostgreSQL: --database-url postgresql+psycopg://...")

    from contextlib import nullcontext

    from s3_server import aws_environment, moto_server, new_bucket

    res = sb.Resources(args.database_url)
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        server = nullcontext(args.endpoint) if args.endpoint else moto_server(res.root)
        with server as endpoint:
            os.environ.update(aws_environment(endpoint) if not args.endpoint else {"AWS_ENDPOINT_URL": endpoint})
            bucket = args.bucket or new_bucket(endpoint)
            os.environ["LEARNLOOP_ARTIFACT_URL"] = f"s3://{bucket}/fleet-bench"
            seed = res.root / "seed"
            seed.mkdir()
            url = res.database_url(seed)
            data = sb.DATA / "yelp_labelled.txt"
            init = ["init", "--home", str(seed), "--database-url", url, "--model", MODEL, "--data", str(data)]
            wall, _ = sb.run_cli(
                [*init, "--no-header", "--text-column", "0", "--label-column", "1", "--retrain-every", str(10**9)]
            )
            sb.log(f"learnloop init took {wall:.1f} s; version 1 in {os.environ['LEARNLOOP_ARTIFACT_URL']}")
            replicas = []
            for name in ("replica-a", "replica-b"):
                home = res.root / name
                home.mkdir()
                port = sb.free_port()
                argv = sb.serve_argv(home, url, port, "auto", "--no-worker")
                replica = sb.Server(name, argv, port, res.root / f"{name}.log")
                res.servers.append(replica)
                replica.start()
                replicas.append(replica)
            for name in ("worker-1", "worker-2"):
                processes.append(start_worker(res, name, res.root / name, url))
            bodies = [sb.json_body({"text": t}) for t, _ in sb.read_sentences("imdb")]
            lua = sb.write_lua(res.root / "predict.lua", PREDICT, bodies)
            with lua.open("a", encoding="ascii") as script:
                script.write(COUNT_STATUSES.replace("MARKER", sb.BENCH_STATUSES))
            sb.log("warm-up")
            load_both(replicas, lua, argparse.Namespace(**{**vars(args), "duration": 3}), "warm-up")
            time.sleep(1.0)  # the warm-up's buffered rows are written (within 0.1 s)
            rows_before = sb.count_rows(url, "predictions")
            counted_before = sum(predictions_counted(r) for r in replicas)

            steady, _ = load_both(replicas, lua, args, "steady")
            promotion, timings = load_both(
                replicas, lua, args, "promotion", lambda: retrain_and_promote(replicas, args)
            )
            time.sleep(0.5)  # handlers in flight when wrk stopped finish
            counted = sum(predictions_counted(r) for r in replicas) - counted_before
            for replica in replicas:
                replica.stop()
            rows = sb.count_rows(url, "predictions") - rows_before
            wrk_ok = sum(r.ok for r in [*steady, *promotion]) + PROBES[0]
            results.update(
                {
                    "per_replica": {
                        phase: [
                            {
                                "replica": r.label.split(":")[0],
                                "rps": round(r.rps),
                                "p50_ms": round(r.p50_ms, 1),
                                "p99_ms": round(r.p99_ms, 1),
                                "non2xx": r.non2xx,
                                "socket_errors": r.socket_errors,
                                "timeouts": r.timeouts,
                                "statuses": r.statuses,
                            }
                            for r in runs
                        ]
                        for phase, runs in (("steady", steady), ("promotion", promotion))
                    },
                    "promotion": timings,
                    # 503 overloaded is admission control pushing back on a crowded machine (it
                    # happens in the steady run too); anything else would be the promotion's doing
                    "refused_503_during_promotion": sum(r.statuses.get("503", 0) for r in promotion),
                    "failed_otherwise_during_promotion": sum(
                        r.socket_errors + sum(n for s, n in r.statuses.items() if s not in ("200", "503"))
                        for r in promotion
                    ),
                    "rows_logged": rows,
                    "predictions_counted_by_replicas": counted,
                    "ok_responses_to_the_bench": wrk_ok,  # wrk's and the version probes'
                    "logged_equals_counted": rows == counted and 0 <= rows - wrk_ok <= 2 * args.connections * 2,
                    "in_flight_bound": 2 * args.connections * 2,
                    "load_after": os.getloadavg(),
                }
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(2)  # SIGINT: a worker's Ctrl-C
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        res.close()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
