"""The pieces of a retrain's cost and value: the cost meter on real work, the gain of a
promotion from known outcomes, and each version's first time as champion."""

from __future__ import annotations

import sys
import time
import types
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from generation_feedback import rating, served, thumbs
from learnloop.domain import Event
from learnloop.evaluation import two_sample_mean_diff_ci
from learnloop.monitoring.gain import online_gain, rating_outcomes
from learnloop.monitoring.value import first_reigns
from learnloop.training.cost import CostMeter


def test_the_cost_meter_reads_cpu_time_and_the_memory_a_fit_held() -> None:
    size = 120 * 2**20
    with CostMeter("process") as meter:
        block = np.ones(size // 8)  # 120 MiB, touched
        total = 0.0
        for _ in range(30):
            total += float(block.sum())
        del block
    cost = meter.cost
    assert cost is not None and total > 0
    assert cost.cpu_seconds > 0 and cost.wall_seconds > 0
    assert cost.peak_rss_bytes >= size
    assert cost.scope == "process" and cost.gpu_seconds is None


def test_a_thread_scoped_meter_counts_its_own_thread_only() -> None:
    with CostMeter("thread") as meter:
        sum(i * i for i in range(300_000))
    assert meter.cost is not None and meter.cost.cpu_seconds > 0 and meter.cost.scope == "thread"


def test_a_known_rise_in_accuracy_is_a_gain_over_the_traffic_served() -> None:
    before = [1.0] * 60 + [0.0] * 40
    after = [1.0] * 90 + [0.0] * 10
    gain = online_gain("accuracy", 1, before, after, 500, min_judged=30)
    assert gain.claimed and gain.delta == pytest.approx(0.3)
    assert gain.delta_ci is not None and 0 < gain.delta_ci[0] < 0.3 < gain.delta_ci[1] < 0.5
    assert gain.gain == pytest.approx(150.0)
    assert gain.gain_ci == pytest.approx((gain.delta_ci[0] * 500, gain.delta_ci[1] * 500))
    worse = online_gain("accuracy", 1, after, before, 500, min_judged=30)
    assert worse.gain is not None and worse.gain < 0 and worse.gain_ci is not None and worse.gain_ci[1] < 0


def test_too_few_judged_answers_claim_no_gain_and_say_so() -> None:
    gain = online_gain("accuracy", 1, [1.0] * 10, [1.0] * 100, 1000, min_judged=30)
    assert not gain.claimed and gain.gain is None and gain.delta_ci is None
    assert "too few" in gain.reason and "10 before" in gain.reason


def test_the_interval_of_a_difference_of_independent_means_covers_the_difference() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(3.0, 1.0, 400), rng.normal(3.5, 1.0, 400)
    ci = two_sample_mean_diff_ci(a, b)
    assert ci is not None and ci[0] < b.mean() - a.mean() < ci[1] and ci[0] > 0
    assert two_sample_mean_diff_ci([], b) is None


def test_each_version_reigns_from_its_first_promotion_to_the_next_change_of_champion() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(hours: int, kind: str, version: int, data: dict[str, object]) -> Event:
        return Event(hours, "m", kind, version, "test", None, dict(data), t0 + timedelta(hours=hours))

    reigns = first_reigns(
        [
            at(0, "promoted", 1, {"previous": None}),
            at(1, "promoted", 2, {"previous": 1}),
            at(2, "promoted", 3, {"previous": 2}),
            at(2, "rolled_back", 4, {"rollout": 9, "from": 4, "to": 3}),  # a canary of 4 ended: 3 stays
            at(3, "rolled_back", 2, {"from": 3, "to": 2}),
            at(4, "promoted", 3, {"previous": 2}),  # promoted again: its first reign counts
        ]
    )
    assert reigns[1].previous is None and reigns[1].end == t0 + timedelta(hours=1)
    assert (reigns[2].previous, reigns[2].start, reigns[2].end) == (1, t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    assert (reigns[3].previous, reigns[3].start, reigns[3].end) == (2, t0 + timedelta(hours=2), t0 + timedelta(hours=3))


class _FakeCuda:
    """torch.cuda as the meter reads it: two devices, the fit allocating on the first only."""

    def __init__(self) -> None:
        self.peaks = [0, 0]

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def device_count(self) -> int:
        return 2

    def reset_peak_memory_stats(self, device: int) -> None:
        self.peaks[device] = 0

    def max_memory_allocated(self, device: int) -> int:
        return self.peaks[device]


def test_a_fit_that_allocated_on_a_gpu_is_charged_its_wall_seconds_there(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = _FakeCuda()
    cuda.peaks = [7, 7]  # an earlier fit's peak: reset at the start
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    with CostMeter("process") as meter:
        assert cuda.peaks == [0, 0]
        cuda.peaks[0] = 3 * 2**30
        time.sleep(0.05)
    assert meter.cost is not None and meter.cost.gpu_peak_bytes == 3 * 2**30
    assert meter.cost.gpu_seconds == meter.cost.wall_seconds >= 0.05
    with CostMeter("process") as idle:  # torch loaded, CUDA up, nothing allocated by this fit
        pass
    assert idle.cost is not None and idle.cost.gpu_seconds is None


def test_a_generative_answer_counts_its_latest_rating_once_and_other_feedback_not_at_all() -> None:
    first, second = served("p1", "Try the reset link."), served("p2", "No idea.")
    events = [
        rating(first, 2, when=1.0),
        rating(first, 5, when=2.0),  # the user changed their mind: the latest counts
        rating(second, 1, when=1.0),
        thumbs(second, True, when=3.0),  # not a rating: the rating measure ignores it
    ]
    assert sorted(rating_outcomes(events)) == [1.0, 5.0]
    gain = online_gain("rating", 1, [3.0] * 40, [4.0] * 20 + [5.0] * 20, 100, min_judged=30)
    assert gain.claimed and gain.unit == "rating points" and gain.gain == pytest.approx(150.0)
