"""The audit trail's bounds on failure events (``access/audit.py``), on a clock the test moves:
one event per address and reason a window, a cap per window, and one burst event per burst
however long it goes on."""

from __future__ import annotations

from learnloop.access.audit import AuditTrail
from learnloop.clock import SystemClock


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trail(ticks: Ticks, *, threshold: int = 10, cap: int = 3) -> AuditTrail:
    # No database: deciding needs none (``write`` is what touches it).
    return AuditTrail(
        None,  # type: ignore[arg-type]
        SystemClock(),
        window_seconds=60,
        burst_threshold=threshold,
        max_failure_events=cap,
        monotonic=ticks,
    )


def kinds(t: AuditTrail, n: int, address: str = "10.0.0.1", reason: str = "bad_key") -> list[str]:
    return [e.kind for _ in range(n) for e in t.failure(reason, address=address, method="GET", route="/v1/models")]


def test_one_event_per_address_and_reason_a_window_and_a_cap_on_all() -> None:
    ticks = Ticks()
    t = trail(ticks, threshold=1000)
    assert kinds(t, 5) == ["auth_failure"]
    assert kinds(t, 2, reason="forbidden") == ["auth_failure"]
    assert kinds(t, 1, reason="throttled") == []  # counted, never written one by one
    assert kinds(t, 1, address="10.0.0.2") == ["auth_failure"]
    assert kinds(t, 1, address="10.0.0.3") == []  # the window's cap (3) is reached
    ticks.now += 61  # a new window
    assert kinds(t, 3) == ["auth_failure"]


def test_a_burst_raises_one_event_until_a_window_passes_below_the_threshold() -> None:
    ticks = Ticks()
    t = trail(ticks, threshold=10, cap=0)
    assert kinds(t, 9) == []
    assert kinds(t, 1) == ["auth_failure_burst"]
    assert kinds(t, 50) == []  # the same window
    for _ in range(3):  # the burst goes on through the next windows: no new event
        ticks.now += 60
        assert kinds(t, 30) == []
    ticks.now += 60
    assert kinds(t, 3) == []  # a quiet window: the burst has ended
    ticks.now += 60
    assert kinds(t, 10) == ["auth_failure_burst"]  # a new one
    ticks.now += 500  # long after: a new burst, not the old one going on
    assert kinds(t, 10) == ["auth_failure_burst"]


def test_a_burst_event_names_the_busiest_addresses_and_the_reasons() -> None:
    t = trail(Ticks(), threshold=12, cap=0)
    events = [e for i in range(12) for e in t.failure(
        "bad_key" if i % 2 else "throttled", address=f"10.0.0.{i % 3}", method="GET", route="/v1/models")]  # fmt: skip
    (burst,) = events
    assert burst.kind == "auth_failure_burst" and burst.actor == "learnloop"
    assert burst.data["busiest"] == {"10.0.0.0": 4, "10.0.0.1": 4, "10.0.0.2": 4}
    assert burst.data["reasons"] == {"bad_key": 6, "throttled": 6} and burst.data["failures"] == 12
