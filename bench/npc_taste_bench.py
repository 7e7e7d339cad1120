"""What the innkeeper's players would say of each version of a generative demo's model.

The generative demo's gate judges a candidate on held-out preferences and on the NLL of the
good answers, because a real loop cannot read its users' minds. The demo's players' taste is
code (``replay/npc/taste.py``), so here the answers each version gives are scored by it
directly: the ground truth the gate's checks stand in for, to tell whether a verdict was right.

For every line the players say (16), ``--samples`` answers per version are sampled as the
demo's server samples them (the scene's system prompt, temperature 0.9, 64 new tokens), with
the same seeds for every version (common random numbers: the comparison is paired). Per
version: the mean taste score (-2.5 to 2.5) with a bootstrap 95% interval, the rating it means
without the players' noise, the share of answers that break the scene, are curt, or are cut at
the token limit, and the mean words. Each version against v1 paired on (line, seed): the mean
difference with a bootstrap 95% interval and Wilcoxon's signed-rank test (two-sided and
one-sided "better").

    python bench/npc_taste_bench.py --home learnloop-npc-demo/home [--samples 8] [--out taste.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from learnloop.config import Settings
from learnloop.evaluation.bootstrap import bootstrap_ci, mean_statistic
from learnloop.families.causal_lm import GenerationEngine, load_base, resolve_base
from learnloop.families.generation import GenerationRequest
from learnloop.replay.npc.run import NpcDemoConfig
from learnloop.replay.npc.taste import CURT_WORDS, LINES, Taste, breaks_scene, rate, score
from learnloop.services import build_services

DEMO = NpcDemoConfig(out=Path())  # the demo's sampling: its temperature and answer length
NOISELESS = Taste(rating_noise=0.0)  # the rating a score means, without the players' noise


def mean_ci(values: np.ndarray, seed: int) -> tuple[float, float]:
    """The mean's percentile bootstrap 95% interval (4,000 resamples)."""
    return bootstrap_ci(mean_statistic(values), len(values), resamples=4000, seed=seed) or (np.nan, np.nan)


def sample_answers(
    engine: GenerationEngine, adapter: str | None, system_prompt: str | None, samples: int, max_new_tokens: int
) -> list[tuple[str, str]]:
    """(text, finish reason) per (line, seed), lines in order, seeds 0..samples-1 within each."""
    handles = []
    for line in LINES:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": line}
        ]
        for seed in range(samples):
            request = GenerationRequest(
                messages=messages,
                adapter=adapter,
                max_new_tokens=max_new_tokens,
                temperature=DEMO.temperature,
                seed=seed,
            )
            handles.append(engine.submit(request))
    out: list[tuple[str, str]] = []
    for handle in handles:
        result = handle.result(timeout=600)
        out.append((result.text, result.finish_reason))
    return out


def figures(answers: list[tuple[str, str]], seed: int) -> dict[str, Any]:
    scores = np.asarray([score(text) for text, _ in answers], dtype=np.float64)
    n, rng = len(answers), random.Random(seed)  # the noiseless rating draws nothing from it
    return {
        "answers": n,
        "mean_score": float(scores.mean()),
        "score_ci": mean_ci(scores, seed),
        "mean_rating_noiseless": statistics.fmean(rate(t, NOISELESS, rng) for t, _ in answers),
        "breaks_scene": sum(breaks_scene(t) for t, _ in answers) / n,
        "curt": sum(len(t.split()) < CURT_WORDS for t, _ in answers) / n,
        "truncated": sum(reason == "length" for _, reason in answers) / n,
        "mean_words": statistics.fmean(len(t.split()) for t, _ in answers),
    }


def paired(first: list[tuple[str, str]], other: list[tuple[str, str]], seed: int) -> dict[str, Any]:
    diff = np.asarray([score(b) - score(a) for (a, _), (b, _) in zip(first, other, strict=True)], dtype=np.float64)
    nonzero = diff[diff != 0]
    two, better = (float("nan"), float("nan"))
    if len(nonzero) > 0:
        two = float(stats.wilcoxon(nonzero, alternative="two-sided").pvalue)
        better = float(stats.wilcoxon(nonzero, alternative="greater").pvalue)
    return {
        "mean_difference": float(diff.mean()),
        "difference_ci": mean_ci(diff, seed),
        "higher": int((diff > 0).sum()),
        "lower": int((diff < 0).sum()),
        "wilcoxon_p_two_sided": two,
        "wilcoxon_p_better": better,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="the demo's home (learnloop-npc-demo/home)")
    parser.add_argument("--model", default="innkeeper")
    parser.add_argument("--samples", type=int, default=8, help="answers per line and version")
    parser.add_argument("--versions", default="", help="comma-separated versions to score (default: all; v1 always)")
    parser.add_argument("--max-new-tokens", type=int, default=DEMO.max_new_tokens)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--show", type=int, default=2, help="print this many answers per line and version")
    args = parser.parse_args(argv)

    settings = Settings.from_env(home=args.home.resolve())
    services = build_services(settings, migrate=False)
    try:
        versions = sorted(services.registry.versions(args.model), key=lambda v: v.version)
        if args.versions:
            wanted = {int(v) for v in args.versions.split(",")} | {versions[0].version}
            versions = [v for v in versions if v.version in wanted]
        store = services.store
        base = versions[0].params["base"]
        loaded = load_base(resolve_base(str(base), settings.bases_dir), threads=args.threads)
        engine = GenerationEngine(loaded, max_batch=16, max_queue=len(LINES) * args.samples + 1)
        results: dict[str, Any] = {"home": str(args.home), "samples_per_line": args.samples, "versions": {}}
        answers: dict[int, list[tuple[str, str]]] = {}
        for version in versions:
            adapter = None
            if version.artifact_uri:
                adapter = f"v{version.version}"
                engine.attach_adapter(adapter, store.get_dir(version.artifact_uri))
            started = time.monotonic()
            system_prompt = version.params.get("system_prompt")
            answers[version.version] = sample_answers(
                engine,
                adapter,
                system_prompt if isinstance(system_prompt, str) else None,
                args.samples,
                args.max_new_tokens,
            )
            row = figures(answers[version.version], version.version)
            row["status"] = version.status.value
            row["seconds"] = time.monotonic() - started
            if version.version != versions[0].version:
                row["vs_first"] = paired(answers[versions[0].version], answers[version.version], version.version)
            results["versions"][str(version.version)] = row
            print(
                f"v{version.version} ({row['status']}): taste {row['mean_score']:+.2f} "
                f"[{row['score_ci'][0]:+.2f}, {row['score_ci'][1]:+.2f}], rating {row['mean_rating_noiseless']:.2f}, "
                f"breaks {row['breaks_scene']:.0%}, curt {row['curt']:.0%}, cut {row['truncated']:.0%}, "
                f"{row['mean_words']:.1f} words; {row['seconds']:.0f} s",
                flush=True,
            )
            if "vs_first" in row:
                d = row["vs_first"]
                print(
                    f"  vs v{versions[0].version}: {d['mean_difference']:+.2f} "
                    f"[{d['difference_ci'][0]:+.2f}, {d['difference_ci'][1]:+.2f}], {d['higher']} higher / "
                    f"{d['lower']} lower, Wilcoxon p(better) {d['wilcoxon_p_better']:.4g}, "
                    f"two-sided {d['wilcoxon_p_two_sided']:.4g}",
                    flush=True,
                )
            shown = min(args.show, args.samples)  # never the next line's answers
            for i, line in enumerate(LINES):
                for text, _ in answers[version.version][i * args.samples : i * args.samples + shown]:
                    print(f"    {line!r} -> {text!r}")
        engine.close()
    finally:
        services.close()
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
