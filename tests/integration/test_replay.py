"""A replay in process, on a real database, with the data learnloop ships: the loop must end
ahead of the static model and never serve a version its gate rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.domain import ModelVersion
from learnloop.errors import ValidationError
from learnloop.replay import DataFile, ReplayConfig, UserModel, run_replay
from learnloop.replay.drivers import LoopEvent


def shipped(domain: str) -> DataFile:
    return DataFile(uci_sentiment_path(domain), "0", "1", "tsv", header=False, name=domain)


class Recorder:
    def __init__(self) -> None:
        self.stages: list[str] = []
        self.events: list[tuple[int, LoopEvent]] = []
        self.done = 0
        self.refitted = (0, 0)

    def stage(self, message: str) -> None:
        self.stages.append(message)

    def item(self, done: int, total: int, scored: int, correct: int) -> None:
        assert done >= self.done and correct <= scored <= done
        self.done = done

    def refit(self, done: int, total: int) -> None:
        self.refitted = (done, total)

    def event(self, event: LoopEvent, item: int) -> None:
        self.events.append((item, event))


def test_replay_of_a_domain_shift_ends_ahead_of_the_static_model(database_url: str, tmp_path: Path) -> None:
    recorder = Recorder()
    config = ReplayConfig(
        bootstrap=shipped("yelp"),
        stream=[shipped("amazon_cells")],
        out=tmp_path / "replay",
        users=UserModel(feedback_rate=0.6, noise=0.05),
        database_url=None if database_url.startswith("sqlite") else database_url,
        seed=1,
    )
    result = run_replay(config, recorder)
    s = result.summary

    assert recorder.done == 1000
    assert recorder.refitted == (1000, 1000)  # the oracle's progress was reported to the end
    promotions = [e for _, e in recorder.events if e.kind == "promoted"]
    assert promotions, "the loop never promoted a retrained version"
    # Ahead of the static model on the stream as a whole, and over its second half (one window
    # of 100 items is too noisy to judge: +-4 points either way).
    assert s["post_shift"]["loop"]["accuracy"] > s["post_shift"]["static"]["accuracy"]
    second_half = [w for w in s["windows"] if w["start"] >= 500]
    assert sum(w["loop"] for w in second_half) > sum(w["static"] for w in second_half)
    assert s["loop_vs_static"]["loop_only_right"] > s["loop_vs_static"]["static_only_right"]
    # Safety: what the gate rejected never served; every version that served was promoted.
    served = set(s["safety"]["versions_served"])
    assert not served & set(s["safety"]["rejected_versions"])
    assert served <= {1} | {e.version for e in promotions}
    # The static baseline is version 1 itself: wherever version 1 served, they agree.
    trace = result.trace
    served_by_v1 = [i for i, v in enumerate(trace.versions) if v == 1]
    assert served_by_v1
    assert all(trace.served[i] == result.static_predictions[i] for i in served_by_v1)
    # The oracle (every true label, no gate) is the upper limit it is compared with.
    assert s["post_shift"]["oracle"]["accuracy"] >= s["post_shift"]["static"]["accuracy"]
    # The naive loop (every user label, no gate) is scored on the same items and compared.
    assert s["config"]["naive_every"] == 50  # the replay policy's retrain_every
    assert s["timing"]["naive_fits"] > 1
    assert 0.0 < s["post_shift"]["naive"]["accuracy"] <= 1.0
    versus = s["loop_vs_naive"]
    assert versus["n"] == s["post_shift_items"]
    assert versus["difference"] == pytest.approx(versus["loop_accuracy"] - versus["naive_accuracy"])
    assert "naive" in s["windows"][0]
    assert json.loads(result.summary_path.read_text())["items"] == 1000
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = result.html_path.read_text()
    assert "<svg" in page
    assert "<th>naive</th>" in page and "Naive loop (every label, no gate)" in page


def test_replays_with_the_same_seed_serve_the_same_answers(tmp_path: Path) -> None:
    def run(out: str) -> dict[str, object]:
        config = ReplayConfig(
            bootstrap=shipped("yelp"),
            stream=[shipped("imdb")],
            out=tmp_path / out,
            limit_per_segment=300,
            users=UserModel(feedback_rate=0.5),
            seed=7,
        )
        return run_replay(config).summary

    one, two = run("a"), run("b")
    assert one["windows"] == two["windows"]
    again = run("a")  # a replay replaces its own earlier output
    assert again["windows"] == one["windows"]
    assert [r["decision"] for r in one["retrains"]] == [r["decision"] for r in two["retrains"]]  # type: ignore[index]


def test_replay_refuses_a_stream_with_labels_the_bootstrap_lacks(tmp_path: Path) -> None:
    odd = tmp_path / "odd.tsv"
    odd.write_text("great phone\t1\nterrible\tmaybe\n", encoding="utf-8")
    config = ReplayConfig(
        bootstrap=shipped("yelp"),
        stream=[DataFile(odd, "0", "1", header=False)],
        out=tmp_path / "out",
    )
    with pytest.raises(ValidationError, match="maybe"):
        run_replay(config)


def test_replay_will_not_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    config = ReplayConfig(bootstrap=shipped("yelp"), stream=[shipped("imdb")], out=tmp_path)
    with pytest.raises(ValidationError, match="not empty"):
        run_replay(config)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def version_1(out: Path) -> ModelVersion:
    """Version 1 of the replay's model, read from the replay's home."""
    from learnloop.config import Settings
    from learnloop.services import build_services

    services = build_services(Settings(home=out / "home"))
    try:
        return services.registry.version("replay", 1)
    finally:
        services.close()


def test_baselines_use_the_family_version_1_was_chosen_from_candidates(tmp_path: Path) -> None:
    """A policy with candidate families may fit version 1 with another family than the model's
    own: the static, naive and oracle baselines must be fitted like that version, not like the
    family the replay named (else "static" is not the model that served)."""

    config = ReplayConfig(
        bootstrap=shipped("yelp"),
        stream=[shipped("amazon_cells")],
        out=tmp_path / "replay",
        limit_per_segment=100,
        family="incremental",
        policy={"candidate_families": "tfidf-logreg"},
        seed=1,
    )
    result = run_replay(config)
    first = version_1(tmp_path / "replay")
    assert first.family == "tfidf-logreg"  # the candidate won version 1's selection on this data and seed
    assert result.summary["baselines"] == {"family": first.family, "params": first.params}
    trace = result.trace
    served_by_v1 = [i for i, v in enumerate(trace.versions) if v == 1]
    assert served_by_v1
    assert all(trace.served[i] == result.static_predictions[i] for i in served_by_v1)


def test_family_parameters_reach_the_model_and_its_baselines(tmp_path: Path) -> None:
    """``params`` are the family's for version 1 and for the static, naive and oracle refits, so a
    setting is compared with the same setting's baselines."""

    params = {"replay_size": 50, "update_step": 0.2}
    config = ReplayConfig(
        bootstrap=shipped("yelp"),
        stream=[shipped("amazon_cells")],
        out=tmp_path / "replay",
        limit_per_segment=100,
        family="incremental",
        params=params,
        seed=1,
    )
    result = run_replay(config)
    first = version_1(tmp_path / "replay")
    assert first.family == "incremental"
    assert {key: first.params[key] for key in params} == params
    assert result.summary["baselines"] == {"family": "incremental", "params": first.params}
    assert result.summary["config"]["params"] == params
