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

**Quality filters** (each counted per set): an ``empty`` response, a ``truncated`` one where
training would raise its likelihood (the answer's ``finish_reason`` is ``length``, in an SFT row,
on a pair's chosen side or in a desirable KTO row: it would teach stopping mid-sentence; a
rejected or undesirable answer cut off trains, as ``rules.response_quality`` says why), one
``too_long`` (over ``max_response_chars``), a pair whose two sides are ``identical``. Then
identical rows are one (``duplicate``: the latest kept; KTO rows on one response that disagree:
the majority, a tie drops them, ``conflict``), no subject contributes more than
``policy.curation.max_subject_share`` of a set (``subject_cap``, their latest kept), and
standalone texts are scrubbed of personal data again (``policy.curation.pii_scrub``; intake
scrubbed them already, scrubbing is idempotent).

**Time split**, one for every set, over answers, never random: the newest ``held_out_fraction``
of the logged answers the sets hold (by when each was logged, then first judged; a standalone
row is one answer at its event's time; rounded half up, so one answer trains) is held out, and
every row holds out or trains with its answers: a row holding answers on both sides (a rating
pair of an old and a new answer) is dropped (``straddles_split``). A split per set by row time
let such a pair, held out for its newer answer, carry the older one out of training with every
other row about it (on three NPC demo homes at their retrain, 17 to 34 pairs; one was left
6 to train on). Identical rows are one
before the split, so no held-out row is a training row; one prompt may have different answers
on both sides (prompts repeat in chat traffic, a greeting most of all, and keeping every
held-out prompt out of training would starve it), but no answer is on both sides: a training
row that shares an answer's text with a held-out row (a greeting sampled twice) is left out
(``shares_held_out_answer``), so the gate never scores an answer the candidate trained on.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learnloop.domain import FeedbackEvent, FeedbackKind, Served
from learnloop.policy import Policy
from learnloop.tasks.generation.answers import GenAnswer, Message
from learnloop.tasks.generation.preferences import Comparison, combine_pairs, comparison_of, resolve_comparisons
from learnloop.tasks.generation.rules import (
    Counts,
    Finish,
    conversation_of,
    norm,
    provenance_of,
    response_quality,
    voter_of,
)
from learnloop.tasks.generation.sets import GenerationSets, KtoRow, PreferencePair, R, SftRow
from learnloop.tasks.generation.split import dedupe_kto, finish_set, held_out_answers, purge_shared_answers, split_set

MAX_RATING_PAIRS = 50  # per prompt
IMPLICIT_WEIGHT = 0.5  # a KTO row only implicit signals decided
UNDESIRABLE_MAX_RATING = 2


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


def curate(events: Iterable[FeedbackEvent], policy: Policy, now: datetime) -> GenerationSets:
    """The SFT, preference and KTO sets of ``events`` up to ``now`` (see the module doc)."""
    try:
        return _curate(events, policy, now)
    finally:
        norm.cache_clear()


def _curate(events: Iterable[FeedbackEvent], policy: Policy, now: datetime) -> GenerationSets:
    counts = Counts()
    answers: dict[str, _Answer] = {}
    comparisons: list[Comparison] = []
    times: dict[str, tuple[datetime, datetime]] = {}  # each logged answer: (logged, first judged)
    for event in sorted(events, key=lambda e: (e.created_at, e.id)):
        counts.events[event.kind.value] += 1
        if event.created_at > now:
            counts.skipped["after_cutoff"] += 1
            continue
        for logged in (event.served, event.related):
            if logged is not None and logged.prediction_id not in times:
                times[logged.prediction_id] = (logged.created_at, event.created_at)
        if event.kind == FeedbackKind.PREFERENCE:
            comparison = comparison_of(event, policy, counts)
            if comparison is not None:
                comparisons.append(comparison)
        elif event.kind in (FeedbackKind.RATING, FeedbackKind.THUMBS, FeedbackKind.CORRECTION, FeedbackKind.IMPLICIT):
            _take_vote(event, answers, policy, counts)
        else:
            counts.skipped["unsupported_kind"] += 1
    sft, kto, derived = _from_answers(answers.values(), policy, counts)
    pairs = combine_pairs(resolve_comparisons(comparisons, counts) + derived, policy, counts)
    finished: dict[str, Sequence[SftRow | PreferencePair | KtoRow]] = {
        "sft": finish_set(sft, policy, counts.sets["sft"]),
        "preference": finish_set(pairs, policy, counts.sets["preference"]),
        "kto": finish_set(dedupe_kto(kto, counts.sets["kto"]), policy, counts.sets["kto"]),
    }
    held = held_out_answers(list(finished.values()), times, policy.generation.held_out_fraction)
    sft_split, pair_split, kto_split = purge_shared_answers(
        [(split_set(rows, held, counts.sets[name]), counts.sets[name]) for name, rows in finished.items()]
    )
    return GenerationSets(
        sft=sft_split,
        preference=pair_split,
        kto=kto_split,
        counts=counts.to_dict(),
        cutoff=now,
    )


# -- votes on logged answers -------------------------------------------------------------------


def _take_vote(event: FeedbackEvent, answers: dict[str, _Answer], policy: Policy, counts: Counts) -> None:
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
        found = answers[served.prediction_id] = _Answer(served, answer, conversation_of(served, answer), {}, {}, {})
    current = found.votes.get(vote.voter)
    if current is not None:
        counts.conflicts["superseded"] += 1
    if current is None or vote.explicit or not current.explicit:  # events come oldest first
        found.votes[vote.voter] = vote
    if event.kind == FeedbackKind.RATING:
        found.ratings[vote.voter] = event
    elif event.kind == FeedbackKind.CORRECTION:
        found.corrections[vote.voter] = event


def _vote_of(event: FeedbackEvent, policy: Policy, counts: Counts) -> _Vote | None:
    payload, voter = event.feedback.payload, voter_of(event)
    if event.kind == FeedbackKind.RATING:
        rating = int(payload["rating"])
        good = (
            True if rating >= policy.generation.sft_min_rating else False if rating <= UNDESIRABLE_MAX_RATING else None
        )
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


def _from_answers(
    answers: Iterable[_Answer], policy: Policy, counts: Counts
) -> tuple[list[SftRow], list[KtoRow], list[tuple[PreferencePair, Finish]]]:
    sft: list[SftRow] = []
    kto: list[KtoRow] = []
    pairs: list[tuple[PreferencePair, Finish]] = []
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
            provenance = provenance_of([v.event for v in agreeing], [served.prediction_id], served.version)
            quality = response_quality(answer.response, answer.finish_reason, policy, wanted=verdict)
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


def _keep(rows: list[R], row: R, quality: str | None, counts: Counts, name: str) -> None:
    counts.sets[name]["candidates"] += 1
    if quality is None:
        rows.append(row)
    else:
        counts.sets[name][quality] += 1


def _correction(
    found: _Answer,
    verdict: bool | None,
    policy: Policy,
    counts: Counts,
    sft: list[SftRow],
    pairs: list[tuple[PreferencePair, Finish]],
) -> None:
    """The answer's correction: the text most subjects gave (their latest each; a tie: the latest)."""
    events = sorted(found.corrections.values(), key=lambda e: (e.created_at, e.id))
    support = Counter(norm(str(e.feedback.payload["correction"])) for e in events)
    top = max(support.values())
    chosen = next(e for e in reversed(events) if support[norm(str(e.feedback.payload["correction"]))] == top)
    text = str(chosen.feedback.payload["correction"])
    backing = [e for e in events if norm(str(e.feedback.payload["correction"])) == norm(text)]
    counts.conflicts["correction_outvoted"] += len(events) - len(backing)
    served = found.served
    provenance = provenance_of(backing, [served.prediction_id], served.version)
    _keep(
        sft, SftRow(found.messages, text, "correction", provenance), response_quality(text, None, policy), counts, "sft"
    )
    if verdict is True:
        counts.conflicts["correction_against_verdict"] += 1
        return
    pair = PreferencePair(found.messages, text, found.answer.response, "correction", provenance)
    pairs.append((pair, (None, found.answer.finish_reason)))


def _rating_pairs(group: Sequence[tuple[int, _Answer]], policy: Policy) -> list[tuple[PreferencePair, Finish]]:
    """Every two answers to one prompt rated at least ``rating_pair_gap`` apart, distinct
    responses; the widest gaps first, then the newest."""
    found = []
    for high, better in group:
        for low, worse in group:
            if high - low < policy.generation.rating_pair_gap:
                continue
            if norm(better.answer.response) == norm(worse.answer.response):
                continue
            events = list(better.ratings.values()) + list(worse.ratings.values())
            ids = [better.served.prediction_id, worse.served.prediction_id]
            pair = PreferencePair(
                better.messages,
                better.answer.response,
                worse.answer.response,
                "ratings",
                provenance_of(events, ids, better.served.version),
            )
            found.append((high - low, pair, (better.answer.finish_reason, worse.answer.finish_reason)))
    found.sort(key=lambda f: (-f[0], _order_desc(f[1])))
    return [(pair, finish) for _, pair, finish in found]


def _order_desc(pair: PreferencePair) -> tuple[Any, ...]:
    p = pair.provenance
    return (-p.created_at.timestamp(), p.feedback_ids, p.prediction_ids)
