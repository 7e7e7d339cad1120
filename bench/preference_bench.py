"""Learning quality on real preference data: does DPO on the stream's pairs improve held-out
preference accuracy of the SmolLM2 base, and by how much, after 100, 300 and 1,000 pairs?

Run from the repository root with the project's virtual environment (the llm extra and the
default base's weights installed)::

    PYTHONPATH=src HF_HUB_OFFLINE=1 .venv/bin/python bench/preference_bench.py --seeds 0 1 2
    PYTHONPATH=src .venv/bin/python bench/preference_bench.py --dataset orca-sample --base tiny \\
        --pairs 20 --held-out 10 --steps 3 --judge-prompts 4 --new-tokens 8     # a tiny check

Data (``../shared/datasets/preference``, see its README): ``hh`` is Anthropic HH-RLHF
harmless-base test (human preferences; **content warning**: red-team dialogues, so this script
never prints or saves a text of it, only figures), ``orca`` the 284 Orca DPO pairs (GPT-4's
answer preferred), ``orca-sample`` the 40 Orca pairs learnloop ships. Pairs longer than
``--max-tokens`` (prompt with the chat template + the longer answer) are dropped so that CPU
steps stay short; a fixed held-out set (``--held-out``, at most a third of the pairs, drawn
with ``--split-seed``) is set apart and the rest is the training stream.

Per seed, the stream is shuffled, and for each N of ``--pairs`` (capped by the stream) one LoRA
adapter is fitted from the base on the stream's first N pairs with ``train_adapter`` (what the
loop's retrain does: every version is fitted from the base on everything so far): optionally
SFT on the chosen answers (``--sft-epochs``), then DPO, one epoch (``ceil(N / batch)`` steps)
unless ``--steps``. Each adapter and the base are scored on the same held-out pairs with
``answer_logprobs`` (summed log-probabilities): accuracy = share of pairs with
log p(chosen) - log p(rejected) > 0, Wilson 95% interval, mean margin, and McNemar's exact test
against the base on the same pairs (one-sided "better" as the gate uses, and two-sided). The
same on up to ``--train-fit`` of the pairs each adapter trained on tells under-fitting (steps,
learning rate, beta) from fitting that does not generalise (data). A judge
(``tasks.generation.judge``: TF-IDF + logistic regression, trained on the stream's chosen
answers as good and rejected as bad) scores the greedy answers of the base and of each adapter
to the first ``--judge-prompts`` held-out prompts: mean score with a bootstrap 95% interval and
Wilcoxon's signed-rank p against the base. Prints a table, writes ``--out`` (JSON, figures only)
and a PNG learning curve beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from learnloop.datasets import PreferencePair, orca_dpo_sample_path, read_hh_rlhf, read_orca_dpo
from learnloop.evaluation.gate import paired_outcomes
from learnloop.evaluation.generative_gate import preference_shift
from learnloop.families.causal_lm import DEFAULT_BASE, LoadedBase, attach_adapter, load_base, resolve_base
from learnloop.families.causal_lm.runtime import detach_adapter
from learnloop.families.causal_lm.scoring import AnswerScore, answer_logprobs, greedy_answers, prompt_ids
from learnloop.families.causal_lm.tuning import (
    LoraParams,
    PreferenceExample,
    SftExample,
    Stage,
    StageParams,
    train_adapter,
)
from learnloop.tasks.generation.judge import Judge, JudgeExample, train_judge

ROOT = Path(__file__).resolve().parent.parent
TIE = 1e-9  # as the generative gate: a margin this close to 0 is not right
DATASETS = {  # name: (file in the preference folder, reader, default --max-tokens)
    "hh": ("hh-rlhf_harmless-base_test.jsonl.gz", read_hh_rlhf, 256),
    "orca": ("orca_dpo_pairs_validation.jsonl", read_orca_dpo, 768),
    "orca-sample": ("", read_orca_dpo, 768),
}


def default_data_dir() -> Path:
    for up in (ROOT, ROOT.parent, ROOT.parent.parent):  # a worktree sits one level deeper
        if (up / "shared" / "datasets" / "preference").is_dir():
            return up / "shared" / "datasets" / "preference"
    return ROOT.parent / "shared" / "datasets" / "preference"


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean_ci(values: Sequence[float], seed: int, resamples: int = 2000) -> tuple[float, float]:
    x = np.asarray(values, dtype=np.float64)
    means = np.random.default_rng(seed).choice(x, size=(resamples, len(x)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def prompt_as_text(messages: Sequence[Mapping[str, str]]) -> str:
    """As ``tasks.generation.answers.prompt_text``: what the judge reads as the prompt."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def resolve(spec: str, bases_dir: Path, scratch: Path) -> Any:
    if spec == "tiny":  # the tests' tiny random Llama: checks the pipeline, learns nothing real
        sys.path.insert(0, str(ROOT))
        from tests.llm_fixtures import build_tiny_llama

        return resolve_base(str(build_tiny_llama(scratch / "tiny-llama")), bases_dir)
    return resolve_base(spec, bases_dir)


def pair_tokens(loaded: LoadedBase, pair: PreferencePair) -> int:
    answers = [len(loaded.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in (pair.chosen, pair.rejected)]
    return len(prompt_ids(loaded, pair.messages)) + max(answers) + 1  # + the end-of-answer token


@dataclass(frozen=True)
class Margins:
    """Per pair, log p(chosen) - log p(rejected): summed over each answer's tokens, and per token
    (each answer's mean log-probability), as the generative gate reports both."""

    summed: list[float]
    per_token: list[float]


def margins(loaded: LoadedBase, adapter: str | None, pairs: Sequence[PreferencePair], max_length: int) -> Margins:
    items = [(p.messages, a) for p in pairs for a in (p.chosen, p.rejected)]
    # batches of similar lengths: a forward pass costs the longest row's length in each
    order = sorted(range(len(items)), key=lambda i: sum(len(m["content"]) for m in items[i][0]) + len(items[i][1]))
    scored = answer_logprobs(loaded, adapter, [items[i] for i in order], batch_size=8, max_length=max_length)
    by_item: list[AnswerScore] = [AnswerScore(0.0, 0)] * len(items)
    for i, score in zip(order, scored, strict=True):
        by_item[i] = score
    chosen, rejected = by_item[0::2], by_item[1::2]
    return Margins(
        summed=[c.logprob - r.logprob for c, r in zip(chosen, rejected, strict=True)],
        per_token=[r.nll_per_token - c.nll_per_token for c, r in zip(chosen, rejected, strict=True)],
    )


def preference_figures(base: Sequence[float], candidate: Sequence[float]) -> dict[str, Any]:
    """Accuracy with its Wilson 95% interval, mean margin and McNemar against the base."""
    right = np.asarray(candidate) > TIE
    k, n = int(right.sum()), len(right)
    low, high = wilson(k, n)
    c = paired_outcomes("held_out", np.asarray(base) > TIE, right, confidence=0.95)
    shift = preference_shift(base, candidate, confidence=0.95, alpha=0.05)
    return {
        "n": n,
        "accuracy": k / n if n else 0.0,
        "accuracy_ci95": [low, high],
        "mean_margin": float(np.mean(candidate)) if n else 0.0,
        "difference_vs_base": c.difference,
        "difference_ci95": [c.ci_low, c.ci_high],
        "wins_vs_base": c.candidate_only,
        "losses_vs_base": c.champion_only,
        "p_better_vs_base": c.p_better,
        "p_two_sided_vs_base": min(1.0, 2 * min(c.p_better, c.p_worse)),
        # the pairs whose margin moved toward the chosen answer against the base's (the gate's
        # preference shift: a sign test), of those that moved
        "shift_toward": shift["toward"],
        "shift_away": shift["away"],
        "shift_share_ci95": [shift["ci_low"], shift["ci_high"]],
        "shift_p_better": shift["p_better"],
    }


def judge_figures(
    judge: Judge, prompts: Sequence[str], base: Sequence[float], answers: Sequence[str], seed: int
) -> dict[str, Any]:
    scores = judge.scores(list(zip(prompts, answers, strict=True)))
    diff = np.asarray(scores) - np.asarray(base)
    two_sided = better = 1.0
    if np.any(diff != 0):
        two_sided = float(wilcoxon(diff).pvalue)
        better = float(wilcoxon(diff, alternative="greater").pvalue)
    return {
        "n": len(scores),
        "mean": float(np.mean(scores)),
        "mean_ci95": list(bootstrap_mean_ci(scores, seed)),
        "difference_vs_base": float(diff.mean()),
        "p_better_vs_base": better,
        "p_two_sided_vs_base": two_sided,
        "mean_answer_chars": float(np.mean([len(a) for a in answers])),
    }


def stages_for(pairs: Sequence[PreferencePair], args: argparse.Namespace, max_length: int) -> list[Stage]:
    stages = []
    if args.sft_epochs > 0:
        sft = [SftExample(p.messages, p.chosen) for p in pairs]
        params = StageParams(
            learning_rate=args.sft_lr, epochs=args.sft_epochs, batch_size=args.batch_size, max_length=max_length
        )
        stages.append(Stage("sft", sft, params))
    dpo = [PreferenceExample(p.messages, p.chosen, p.rejected) for p in pairs]
    params = StageParams(
        learning_rate=args.lr,
        max_steps=args.steps if args.steps > 0 else -1,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=max_length,
        beta=args.beta,
    )
    return [*stages, Stage("dpo", dpo, params)]


def run_dataset(name: str, loaded: LoadedBase, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    file, reader, default_max = DATASETS[name]
    path = orca_dpo_sample_path() if name == "orca-sample" else args.data_dir / file
    data = reader(path)
    max_tokens = args.max_tokens or default_max
    partial = args.out.with_name(f"{args.out.stem}.{name}.partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    kept = [p for p in data.pairs if pair_tokens(loaded, p) <= max_tokens]
    order = list(range(len(kept)))
    random.Random(args.split_seed).shuffle(order)
    held_n = min(args.held_out, len(kept) // 3)
    held = [kept[i] for i in order[:held_n]]
    stream = [kept[i] for i in order[held_n:]]
    sizes = sorted({min(n, len(stream)) for n in args.pairs})
    max_length = max_tokens + 8  # training never truncates a kept pair
    print(
        f"\n== {name}: {len(data.pairs)} pairs read ({data.skipped} rows skipped), {len(kept)} of at most "
        f"{max_tokens} tokens (prompt + longer answer; {len(data.pairs) - len(kept)} longer dropped to keep "
        f"CPU steps short); held-out {len(held)}, stream {len(stream)}; pairs trained: {sizes}",
        flush=True,
    )
    started = time.monotonic()
    base_margins = margins(loaded, None, held, max_length)
    base = preference_figures(base_margins.summed, base_margins.summed)
    base_per_token = preference_figures(base_margins.per_token, base_margins.per_token)
    print(
        f"base: held-out accuracy {base['accuracy']:.3f}, per token {base_per_token['accuracy']:.3f} "
        f"(scored in {time.monotonic() - started:.0f} s)",
        flush=True,
    )

    judge: Judge | None = None
    judge_info: dict[str, Any] = {}
    prompts: list[str] = []
    base_judge: list[float] = []
    if args.judge_prompts > 0:
        rated = [
            JudgeExample(prompt_as_text(p.messages), a, good)
            for p in stream
            for a, good in ((p.chosen, True), (p.rejected, False))
        ]
        judge = train_judge(rated, seed=args.split_seed)
        if judge is not None:
            judge_info = {
                "trained_on": judge.quality.trained_on,
                "held_out_auc": judge.quality.auc,
                "auc_n": judge.quality.held_out,
            }
            conversations = [p.messages for p in held[: args.judge_prompts]]
            prompts = [prompt_as_text(c) for c in conversations]
            answers = greedy_answers(loaded, None, conversations, max_new_tokens=args.new_tokens)
            base_judge = judge.scores(list(zip(prompts, answers, strict=True)))
            judge_info["base"] = judge_figures(judge, prompts, base_judge, answers, args.split_seed)
            quality = judge.quality
            print(f"judge: AUC {quality.auc} on {quality.held_out}; base mean {np.mean(base_judge):.3f}", flush=True)

    base_train: dict[int, tuple[float, float]] = {}  # stream index -> base margin, for the train-fit check
    runs = []
    for seed in args.seeds:
        stream_order = list(range(len(stream)))
        random.Random(seed).shuffle(stream_order)
        for n in sizes:
            trained = [stream[i] for i in stream_order[:n]]
            directory = scratch / f"{name}-s{seed}-n{n}"
            outcome = train_adapter(
                loaded.ref,
                stages_for(trained, args, max_length),
                directory,
                lora=LoraParams(rank=args.lora_rank, alpha=2 * args.lora_rank),
                seed=seed,
                threads=args.threads,
            )
            dpo = outcome.stages[-1]
            adapter = f"s{seed}n{n}"
            attach_adapter(loaded, adapter, directory)
            held_margins = margins(loaded, adapter, held, max_length)
            fit_idx = stream_order[: min(n, args.train_fit)]
            for i in fit_idx:
                if i not in base_train:
                    one = margins(loaded, None, [stream[i]], max_length)
                    base_train[i] = (one.summed[0], one.per_token[0])
            fit_margins = margins(loaded, adapter, [stream[i] for i in fit_idx], max_length)
            row: dict[str, Any] = {
                "seed": seed,
                "pairs": n,
                "steps": outcome.steps,
                "dpo_steps": dpo.steps,
                "seconds_per_dpo_step": dpo.seconds / max(dpo.steps, 1),
                "train_seconds": outcome.seconds,
                "train_loss": dpo.train_loss,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "last_logged": dpo.logs,
                "held_out": preference_figures(base_margins.summed, held_margins.summed),
                "held_out_per_token": preference_figures(base_margins.per_token, held_margins.per_token),
                "trained_pairs": preference_figures([base_train[i][0] for i in fit_idx], fit_margins.summed),
                "trained_pairs_per_token": preference_figures(
                    [base_train[i][1] for i in fit_idx], fit_margins.per_token
                ),
            }
            if judge is not None:
                answers = greedy_answers(
                    loaded, adapter, [p.messages for p in held[: args.judge_prompts]], max_new_tokens=args.new_tokens
                )
                row["judge"] = judge_figures(judge, prompts, base_judge, answers, seed)
            detach_adapter(loaded, adapter)
            runs.append(row)
            h, ht = row["held_out"], row["held_out_per_token"]
            t, tt = row["trained_pairs"], row["trained_pairs_per_token"]
            print(
                f"seed {seed} N={n}: held-out accuracy {h['accuracy']:.3f} (base {base['accuracy']:.3f}), "
                f"McNemar p(better) {h['p_better_vs_base']:.4f}; per token {ht['accuracy']:.3f} "
                f"(base {base_per_token['accuracy']:.3f}, p {ht['p_better_vs_base']:.4f}); on {len(fit_idx)} of "
                f"its training pairs {t['accuracy']:.3f} (base {t['accuracy'] - t['difference_vs_base']:.3f}), "
                f"per token {tt['accuracy']:.3f} (base {tt['accuracy'] - tt['difference_vs_base']:.3f}); DPO loss "
                f"{dpo.train_loss}; {dpo.steps} DPO steps at {row['seconds_per_dpo_step']:.1f} s; "
                f"peak RSS so far {row['peak_rss_mib']} MiB",
                flush=True,
            )
            # what is done so far survives a run stopped before the end
            partial.write_text(
                json.dumps({"dataset": name, "base": base, "base_per_token": base_per_token, "runs": runs}, indent=2)
            )
    return {
        "dataset": name,
        "file": str(path),
        "pairs_read": len(data.pairs),
        "rows_skipped": data.skipped,
        "max_tokens": max_tokens,
        "pairs_kept": len(kept),
        "held_out": len(held),
        "stream": len(stream),
        "sizes": sizes,
        "base": base,
        "base_per_token": base_per_token,
        "judge": judge_info,
        "runs": runs,
    }


def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _ci(interval: Sequence[float]) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _f3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _shift(figures: Mapping[str, Any]) -> str:
    """Pairs moved toward the chosen answer / away (results written before 2026-12-07 lack it)."""
    return f"{figures['shift_toward']}/{figures['shift_away']}" if "shift_toward" in figures else "-"


def _wl(figures: Mapping[str, Any]) -> str:
    return f"{figures['wins_vs_base']}/{figures['losses_vs_base']}"


def table(results: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'data':<11} {'seed':>4} {'N':>5} {'steps':>5} {'s/step':>6} {'acc':>6} {'95% CI':>14} {'margin':>8} "
        f"{'W/L':>7} {'p better':>9} {'p 2-sided':>9} {'acc/tok':>7} {'p tok':>7} {'shift':>7} {'p shift':>7} "
        f"{'train acc':>9} "
        f"{'judge':>6} {'judge p':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        b, bt = r["base"], r.get("base_per_token")
        judge_base = r["judge"].get("base", {}).get("mean")
        lines.append(
            f"{r['dataset']:<11} {'-':>4} {0:>5} {'-':>5} {'-':>6} {b['accuracy']:>6.3f} "
            f"{_ci(b['accuracy_ci95']):>14} {b['mean_margin']:>+8.2f} {'-':>7} {'-':>9} {'-':>9} "
            f"{_f3(bt['accuracy'] if bt else None):>7} {'-':>7} {'-':>7} {'-':>7} {'-':>9} {_f3(judge_base):>6} "
            f"{'-':>8}"
        )
        for run in r["runs"]:
            h, t, j = run["held_out"], run["trained_pairs"], run.get("judge")
            ht = run.get("held_out_per_token")  # results written before 2026-12-07 lack it
            lines.append(
                f"{r['dataset']:<11} {run['seed']:>4} {run['pairs']:>5} {run['dpo_steps']:>5} "
                f"{run['seconds_per_dpo_step']:>6.1f} {h['accuracy']:>6.3f} {_ci(h['accuracy_ci95']):>14} "
                f"{h['mean_margin']:>+8.2f} {_wl(h):>7} "
                f"{_p(h['p_better_vs_base']):>9} {_p(h['p_two_sided_vs_base']):>9} "
                f"{_f3(ht['accuracy'] if ht else None):>7} {_p(ht['p_better_vs_base']) if ht else '-':>7} "
                f"{_shift(h):>7} {_p(h['shift_p_better']) if 'shift_p_better' in h else '-':>7} "
                f"{t['accuracy']:>9.3f} "
                f"{_f3(j['mean'] if j else None):>6} {_p(j['p_better_vs_base']) if j else '-':>8}"
            )
    return "\n".join(lines)


def verdicts(results: Sequence[dict[str, Any]]) -> list[str]:
    """Per dataset: does the largest N improve held-out accuracy with p < 0.05, and if not, what
    the train-fit figures say."""
    out = []
    for r in results:
        if not r["runs"]:
            continue
        top = max(r["sizes"])
        last = [run for run in r["runs"] if run["pairs"] == top]
        shown = [
            run["seed"]
            for run in last
            if run["held_out"]["p_better_vs_base"] < 0.05 and run["held_out"]["difference_vs_base"] > 0
        ]
        fit = float(
            np.mean([run["trained_pairs"]["accuracy"] - run["trained_pairs"]["difference_vs_base"] for run in last])
        )
        fitted = float(np.mean([run["trained_pairs"]["accuracy"] for run in last]))
        seeds = [run["seed"] for run in last]
        line = f"{r['dataset']}: N={top}: better than the base with p<0.05 on seeds {shown or 'none'} of {seeds}"
        if len(shown) < len(last):
            line += f"; on the pairs it trained on, accuracy {fitted:.3f} vs base {fit:.3f}: " + (
                "it fits its training pairs but that does not carry to held-out ones "
                "(data: the labels' signal, or too few pairs)"
                if fitted - fit > 0.1
                else "it barely fits its training pairs (too few steps, too low a learning rate or too small a beta)"
            )
        out.append(line)
    return out


def plot(results: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    judged = any(r["judge"].get("base") for r in results)
    fig, axes = plt.subplots(1, 2 if judged else 1, figsize=(11 if judged else 6, 4.2), squeeze=False)
    for r in results:
        seeds = sorted({run["seed"] for run in r["runs"]})
        xs = [0, *r["sizes"]]
        acc = [
            [r["base"]["accuracy"]] + [run["held_out"]["accuracy"] for run in r["runs"] if run["seed"] == s]
            for s in seeds
        ]
        ci = [r["base"]["accuracy_ci95"]] + [
            [
                float(np.mean([run["held_out"]["accuracy_ci95"][k] for run in r["runs"] if run["pairs"] == n]))
                for k in (0, 1)
            ]
            for n in r["sizes"]
        ]
        mean = np.mean(acc, axis=0) if acc else np.array([r["base"]["accuracy"]])
        line = axes[0][0].plot(xs[: len(mean)], mean, marker="o", label=f"{r['dataset']} (held-out {r['held_out']})")[0]
        axes[0][0].fill_between(
            xs[: len(mean)],
            [c[0] for c in ci][: len(mean)],
            [c[1] for c in ci][: len(mean)],
            alpha=0.15,
            color=line.get_color(),
        )
        for a in acc:
            axes[0][0].plot(xs, a, color=line.get_color(), alpha=0.3, linewidth=0.8)
        if judged and r["judge"].get("base"):
            means = [r["judge"]["base"]["mean"]] + [
                float(np.mean([run["judge"]["mean"] for run in r["runs"] if run["pairs"] == n])) for n in r["sizes"]
            ]
            axes[0][1].plot(xs, means, marker="o", label=r["dataset"])
    axes[0][0].set(
        xlabel="pairs trained on (0 = base)",
        ylabel="held-out preference accuracy",
        title="Preference accuracy (mean over seeds, Wilson 95%)",
    )
    axes[0][0].legend(fontsize=8)
    ticks = sorted({0, *(n for r in results for n in r["sizes"])})
    for ax in axes[0]:
        ax.set_xscale("symlog", linthresh=100)  # 0 (the base), then 100, 300, 1,000 pairs
        ax.set_xticks(ticks, [f"{n:,}" for n in ticks])  # the sizes trained on, not symlog's powers of ten
        ax.minorticks_off()
    if judged:
        axes[0][1].set(
            xlabel="pairs trained on (0 = base)", ylabel="mean judge score", title="Judge score of greedy answers"
        )
        axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dataset", nargs="+", choices=sorted(DATASETS), default=["hh", "orca"])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help="a known base, a local model directory, or 'tiny' (the tests' tiny Llama)"
    )
    parser.add_argument("--bases-dir", type=Path, default=ROOT / "bench" / "data" / "bases")
    parser.add_argument("--max-tokens", type=int, default=0, help="drop longer pairs (0: 256 for hh, 768 for orca)")
    parser.add_argument("--held-out", type=int, default=200, help="held-out pairs (at most a third of the kept pairs)")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=0, help="DPO steps (0: --epochs over the pairs)")
    parser.add_argument("--sft-epochs", type=float, default=0.0, help="SFT on the chosen answers first (0: none)")
    parser.add_argument("--sft-lr", type=float, default=2e-3)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument(
        "--train-fit", type=int, default=100, help="score each adapter on up to this many of its training pairs"
    )
    parser.add_argument(
        "--judge-prompts", type=int, default=50, help="held-out prompts answered and judged (0: no judge)"
    )
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "preference" / "preference.json")
    args = parser.parse_args(argv)
    # bench/datasets.py would shadow Hugging Face's ``datasets``, which TRL imports during the fit
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="preference-bench-") as tmp:
        scratch = Path(tmp)
        loaded = load_base(resolve(args.base, args.bases_dir, scratch), threads=args.threads)
        results = [run_dataset(name, loaded, args, scratch) for name in args.dataset]
    report = table(results)
    findings = verdicts(results)
    print("\n" + report + "\n\n" + "\n".join(findings))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"\ntotal {time.monotonic() - started:.0f} s; {os.cpu_count()} CPUs, load {load}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.write_text(
        json.dumps({"settings": settings, "results": results, "findings": findings, "table": report}, indent=2)
    )
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
