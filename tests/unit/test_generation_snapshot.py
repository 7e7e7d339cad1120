"""The generation snapshot: content-addressed, written through the artifact store, read back whole."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from generation_feedback import at, correction, prefer, rating, served, standalone, thumbs
from learnloop.artifacts import open_store
from learnloop.domain import FeedbackEvent
from learnloop.errors import ArtifactError
from learnloop.policy import Policy
from learnloop.tasks.generation.curate import curate
from learnloop.tasks.generation.snapshot import build_snapshot, read_snapshot, snapshot_key, write_snapshot

POLICY = Policy.of(held_out_fraction=0.3)


def _events() -> list[FeedbackEvent]:
    answers = [served(f"p{i}", f"answer {i}", prompt=f"prompt {i % 3}") for i in range(6)]
    return [
        rating(answers[0], 5, when=1),
        thumbs(answers[1], True, when=2),
        correction(answers[2], "a better answer", when=3),
        prefer(answers[3], answers[0], when=4),
        thumbs(answers[4], False, when=5),
        standalone("Say hi", "Hi!", "No.", when=6),
        rating(answers[5], 5, when=7),
    ]


def test_same_content_same_hash_whenever_curated() -> None:
    events = _events()
    first = build_snapshot(curate(events, POLICY, at(100)))
    later = build_snapshot(curate(list(reversed(events)), POLICY, at(5_000)))
    assert first.hash == later.hash and first.to_jsonl_gz() == later.to_jsonl_gz()
    assert first.cutoff == at(100) and later.cutoff == at(5_000)  # lineage travels beside the hash
    fewer = build_snapshot(curate(events[:-1], POLICY, at(100)))
    assert fewer.hash != first.hash


def test_snapshot_round_trips_through_the_artifact_store(tmp_path: Path) -> None:
    sets = curate(_events(), POLICY, at(100))
    assert sets.sft.train and sets.sft.held_out and sets.preference.train and sets.kto.held_out
    snapshot = build_snapshot(sets)
    store = open_store(tmp_path.as_uri())
    key = write_snapshot(store, "npc", snapshot)
    assert key == snapshot_key("npc", snapshot.hash)
    back = read_snapshot(store.get_bytes(key), counts=snapshot.counts, cutoff=snapshot.cutoff)
    assert back.hash == snapshot.hash
    assert back.sets == sets


def test_a_file_of_another_format_is_refused() -> None:
    with pytest.raises(ArtifactError, match="generation snapshot"):
        read_snapshot(gzip.compress(b'{"text": "a", "label": "pos"}\n'))
    with pytest.raises(ArtifactError, match="corrupt"):
        read_snapshot(b"not gzip at all")
