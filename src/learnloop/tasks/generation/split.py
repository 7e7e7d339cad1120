"""The last steps of every set: identical rows made one, subject caps, the time split. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

from learnloop.curation.conflicts import subject_caps
from learnloop.policy import Policy
from learnloop.tasks.generation.rules import messages_key, norm, row_order
from learnloop.tasks.generation.sets import KtoRow, PreferencePair, R, SftRow, Split


def dedupe_kto(rows: Sequence[KtoRow], counts: Counter[str]) -> list[KtoRow]:
    """One KTO row per (conversation, response): the majority label's latest; a tie: none."""
    groups: dict[Hashable, list[KtoRow]] = {}
    for row in sorted(rows, key=row_order):
        groups.setdefault((messages_key(row.messages), norm(row.response)), []).append(row)
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


def finish_set(rows: Sequence[R], policy: Policy, counts: Counter[str]) -> list[R]:
    """Identical rows made one (the latest), subjects capped, in time order (``split_set``
    then splits them)."""
    unique: dict[Hashable, R] = {}
    for row in sorted(rows, key=row_order):
        key = row_key(row)
        if key in unique:
            counts["duplicate"] += 1
            del unique[key]
        unique[key] = row
    capped = cap_subjects(list(unique.values()), policy.curation.max_subject_share, counts)
    return sorted(capped, key=row_order)


AnswerTimes = Mapping[str, tuple[datetime, datetime]]  # prediction id -> (logged, first judged)


def held_out_answers(
    sets: Sequence[Sequence[SftRow | PreferencePair | KtoRow]], times: AnswerTimes, fraction: float
) -> frozenset[Hashable]:
    """The newest ``fraction`` (rounded half up) of the answers the rows of all ``sets`` hold,
    by when each was logged, then first judged: the ones every set holds out. A standalone row
    (no logged answer) is one answer, at its event's time."""
    order: dict[Hashable, tuple[datetime, datetime, str]] = {}
    for rows in sets:
        for row in rows:
            at = row.provenance.created_at
            for answer in answer_ids(row):
                logged, judged = times.get(answer, (at, at)) if isinstance(answer, str) else (at, at)
                order[answer] = (logged, judged, str(answer))
    ordered = sorted(order, key=order.__getitem__)
    n_held = int(len(ordered) * fraction + 0.5)
    return frozenset(ordered[len(ordered) - n_held :])


def split_set(rows: Sequence[R], held: frozenset[Hashable], counts: Counter[str]) -> Split[R]:
    """``rows`` held out where every answer a row holds is in ``held``, trained on where none
    is; a row holding answers on both sides (a rating pair of an old and a new answer) is
    dropped (``straddles_split``), so no answer is on both sides."""
    train: list[R] = []
    held_out: list[R] = []
    for row in rows:
        answers = answer_ids(row)
        if answers <= held:
            held_out.append(row)
        elif held.isdisjoint(answers):
            train.append(row)
        else:
            counts["straddles_split"] += 1
    counts["train"], counts["held_out"] = len(train), len(held_out)
    return Split(tuple(train), tuple(held_out))


def answer_ids(row: SftRow | PreferencePair | KtoRow) -> frozenset[Hashable]:
    """The logged answers (prediction ids) a row holds, or for a standalone row its events."""
    p = row.provenance
    return frozenset(p.prediction_ids) if p.prediction_ids else frozenset([("standalone", *p.feedback_ids)])


def purge_shared_answers(splits: Sequence[tuple[Split[Any], Counter[str]]]) -> list[Split[Any]]:
    """Each split with the training rows left out that share an answer with a held-out row of
    any set (counted ``shares_held_out_answer``): the same logged answer (its prediction id), or
    the same text answering the same conversation under another id (a greeting sampled twice).
    An answer the gate scores was never trained on, in any role (a chosen side held out and an
    SFT target in training), so held-out scores measure what the candidate learnt, not what it
    saw. (``split_set`` keeps each logged answer on one side already; this also catches texts.)"""
    held_ids = {pid for split, _ in splits for row in split.held_out for pid in row.provenance.prediction_ids}
    held_texts = {key for split, _ in splits for row in split.held_out for key in answer_keys(row)}
    out: list[Split[Any]] = []
    for split, counts in splits:
        train = tuple(
            r
            for r in split.train
            if held_ids.isdisjoint(r.provenance.prediction_ids) and held_texts.isdisjoint(answer_keys(r))
        )
        if len(train) < len(split.train):
            counts["shares_held_out_answer"] += len(split.train) - len(train)
            counts["train"] = len(train)
        out.append(Split(train, split.held_out))
    return out


def answer_keys(row: SftRow | PreferencePair | KtoRow) -> set[Hashable]:
    """(conversation, answer) of every answer a row holds: both sides of a pair."""
    conversation = messages_key(row.messages)
    answers = (row.chosen, row.rejected) if isinstance(row, PreferencePair) else (row.response,)
    return {(conversation, norm(answer)) for answer in answers}


def row_key(row: SftRow | PreferencePair | KtoRow) -> Hashable:
    if isinstance(row, PreferencePair):
        return (messages_key(row.messages), norm(row.chosen), norm(row.rejected))
    return (messages_key(row.messages), norm(row.response))


def cap_subjects(rows: list[R], share: float, counts: Counter[str]) -> list[R]:
    """At most ``share`` of the set from one subject, their latest rows kept (1: no cap); rows
    of no single subject (anonymous, or several agreeing subjects) count as others."""
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
