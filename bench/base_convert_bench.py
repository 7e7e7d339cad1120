"""Converting the GGUF base in the caller's process or in a child: what the caller pays.

The first server (or training process) that serves a GGUF base converts it once into
``<home>/bases/`` (``families/causal_lm/bases.py``). Each run here starts a fresh Python process
that converts SmolLM2-135M-Instruct into an empty folder, either in that process
(``convert_gguf``, as before 2026-12-06) or in a child (``convert_gguf_in_child``, now), then
loads the converted base as a server does. Printed per run: the conversion's wall seconds, how
late a thread that wants to run every 10 ms got at worst during it (what an event loop beside
it would feel: the GIL), the process's peak RSS and its RSS after loading the base.

    HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python bench/base_convert_bench.py --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

RUN = """
import json, resource, sys, threading, time
from pathlib import Path

from learnloop.families.causal_lm import DEFAULT_BASE, load_base
from learnloop.families.causal_lm import bases

mode, folder = sys.argv[1], Path(sys.argv[2])
known = bases.KNOWN_BASES[DEFAULT_BASE]
source = bases.gguf_file(known)
target = folder / "base"
worst = 0.0
stop = threading.Event()

def tick() -> None:
    global worst
    last = time.perf_counter()
    while not stop.wait(0.01):
        now = time.perf_counter()
        worst = max(worst, now - last - 0.01)
        last = now

ticker = threading.Thread(target=tick, daemon=True)
ticker.start()
started = time.perf_counter()
(bases.convert_gguf if mode == "process" else bases.convert_gguf_in_child)(source, target)
seconds = time.perf_counter() - started
stop.set()
ticker.join()
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ref = bases.BaseModelRef(name=DEFAULT_BASE, path=target, kind="gguf", source=str(source))
loaded = load_base(ref, threads=1)
rss_kib = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0])
print(json.dumps({"mode": mode, "seconds": seconds, "worst_tick_late_ms": worst * 1000,
                  "peak_rss_mib": peak_kib / 1024, "rss_after_load_mib": rss_kib / 1024}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="runs of each mode, alternated")
    args = parser.parse_args(argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    rows = []
    for _ in range(args.runs):
        for mode in ("process", "child"):
            with tempfile.TemporaryDirectory(prefix="learnloop-convert-") as folder:
                load = os.getloadavg()[0]
                out = subprocess.run(
                    [sys.executable, "-c", RUN, mode, folder], capture_output=True, text=True, env=env, check=False
                )
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    return 1
                row = json.loads(out.stdout.strip().splitlines()[-1]) | {"load": load}
                rows.append(row)
                print(
                    f"{row['mode']:>7}: {row['seconds']:5.1f} s, a 10 ms ticker at worst "
                    f"{row['worst_tick_late_ms']:7.0f} ms late, peak RSS {row['peak_rss_mib']:6.0f} MiB, "
                    f"RSS with the base loaded {row['rss_after_load_mib']:6.0f} MiB (load {load:.1f})",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
