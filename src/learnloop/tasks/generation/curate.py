"""A generative model's feedback events -> three training sets (``sets.GenerationSets``). Pure.

``curate(events, policy, now)`` reads every event up to ``now`` (later ones are counted
``after_cutoff``) and its answers, and states each rule it applies so a snapshot can be explained:

**Votes on one answer.** Ratings, thumbs, corrections and implicit signals on a logged answer are
*votes* on it: a rating >= ``sft_min_rating`` or thumbs up is good, a rating <= 2, thumbs down or
a correction is bad, a rating in between is neutral (it counts as the subject's opinion but for
neither side); an implicit signal votes only where ``policy.generation.signal_outcomes()`` maps
it (and its value is truthy), otherwise it is counted ``implicit_unmapped``. **Conflict rule:**
each subject (hashed; events without one share the voter ``anonymous``) keeps one vote per
answer, an explicit one over an implicit one and then their latest; the answer's verdict is the
majority of good against bad votes; a tie gives no verdict (``tie``: the answer trains nothing,
rather than an average of opposites).

**SFT rows**: an answer whose verdict is good with at least one explicit good vote (a rating or
thumbs; implicit signals alone never make an SFT row), and every correction: per subject their
latest correction of the answer, then the text most subjects gave (a tie: the latest).

**Preference pairs**: (a) explicit preferences with ``strength >= min_preference_strength``, on
two logged answers to one prompt (chosen = the event's answer, rejected = its related answer;
a missing related answer is ``pending_related``, answers to different prompts are
``prompt_mismatch``) or standalone; votes on one comparison (the prompt and the two responses,
as text) keep each subject's latest, then the majority direction wins: a subject's pair that
most other votes contradict is dropped (``contradicted``), and a tie drops the comparison; (b) a
correction preferred over the answer it corrects, unless the answer's verdict is good
(``correction_against_verdict``); (c) for one prompt (the same ``served.text``), an answer whose
rating (per answer: each subject's latest rating, then the lower median, a rating someone gave)
is at least ``rating_pair_gap`` above another's, for distinct responses (at most
``MAX_RATING_PAIRS`` per prompt, the widest gaps and then the newest first, so a prompt asked
a thousand times does not make a million pairs: ``rating_pairs_capped``). The same comparison
from several sources: an explicit preference beats a correction, which beats ratings; an
opposite pair of lower rank is ``overridden``, an equal one a ``duplicate``.

**KTO rows**: one per answer with a verdict (desirable = good), weight ``IMPLICIT_WEIGHT`` when
only implicit signals decided it.

**Quality filters** (each counted per set): an ``empty`` response, a ``truncated`` one (the
answer's ``finish_reason`` is ``length``), one ``too_long`` (over ``max_response_chars``), a pair
whose two sides are ``identical``. Then identical rows are one (``duplicate``: the latest kept;
KTO rows on one response that disagree: the majority, a tie drops them, ``conflict``), no
subject contributes more than ``policy.curation.max_subject_share`` of a set (``subject_cap``,
their latest kept), and standalone texts are scrubbed of personal data again
(``policy.curation.pii_scrub``; intake scrubbed them already, scrubbing is idempotent).

**Time split**: the newest ``held_out_fraction`` of every set (by row time: its newest event;
rounded half up, so a set of one row trains on it) is held out, never a random split. Identical
rows are one before the split, so no held-out row is a training row; one prompt may have
different answers on both sides (prompts repeat in chat traffic, a greeting most of all, and
keeping every held-out prompt out of training would starve it).
"""

from __future__ import annotations

import functools
import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from learnloop.curation.conflicts import subject_caps
from learnloop.curation.dedup import normalize_text
from learnloop.curation.pii import scrub_text
from learnloop.domain import FeedbackEvent, FeedbackKind, Served
from learnloop.policy import Policy
from learnloop.tasks.generation.answers import GenAnswer, Message
from learnloop.tasks.generation.sets import (
    GenerationSets,
    KtoRow,
    PreferencePair,
    Provenance,
    R,
    SftRow,
    Split,
)

ANONYMOUS = "anonymous"
MAX_RATING_PAIRS = 50  # per prompt
IMPLICIT_WEIGHT = 0.5  # a KTO row only implicit signals decided
UNDESIRABLE_MAX_RATING = 2
CONFLICT_RULE = "per subject the latest vote (explicit over implicit), then the majority; a tie decides nothing"
_norm = functools.lru_cache(maxsize=1 << 14)(normalize_text)  # cleared after each curate
_PAIR_RANK = {"preference": 2, "preference:standalone": 2, "correction": 1, "ratings": 0}


@dataclass(frozen=True)
class _Vote:
    voter: str
    good: bool | None  # None: neutral
    explicit: bool
    event: FeedbackEvent


@dataclass
class _Answer:
    """One logged answer and what its events say."""

    served: Served
    answer: GenAnswer
    messages: tuple[Message, ...]
    votes: dict[str, _Vote]
    ratings: dict[str, FeedbackEvent]  # voter -> their latest rating
    corrections: dict[str, FeedbackEvent]  # voter -> their latest correction


@dataclass(frozen=True)
class _Comparison:
    """One preference vote: on ``key`` (prompt and both responses), for ``winner``."""

    key: Hashable
    winner: str
    voter: str
    pair: PreferencePair
    finish: tuple[str | None, str | None]


def curate(events: Iterable[FeedbackEvent], policy: Policy, now: datetime) -> GenerationSets:
    """The SFT, preference and KTO sets of ``events`` up to ``now`` (see the module doc)."""
    try:
        return _curate(events, policy, now)
    finally:
        _norm.cache_clear()


def _curate(events: Iterable[FeedbackEvent], policy: Policy, now: datetime) -> GenerationSets:
    counts = _Counts()
    answers: dict[str, _Answer] = {}
    comparisons: list[_Comparison] = []
    for event in sorted(events, key=lambda e: (e.created_at, e.id)):
        counts.events[event.kind.value] += 1
        if event.created_at > now:
            counts.skipped["after_cutoff"] += 1
        elif event.kind == FeedbackKind.PREFERENCE:
            comparison = _comparison(event, policy, counts)
            if comparison is not None:
                comparisons.append(comparison)
        elif event.kind in (FeedbackKind.RATING, FeedbackKind.THUMBS, FeedbackKind.CORRECTION, FeedbackKind.IMPLICIT):
            _take_vote(event, answers, policy, counts)
        else:
            counts.skipped["unsupported_kind"] += 1
    sft, kto, derived = _from_answers(answers.values(), policy, counts)
    pairs = _combine_pairs(_resolve_comparisons(comparisons, counts) + derived, policy, counts)
    return GenerationSets(
        sft=_finish(sft, policy, counts.sets["sft"]),
        preference=_finish(pairs, policy, counts.sets["preference"]),
        kto=_finish(_dedupe_kto(kto, counts.sets["kto"]), policy, counts.sets["kto"]),
        counts=counts.to_dict(),
        cutoff=now,
    )


class _Counts:
    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self.contradicted_subjects: set[str] = set()
        self.sets: dict[str, Counter[str]] = {"sft": Counter(), "preference": Counter(), "kto": Counter()}

    def to_dict(self) -> dict[str, Any]:
        conflicts: dict[str, Any] = {"rule": CONFLICT_RULE, **_sorted(self.conflicts)}
        conflicts["contradicted_subjects"] = len(self.contradicted_subjects)
        out: dict[str, Any] = {
            "events": _sorted(self.events),
            "skipped": _sorted(self.skipped),
            "conflicts": conflicts,
        }
        for name, counter in self.sets.items():
            kept = {k: counter[k] for k in ("candidates", "train", "held_out")}
            dropped = {k: v for k, v in sorted(counter.items()) if k not in kept and v}
            out[name] = {**kept, "dropped": dropped}
        return out


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(counter.items()) if v}


def _voter(event: FeedbackEvent) -> str:
    return event.feedback.subject or ANONYMOUS


def _conversation(served: Served, answer: GenAnswer) -> tuple[Message, ...]:
    return answer.messages or (Message("user", served.text),)


# -- votes on logged answers -------------------------------------------------------------------


def _take_vote(event: FeedbackEvent, answers: dict[str, _Answer], policy: Policy, counts: _Counts) -> None:
    served = event.served
    if served is None:
        counts.skipped["pending_prediction"] += 1
        return
    vote = _vote_of(event, policy, counts)
    if vote is None:
        return
    found = answers.get(served.prediction_id)
    if found is None:
        answer = GenAnswer.of(served.answer)
        found = answers[served.prediction_id] = _Answer(served, answer, _conversation(served, answer), {}, {}, {})
    current = found.votes.get(vote.voter)
    if current is not None:
        counts.conflicts["superseded"] += 1
    if current is None or vote.explicit or not current.explicit:  # events come oldest first
        found.votes[vote.voter] = vote
    if event.kind == FeedbackKind.RATING:
        found.ratings[vote.voter] = event
    elif event.kind == FeedbackKind.CORRECTION:
        found.corrections[vote.voter] = event


def _vote_of(event: FeedbackEvent, policy: Policy, counts: _Counts) -> _Vote | None:
    payload, voter = event.feedback.payload, _voter(event)
    if event.kind == FeedbackKind.RATING:
        rating = int(payload["rating"])
        good = True if rating >= policy.generation.sft_min_rating else False if rating <= 2 else None
        return _Vote(voter, good, True, event)
    if event.kind == FeedbackKind.THUMBS:
        return _Vote(voter, payload.get("thumbs") == "up", True, event)
    if event.kind == FeedbackKind.CORRECTION:
        return _Vote(voter, False, True, event)
    outcome = policy.generation.signal_outcomes().get(str(payload.get("signal")))
    if outcome is None:
        counts.skipped["implicit_unmapped"] += 1
        return None
    if not payload.get("value"):
        counts.skipped["implicit_not_observed"] += 1
        return None
    return _Vote(voter, outcome, False, event)


def _provenance(events: Sequence[FeedbackEvent], prediction_ids: Sequence[str], version: int | None) -> Provenance:
    ordered = sorted(events, key=lambda e: (e.created_at, e.id))
    subjects = {e.feedback.subject for e in ordered}
    return Provenance(
        feedback_ids=tuple(e.id for e in ordered),
        prediction_ids=tuple(prediction_ids),
        subject=subjects.pop() if len(subjects) == 1 else None,
        created_at=ordered[-1].created_at,
        version=version,
    )


def _quality(text: str, finish_reason: str | None, policy: Policy) -> str | None:
    """Why a response may not train (None: it may)."""
    if not text.strip():
        return "empty"
    if finish_reason == "length":
        return "truncated"
    if len(text) > policy.generation.max_response_chars:
        return "too_long"
    return None


def _from_answers(
    answers: Iterable[_Answer], policy: Policy, counts: _Counts
) -> tuple[list[SftRow], list[KtoRow], list[tuple[PreferencePair, tuple[str | None, str | None]]]]:
    sft: list[SftRow] = []
    kto: list[KtoRow] = []
    pairs: list[tuple[PreferencePair, tuple[str | None, str | None]]] = []
    rated: dict[str, list[tuple[int, _Answer]]] = {}
    for found in answers:
        served, answer = found.served, found.answer
        good = sum(1 for v in found.votes.values() if v.good is True)
        bad = sum(1 for v in found.votes.values() if v.good is False)
        verdict = None if good == bad else good > bad
        if good == bad and good > 0:
            counts.conflicts["tie"] += 1
        if verdict is not None:
            agreeing = [v for v in found.votes.values() if v.good is verdict]
            explicit = [v for v in agreeing if v.explicit]
            provenance = _provenance([v.event for v in agreeing], [served.prediction_id], served.version)
            quality = _quality(answer.response, answer.finish_reason, policy)
            source = explicit[-1].event.kind.value if explicit else "implicit"
            weight = 1.0 if explicit else IMPLICIT_WEIGHT
            _keep(
                kto,
                KtoRow(found.messages, answer.response, verdict, source, provenance, weight),
                quality,
                counts,
                "kto",
            )
            if verdict and explicit:
                row = SftRow(found.messages, answer.response, source, provenance)
                _keep(sft, row, quality, counts, "sft")
        if found.corrections:
            _correction(found, verdict, policy, counts, sft, pairs)
        if found.ratings:
            ratings = sorted(int(e.feedback.payload["rating"]) for e in found.ratings.values())
            rated.setdefault(served.text, []).append((statistics.median_low(ratings), found))
    for group in rated.values():
        found_pairs = _rating_pairs(group, policy)
        counts.conflicts["rating_pairs_capped"] += max(0, len(found_pairs) - MAX_RATING_PAIRS)
        pairs += found_pairs[:MAX_RATING_PAIRS]
    return sft, kto, pairs


def _keep(rows: list[R], row: R, quality: str | None, counts: _Counts, name: str) -> None:
    counts.sets[name]["candidates"] += 1
    if quality is None:
        rows.append(row)
    else:
        counts.sets[name][quality] += 1


def _correction(
    found: _Answer,
    verdict: bool | None,
    policy: Policy,
    counts: _Counts,
    sft: list[SftRow],
    pairs: list[tuple[PreferencePair, tuple[str | None, str | None]]],
) -> None:
    """The answer's correction: the text most subjects gave (their latest each; a tie: the latest)."""
    events = sorted(found.corrections.values(), key=lambda e: (e.created_at, e.id))
    support = Counter(_norm(str(e.feedback.payload["correction"])) for e in events)
    top = max(support.values())
    chosen = next(e for e in reversed(events) if support[_norm(str(e.feedback.payload["correction"]))] == top)
    text = str(chosen.feedback.payload["correction"])
    backing = [e for e in events if _norm(str(e.feedback.payload["correction"])) == _norm(text)]
    counts.conflicts["correction_outvoted"] += len(events) - len(backing)
    served = found.served
    provenance = _provenance(backing, [served.prediction_id], served.version)
    _keep(sft, SftRow(found.messages, text, "correction", provenance), _quality(text, None, policy), counts, "sft")
    if verdict is True:
        counts.conflicts["correction_against_verdict"] += 1
        return
    pair = PreferencePair(found.messages, text, found.answer.response, "correction", provenance)
    pairs.append((pair, (None, found.answer.finish_reason)))


def _rating_pairs(
    group: Sequence[tuple[int, _Answer]], policy: Policy
) -> list[tuple[PreferencePair, tuple[str | None, str | None]]]:
    """Every two answers to one prompt rated at least ``rating_pair_gap`` apart, distinct
    responses; the widest gaps first, then the newest."""
    found = []
    for high, better in group:
        for low, worse in group:
            if high - low < policy.generation.rating_pair_gap:
                continue
            if _norm(better.answer.response) == _norm(worse.answer.response):
                continue
            events = list(better.ratings.values()) + list(worse.ratings.values())
            ids = [better.served.prediction_id, worse.served.prediction_id]
            pair = PreferencePair(
                better.messages,
                better.answer.response,
                worse.answer.response,
                "ratings",
                _provenance(events, ids, better.served.version),
            )
            found.append((high - low, pair, (better.answer.finish_reason, worse.answer.finish_reason)))
    found.sort(key=lambda f: (-f[0], _order_desc(f[1])))
    return [(pair, finish) for _, pair, finish in found]


def _order_desc(pair: PreferencePair) -> tuple[Any, ...]:
    p = pair.provenance
    return (-p.created_at.timestamp(), p.feedback_ids, p.prediction_ids)


# -- explicit preferences ---------------------------------------------------------------------------


def _comparison(event: FeedbackEvent, policy: Policy, counts: _Counts) -> _Comparison | None:
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
        finish: tuple[str | None, str | None] = (None, None)
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
        messages, prompt = _conversation(event.served, first), event.served.text
        chosen, rejected = first.response, second.response
        prediction_ids = [event.served.prediction_id, event.related.prediction_id]
        finish = (first.finish_reason, second.finish_reason)
        source, version = "preference", event.served.version
    key = (_norm(prompt), frozenset((_norm(chosen), _norm(rejected))))
    pair = PreferencePair(
        messages, chosen, rejected, source, _provenance([event], prediction_ids, version), round(strength, 6)
    )
    return _Comparison(key, _norm(chosen), _voter(event), pair, finish)


def _resolve_comparisons(
    comparisons: Sequence[_Comparison], counts: _Counts
) -> list[tuple[PreferencePair, tuple[str | None, str | None]]]:
    """Per comparison each subject's latest vote, then the majority direction (a tie: none)."""
    latest: dict[Hashable, dict[str, _Comparison]] = {}
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


def _combine_pairs(
    candidates: Sequence[tuple[PreferencePair, tuple[str | None, str | None]]], policy: Policy, counts: _Counts
) -> list[PreferencePair]:
    """One pair per comparison: the highest-ranked source's direction (see the module doc)."""
    stats = counts.sets["preference"]
    best: dict[Hashable, PreferencePair] = {}
    for pair, finish in candidates:
        stats["candidates"] += 1
        quality = _pair_quality(pair, finish, policy)
        if quality is not None:
            stats[quality] += 1
            continue
        key = (_messages_key(pair.messages), frozenset((_norm(pair.chosen), _norm(pair.rejected))))
        current = best.get(key)
        if current is None:
            best[key] = pair
            continue
        same = _norm(current.chosen) == _norm(pair.chosen)
        new_rank, old_rank = _PAIR_RANK[pair.source], _PAIR_RANK[current.source]
        if not same and new_rank == old_rank:
            counts.conflicts["pair_source_tie"] += 1  # e.g. two rating pairs of one prompt, opposite
            stats["conflict"] += 2
            del best[key]
            continue
        stats["duplicate" if same else "overridden"] += 1
        if (new_rank, pair.created_at) >= (old_rank, current.created_at):
            best[key] = pair
    return list(best.values())


def _pair_quality(pair: PreferencePair, finish: tuple[str | None, str | None], policy: Policy) -> str | None:
    for text, finish_reason in zip((pair.chosen, pair.rejected), finish, strict=True):
        quality = _quality(text, finish_reason, policy)
        if quality is not None:
            return quality
    if _norm(pair.chosen) == _norm(pair.rejected):
        return "identical"
    return None


def _messages_key(messages: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.role, _norm(m.content)) for m in messages)


# -- dedup, caps, the time split -----------------------------------------------------------------


def _order(row: SftRow | PreferencePair | KtoRow) -> tuple[Any, ...]:
    p = row.provenance
    text = row.chosen if isinstance(row, PreferencePair) else row.response
    return (p.created_at, p.feedback_ids, p.prediction_ids, text)


def _dedupe_kto(rows: Sequence[KtoRow], counts: Counter[str]) -> list[KtoRow]:
    """One KTO row per (conversation, response): the majority label's latest; a tie: none."""
    groups: dict[Hashable, list[KtoRow]] = {}
    for row in sorted(rows, key=_order):
        groups.setdefault((_messages_key(row.messages), _norm(row.response)), []).append(row)
    out = []
    for group in groups.values():
        good = sum(1 for r in group if r.desirable)
        if 2 * good == len(group) and len(group) > 1:
            counts["conflict"] += len(group)
            continue
        label = 2 * good > len(group)
        agreeing = [r for r in group if r.desirable is label]
        counts["conflict"] += len(group) - len(agreeing)
        counts["duplicate"] += len(agreeing) - 1
        out.append(agreeing[-1])
    return out


def _finish(rows: Sequence[R], policy: Policy, counts: Counter[str]) -> Split[R]:
    """Dedupe, cap subjects, then split by time and keep held-out prompts out of training."""
    unique: dict[Hashable, R] = {}
    for row in sorted(rows, key=_order):
        key = _row_key(row)
        if key in unique:
            counts["duplicate"] += 1
            del unique[key]
        unique[key] = row
    capped = _cap_subjects(list(unique.values()), policy.curation.max_subject_share, counts)
    ordered = sorted(capped, key=_order)
    n_held = int(len(ordered) * policy.generation.held_out_fraction + 0.5)
    cut = len(ordered) - n_held
    train, held_out = ordered[:cut], ordered[cut:]
    counts["train"], counts["held_out"] = len(train), len(held_out)
    return Split(tuple(train), tuple(held_out))


def _row_key(row: SftRow | PreferencePair | KtoRow) -> Hashable:
    if isinstance(row, PreferencePair):
        return (_messages_key(row.messages), _norm(row.chosen), _norm(row.rejected))
    return (_messages_key(row.messages), _norm(row.response))


def _cap_subjects(rows: list[R], share: float, counts: Counter[str]) -> list[R]:
    if share >= 1.0:
        return rows
    by_subject: dict[str, list[R]] = {}
    for row in rows:
        if row.provenance.subject is not None:
            by_subject.setdefault(row.provenance.subject, []).append(row)
    others = sum(1 for row in rows if row.provenance.subject is None)
    result = subject_caps(by_subject, share, others=others)
    kept = {id(row) for xs in result.kept.values() for row in xs}
    counts["subject_cap"] += result.counts["subject_cap"]
    return [row for row in rows if row.provenance.subject is None or id(row) in kept]
