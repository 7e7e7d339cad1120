"""The generative demo's summary: what the loop did (retrains, the gate's verdicts, the
rollout) and the first and final champions side by side: the players' mean rating of each
one's answers (t intervals; Welch and Mann-Whitney tests of the difference), how often each
broke the scene, and the held-out preference accuracy the gate measured (Wilson intervals;
McNemar's test, from the verdict). Pure logic over what the demo saw and read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from learnloop.replay.npc.players import Answer, Encounter
from learnloop.replay.npc.stats import compare_means, mean_interval, wilson


def _answers_of(answers: Sequence[Answer], version: int) -> list[Answer]:
    return [a for a in answers if a.version == version]


def _champion(answers: Sequence[Answer], version: int) -> dict[str, Any]:
    mine = _answers_of(answers, version)
    broke = sum(a.breaks_scene for a in mine)
    return {
        "version": version,
        "answers": len(mine),
        "rating": mean_interval([float(a.rating) for a in mine]),
        "taste_score": mean_interval([a.score for a in mine]),
        "breaks_scene": {"share": broke / len(mine) if mine else None, "ci95": wilson(broke, len(mine))},
    }


def preference_check(version: dict[str, Any] | None, metric: str = "preference_accuracy") -> dict[str, Any] | None:
    """The gate's held-out preference comparison of a candidate with its champion (``metric``:
    ``preference_accuracy``, or ``preference_shift``)."""
    verdict = (version or {}).get("verdict") or {}
    return next((c for c in verdict.get("comparisons", []) if c.get("metric") == metric), None)


def _shift(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pairs whose margin the candidate moved toward the chosen answer (and away), the share
    of those that moved with its interval, the sign test's p, and whether the gate judged it."""
    if check is None:
        return None
    return {
        "toward": check.get("toward"),
        "away": check.get("away"),
        "share": check.get("candidate"),
        "ci": [check.get("ci_low"), check.get("ci_high")],
        "ci_confidence": check.get("confidence"),
        "p_better": check.get("p_better"),
        "judged": bool(check.get("required")),
        "test": check.get("test"),
    }


def _judge(check: dict[str, Any] | None, version: int | None) -> dict[str, Any] | None:
    """The gate's judge: a reward model trained on the players' ratings scoring both versions'
    answers to held-out prompts (mean scores, the difference's interval, Wilcoxon's p)."""
    if check is None:
        return None
    return {
        "candidate_version": version,
        "n": check.get("n"),
        "samples_per_prompt": check.get("samples_per_prompt"),
        "champion": check.get("champion"),
        "candidate": check.get("candidate"),
        "difference": check.get("difference"),
        "ci": [check.get("ci_low"), check.get("ci_high")],
        "ci_confidence": check.get("confidence"),
        "p_better": check.get("p_better"),
        "judge_auc": check.get("judge_auc"),
        "judged": bool(check.get("required")),
        "test": check.get("test"),
    }


def _accuracy(accuracy: float, n: int) -> dict[str, Any]:
    right = round(accuracy * n)
    return {"accuracy": accuracy, "n": n, "ci95": wilson(right, n)}


def _retrains(jobs: Sequence[dict[str, Any]], versions: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for job in sorted(jobs, key=lambda j: str(j["created_at"])):
        if job["kind"] != "retrain":
            continue
        result = job.get("result") or {}
        version = result.get("version")
        detail = versions.get(version) if isinstance(version, int) else None
        metrics = (detail or {}).get("metrics") or {}
        verdict = (detail or {}).get("verdict") or {}
        out.append(
            {
                "job_id": job["job_id"],
                "status": job["status"],
                "requested_by": job["requested_by"],
                "version": version,
                "passed_gate": verdict.get("passed"),
                "gate_reasons": verdict.get("reasons", []),
                "stages": (metrics.get("training") or {}).get("stages", []),
                "sets": metrics.get("sets"),
                "held_out": metrics.get("held_out"),  # pairs, good answers and prompts judged on
                "train_seconds": (detail or {}).get("train_seconds"),
                "created_at": job["created_at"],
                "started_at": job["started_at"],
                "finished_at": job["finished_at"],
                "error": job.get("error"),
            }
        )
    return out


def _rollout(rollouts: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if not rollouts:
        return None
    r = rollouts[0]  # the newest
    stats = r.get("stats") or {}
    return {
        "id": r["id"],
        "version": r["version"],
        "strategy": r["strategy"],
        "status": r["status"],
        "steps": r["steps"],
        "reason": r.get("reason"),
        "live_test": stats.get("test"),
        "started_at": r["started_at"],
        "ended_at": r.get("ended_at"),
    }


def _promoted_by(events: Sequence[dict[str, Any]]) -> str | None:
    promoted = [e for e in events if e["kind"] == "promoted" and (e["version"] or 0) > 1]
    if not promoted:
        return None
    actor = str(promoted[-1].get("actor") or "")
    return "canary (live ratings)" if actor.startswith("rollout:") else f"{actor or 'the gate'} (swap)"


def summarize(
    encounters: Sequence[Encounter],
    events: Sequence[dict[str, Any]],
    versions: dict[int, dict[str, Any]],
    jobs: Sequence[dict[str, Any]],
    rollouts: Sequence[dict[str, Any]],
    model: dict[str, Any],
    *,
    config: dict[str, Any],
    why_stopped: str,
    timing: dict[str, Any],
) -> dict[str, Any]:
    answers = [a for e in encounters for a in e.answers]
    final = int(model["deployment"]["champion_version"] or 1)
    first, last = _champion(answers, 1), _champion(answers, final)
    candidates = [v for v in sorted(versions) if v > 1]
    judged = versions.get(final) if final > 1 else (versions.get(candidates[-1]) if candidates else None)
    check = preference_check(judged)
    held_out: dict[str, Any] | None = None
    if check is not None:
        n = int(check["n"])
        first["held_out_preference_accuracy"] = _accuracy(float(check["champion_accuracy"]), n)
        candidate = _accuracy(float(check["candidate_accuracy"]), n)
        if final > 1:
            last["held_out_preference_accuracy"] = candidate
        held_out = {
            "candidate_version": (judged or {}).get("version"),
            "candidate": candidate,
            "champion": first["held_out_preference_accuracy"],
            "difference": check.get("difference"),
            "difference_ci": [check.get("ci_low"), check.get("ci_high")],
            "difference_ci_confidence": check.get("confidence"),
            "mcnemar_p_better": check.get("p_better"),
            "wins_losses": [check.get("candidate_only"), check.get("champion_only")],
            "test": check.get("test"),
            "shift": _shift(preference_check(judged, "preference_shift")),
        }
    ratings = (
        compare_means(
            [float(a.rating) for a in _answers_of(answers, 1)], [float(a.rating) for a in _answers_of(answers, final)]
        )
        if final > 1
        else None
    )
    preferences = sum(e.preference is not None for e in encounters)
    return {
        "model": model["name"],
        "config": config,
        "timing": timing,
        "why_stopped": why_stopped,
        "players": {
            "encounters": len(encounters),
            "answers": len(answers),
            "ratings": len(answers),
            "preferences": preferences,
            "answers_by_version": {str(v): len(_answers_of(answers, v)) for v in sorted({a.version for a in answers})},
            "answers_by_route": {r: sum(a.route == r for a in answers) for r in sorted({a.route for a in answers})},
        },
        "retrains": _retrains(jobs, versions),
        "rollout": _rollout(rollouts, events),
        "promoted_by": _promoted_by(events),
        "first_champion": first,
        "final_champion": last,
        "rating_difference": ratings,
        "held_out_preference": held_out,
        "held_out_judge": _judge(preference_check(judged, "judge_score"), (judged or {}).get("version")),
        "events": [
            {
                "at": round(e["at"], 1),
                "kind": e["kind"],
                "version": e["version"],
                "actor": e.get("actor"),
                "reason": e["reason"],
            }
            for e in events
        ],
    }
