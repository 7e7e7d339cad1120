"""Preference pairs: explicit preferences resolved by majority, and every source's pairs combined. Pure.

``comparison_of`` reads one preference event (logged or standalone) as a vote on a
*comparison* (the prompt and the two responses, as normalised text); ``resolve_comparisons``
keeps each subject's latest vote per comparison and the majority direction (a tie: none), and
counts the votes it overrules (``contradicted``) and their subjects; ``combine_pairs`` filters
every candidate pair (quality, identical sides) and keeps one per comparison, the highest-ranked
source's (``PAIR_RANK``). The rules are stated in ``curate``'s module doc.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

from learnloop.curation.pii import scrub_text
from learnloop.domain import FeedbackEvent
from learnloop.policy import Policy
from learnloop.tasks.generation.answers import GenAnswer, Message
from learnloop.tasks.generation.rules import (
    ANONYMOUS,
    Counts,
    Finish,
    conversation_of,
    messages_key,
    norm,
    provenance_of,
    response_quality,
    voter_of,
)
from learnloop.tasks.generation.sets import PreferencePair

PAIR_RANK = {"preference": 2, "preference:standalone": 2, "correction": 1, "ratings": 0}


@dataclass(frozen=True)
class Comparison:
    """One preference vote: on ``key`` (prompt and both responses), for ``winner``."""

    key: Hashable
    winner: str
    voter: str
    pair: PreferencePair
    finish: Finish


def comparison_of(event: FeedbackEvent, policy: Policy, counts: Counts) -> Comparison | None:
    payload = event.feedback.payload
    raw = payload.get("strength")
    strength = 1.0 if raw is None else float(raw)
    if strength < policy.generation.min_preference_strength:
        counts.skipped["weak_preference"] += 1
        return None
    if event.prediction_id is None:  # standalone
        kinds = policy.curation.pii_scrub
        prompt, chosen, rejected = (scrub_text(str(payload[k]), kinds) for k in ("prompt", "chosen", "rejected"))
        messages: tuple[Message, ...] = (Message("user", prompt),)
        prediction_ids: list[str] = []
        finish: Finish = (None, None)
        source, version = "preference:standalone", None
    else:
        if event.served is None:
            counts.skipped["pending_prediction"] += 1
            return None
        if event.related is None:
            counts.skipped["pending_related"] += 1
            return None
        if event.served.text != event.related.text:
            counts.sets["preference"]["candidates"] += 1
            counts.sets["preference"]["prompt_mismatch"] += 1
            return None
        first, second = GenAnswer.of(event.served.answer), GenAnswer.of(event.related.answer)
        messages, prompt = conversation_of(event.served, first), event.served.text
        chosen, rejected = first.response, second.response
        prediction_ids = [event.served.prediction_id, event.related.prediction_id]
        finish = (first.finish_reason, second.finish_reason)
        source, version = "preference", event.served.version
    key = (norm(prompt), frozenset((norm(chosen), norm(rejected))))
    pair = PreferencePair(
        messages, chosen, rejected, source, provenance_of([event], prediction_ids, version), round(strength, 6)
    )
    return Comparison(key, norm(chosen), voter_of(event), pair, finish)


def resolve_comparisons(comparisons: Sequence[Comparison], counts: Counts) -> list[tuple[PreferencePair, Finish]]:
    """Per comparison each subject's latest vote, then the majority direction (a tie: none)."""
    latest: dict[Hashable, dict[str, Comparison]] = {}
    for c in comparisons:  # oldest first
        votes = latest.setdefault(c.key, {})
        if c.voter in votes:
            counts.conflicts["superseded"] += 1
            del votes[c.voter]
        votes[c.voter] = c
    out = []
    for votes in latest.values():
        support = Counter(c.winner for c in votes.values())
        ranked = support.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            counts.conflicts["preference_tie"] += len(votes)
            continue
        winner = ranked[0][0]
        losing = [c for c in votes.values() if c.winner != winner]
        counts.conflicts["contradicted"] += len(losing)
        counts.contradicted_subjects.update(c.voter for c in losing if c.voter != ANONYMOUS)
        backing = [c for c in votes.values() if c.winner == winner]
        newest = backing[-1]
        events_ids = sorted({fid for c in backing for fid in c.pair.provenance.feedback_ids})
        provenance = replace(newest.pair.provenance, feedback_ids=tuple(events_ids))
        if len({c.voter for c in backing}) > 1:
            provenance = replace(provenance, subject=None)
        out.append((replace(newest.pair, provenance=provenance), newest.finish))
    return out


def combine_pairs(
    candidates: Sequence[tuple[PreferencePair, Finish]], policy: Policy, counts: Counts
) -> list[PreferencePair]:
    """One pair per comparison: the highest-ranked source's direction (see the module doc)."""
    stats = counts.sets["preference"]
    best: dict[Hashable, PreferencePair] = {}
    for pair, finish in candidates:
        stats["candidates"] += 1
        quality = pair_quality(pair, finish, policy)
        if quality is not None:
            stats[quality] += 1
            continue
        key = (messages_key(pair.messages), frozenset((norm(pair.chosen), norm(pair.rejected))))
        current = best.get(key)
        if current is None:
            best[key] = pair
            continue
        same = norm(current.chosen) == norm(pair.chosen)
        new_rank, old_rank = PAIR_RANK[pair.source], PAIR_RANK[current.source]
        if not same and new_rank == old_rank:
            counts.conflicts["pair_source_tie"] += 1  # e.g. two rating pairs of one prompt, opposite
            stats["conflict"] += 2
            del best[key]
            continue
        stats["duplicate" if same else "overridden"] += 1
        if (new_rank, pair.created_at) >= (old_rank, current.created_at):
            best[key] = pair
    return list(best.values())


def pair_quality(pair: PreferencePair, finish: Finish, policy: Policy) -> str | None:
    for text, finish_reason, wanted in zip((pair.chosen, pair.rejected), finish, (True, False), strict=True):
        quality = response_quality(text, finish_reason, policy, wanted=wanted)
        if quality is not None:
            return quality
    if norm(pair.chosen) == norm(pair.rejected):
        return "identical"
    return None
