"""The generative demo's hidden taste and its summary statistics."""

from __future__ import annotations

import random

import pytest

from learnloop.replay.npc.stats import compare_means, mean_interval, wilson
from learnloop.replay.npc.taste import Taste, breaks_scene, choose, rate, score


def test_greeting_and_hosting_please_and_breaking_the_scene_does_not() -> None:
    host = "Welcome, traveler! Sit by the hearth, I'll bring you an ale."
    plain = "The news is that the mill burned down last week."
    broken = "As an AI language model, I cannot drink ale."
    assert score(host) == 2.5 and score(plain) == 0.0 and score(broken) == -2.0
    assert breaks_scene(broken) and not breaks_scene(host)
    assert score("Here is some Python code: ```print(1)```") < 0
    assert (
        score("The mill burned down last week, said the traveler: welcome!") == 0.5
    )  # a greeting counts in the first words only


def test_ratings_follow_the_taste_within_the_noise() -> None:
    rng = random.Random(0)
    taste = Taste(rating_noise=0.0)
    assert rate("Welcome, friend! A room and a pint?", taste, rng) == 5
    assert rate("I am an AI assistant.", taste, rng) == 1
    noisy = [rate("The mill burned down last week.", Taste(rating_noise=1.0), rng) for _ in range(500)]
    assert set(noisy) <= {1, 2, 3, 4, 5} and 2.8 < sum(noisy) / len(noisy) < 3.3


def test_a_player_prefers_the_clearly_better_answer_and_sometimes_errs() -> None:
    good, bad = "Welcome, traveler, to my inn!", "I am a language model."
    taste = Taste(choice_errors=0.0)
    assert choose(good, bad, taste, random.Random(0)) == 0
    assert choose(bad, good, taste, random.Random(0)) == 1
    assert choose("The mill burned.", "The mill fell.", taste, random.Random(0)) is None  # neither clearly better
    rng = random.Random(1)
    wrong = sum(choose(good, bad, Taste(choice_errors=0.25), rng) == 1 for _ in range(2000))
    assert 400 < wrong < 600


def test_mean_interval_and_the_comparison_of_two_versions() -> None:
    one = mean_interval([1.0, 2.0, 3.0])
    assert one["mean"] == 2.0 and one["ci95"] == pytest.approx([2 - 2.4841, 2 + 2.4841], abs=1e-3)
    assert mean_interval([])["mean"] is None and mean_interval([4.0])["ci95"] is None
    better = compare_means([1, 2, 2, 3, 2, 1, 2, 3] * 3, [4, 5, 4, 3, 5, 4, 4, 5] * 3)
    assert better["difference"] == pytest.approx(2.25)
    assert better["ci95"][0] > 1 and better["welch_p"] < 1e-6 and better["mann_whitney_p"] < 1e-6
    same = compare_means([3, 3, 3], [3, 3])
    assert same["difference"] == 0.0 and same["welch_p"] == 1.0
    assert compare_means([3], [4, 5])["welch_p"] is None


def test_wilson_interval_stays_inside_zero_and_one() -> None:
    low, high = wilson(10, 10) or (0.0, 0.0)
    assert 0.69 < low < 0.73 and high == pytest.approx(1.0)
    assert wilson(0, 0) is None
    low, high = wilson(5, 10) or (0.0, 0.0)
    assert low == pytest.approx(1 - high)
