"""UUIDv7 identifiers: time-ordered, strictly increasing in one process."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from learnloop import ids


def test_10k_ids_strictly_increase_as_numbers_and_as_strings() -> None:
    made = [ids.uuid7() for _ in range(10_000)]
    assert all(a.int < b.int for a, b in itertools.pairwise(made))
    texts = [str(u) for u in made]
    assert texts == sorted(texts)
    assert len(set(texts)) == len(texts)


def test_ids_are_rfc_9562_version_7_with_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    u = ids.uuid7()
    after = time.time_ns() // 1_000_000
    assert u.version == 7
    assert (u.int >> 76) & 0xF == 7  # the version nibble itself
    assert u.variant == uuid.RFC_4122
    assert before <= u.int >> 80 <= after
    parsed = uuid.UUID(ids.new_id())
    assert parsed.version == 7


@pytest.fixture(autouse=True)
def restore_generator_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests below move the generator's clock; later ids in this process must not inherit it.
    monkeypatch.setattr(ids, "_last_ms", ids._last_ms)
    monkeypatch.setattr(ids, "_counter", ids._counter)


def test_more_ids_than_the_counter_holds_in_one_millisecond_stay_increasing(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.time_ns() + 10_000_000_000  # a stopped clock, ahead of anything issued so far
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: frozen))
    made = [ids.uuid7() for _ in range(10_000)]  # > 4096: the counter must roll into the next ms
    assert all(a.int < b.int for a, b in itertools.pairwise(made))
    assert all(u.version == 7 for u in made)


def test_a_clock_that_steps_back_does_not_break_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time_ns() + 20_000_000_000]
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: now[0]))
    first = ids.uuid7()
    now[0] -= 5_000_000_000  # NTP steps the clock back 5 s
    second = ids.uuid7()
    assert second.int > first.int


def test_ids_from_many_threads_are_unique() -> None:
    out: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(i: int) -> None:
        out[i].extend(ids.uuid7() for _ in range(2_500))

    threads = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    flat = [u for chunk in out for u in chunk]
    assert len(set(flat)) == 10_000
    for chunk in out:  # each thread sees its own ids in order
        assert all(a.int < b.int for a, b in itertools.pairwise(chunk))
