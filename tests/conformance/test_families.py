"""Every model family passes the same checks, on real shipped text."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import uci_rows
from learnloop.artifacts import LocalArtifactStore
from learnloop.errors import ArtifactError, InsufficientDataError, ValidationError
from learnloop.families import FAMILIES, ModelFamily, Predictor, get_family
from learnloop.families.base import Continuing, SubsetFitting
from learnloop.families.manifest import MANIFEST, load_predictor, save_predictor

# The classifier families: what the checks below fit and load. A family with nothing to fit
# (``external``: answers made elsewhere) has checks of its own at the end.
FAMILY_KEYS = sorted(key for key, family in FAMILIES.items() if family.task == "classification")
# Those that fit several subsets sharing work (``SubsetFitting``: a retrain's fold models).
SUBSET_FITTING_KEYS = [key for key in FAMILY_KEYS if isinstance(FAMILIES[key], SubsetFitting)]
# Those whose fit continues a previous version (``Continuing``: a retrain tries update and refit).
CONTINUING_KEYS = [key for key in FAMILY_KEYS if isinstance(FAMILIES[key], Continuing)]


@pytest.fixture(params=FAMILY_KEYS)
def family(request: pytest.FixtureRequest) -> ModelFamily:
    return FAMILIES[request.param]


# A family that runs a neural encoder on CPU sees a quarter of the texts (its encoder and the
# vectors it computed live as long as the test session: the family object is shared).
SCALE: dict[str, float] = {"embedding-logreg": 0.25}


# What a family is fitted with here beyond its defaults. dp-logreg draws its noise from the
# system's entropy unless told otherwise (a seeded noise is no privacy): the checks of
# determinism need the seed to decide it. At its default epsilon (3) a private fit of these 600
# sentences is near chance (0.60 held out): here it spends 8, in full batches (20 steps, fast);
# what privacy costs at real sizes is bench/privacy_bench.py's figure.
PARAMS: dict[str, dict[str, Any]] = {
    "dp-logreg": {"reproducible_noise": True, "target_epsilon": 8.0, "batch_size": 1024, "learning_rate": 8.0}
}


def scaled(family: ModelFamily, n: int) -> int:
    return round(n * SCALE.get(family.key, 1.0))


def binary_data(family: ModelFamily) -> tuple[list[str], list[str]]:
    rows = uci_rows("yelp")[: scaled(family, 600)]
    return [t for t, _ in rows], [lab for _, lab in rows]


def domain_data(family: ModelFamily) -> tuple[list[str], list[str]]:
    """Three classes: which site a review sentence came from."""
    texts, labels = [], []
    for domain in ("yelp", "amazon_cells", "imdb"):
        for text, _ in uci_rows(domain)[: scaled(family, 200)]:
            texts.append(text)
            labels.append(domain)
    return texts, labels


def probe_texts(family: ModelFamily) -> list[str]:
    held_out = [t for t, _ in uci_rows("imdb")[500 : 500 + scaled(family, 150)]]
    held_out += [t for t, _ in uci_rows("amazon_cells")[900 : 900 + scaled(family, 50)]]
    return [*held_out, "zzzz qqqq xyzzy", "!", "The script is\x85was there a script?", "Great " * 300]


def fit(family: ModelFamily, texts: list[str], labels: list[str], label_set: list[str], seed: int = 0) -> Predictor:
    return family.fit(texts, labels, label_set=label_set, params=PARAMS.get(family.key, {}), seed=seed)


DATASETS: dict[str, tuple[Callable[[ModelFamily], tuple[list[str], list[str]]], list[str] | None]] = {
    "binary": (binary_data, None),
    "multiclass": (domain_data, None),
    # a label the training data never shows: its column must exist and be zero
    "unseen-label": (binary_data, ["0", "1", "2"]),
}


@pytest.fixture(params=sorted(DATASETS))
def trained(request: pytest.FixtureRequest, family: ModelFamily) -> tuple[ModelFamily, Predictor, list[str]]:
    make, label_set = DATASETS[request.param]
    texts, labels = make(family)
    labels_used = label_set or sorted(set(labels))
    return family, fit(family, texts, labels, labels_used), labels_used


def test_predictor_labels_follow_the_label_set(trained: tuple[ModelFamily, Predictor, list[str]]) -> None:
    _, predictor, label_set = trained
    assert isinstance(predictor, Predictor)
    assert list(predictor.labels) == label_set


def test_probability_rows_sum_to_one(trained: tuple[ModelFamily, Predictor, list[str]]) -> None:
    family, predictor, label_set = trained
    proba = predictor.predict_proba(probe_texts(family))
    assert proba.shape == (len(probe_texts(family)), len(label_set))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert predictor.predict_proba([]).shape == (0, len(label_set))


def test_predict_one_equals_the_predict_proba_row(trained: tuple[ModelFamily, Predictor, list[str]]) -> None:
    family, predictor, label_set = trained
    texts = probe_texts(family)
    proba = predictor.predict_proba(texts)
    for text, row in zip(texts, proba, strict=True):
        label, probabilities = predictor.predict_one(text)
        assert list(probabilities) == label_set
        np.testing.assert_allclose([probabilities[lab] for lab in label_set], row, rtol=0, atol=1e-9)
        assert probabilities[label] == max(probabilities.values())
    if "2" in label_set:  # never trained on
        assert np.all(proba[:, label_set.index("2")] == 0)


def test_fit_learns_something_real(family: ModelFamily) -> None:
    texts, labels = binary_data(family)
    predictor = fit(family, texts, labels, ["0", "1"])
    held_out = uci_rows("yelp")[600 : 600 + scaled(family, 400)]
    proba = predictor.predict_proba([t for t, _ in held_out])
    predicted = [predictor.labels[i] for i in proba.argmax(axis=1)]
    accuracy = np.mean([p == lab for p, (_, lab) in zip(predicted, held_out, strict=True)])
    assert accuracy > 0.65  # chance is 0.5 on this balanced set


def test_save_load_round_trip_gives_identical_probabilities(
    trained: tuple[ModelFamily, Predictor, list[str]], tmp_path: Path
) -> None:
    family, predictor, _ = trained
    store = LocalArtifactStore(tmp_path / "artifacts")
    uri = save_predictor(store, "models/m/v1", family.key, predictor, {"model": "m"})
    loaded = load_predictor(store, uri)
    texts = probe_texts(family)
    assert loaded.labels == predictor.labels
    np.testing.assert_array_equal(loaded.predict_proba(texts), predictor.predict_proba(texts))
    assert loaded.predict_one(texts[0]) == predictor.predict_one(texts[0])
    manifest = json.loads((store.get_dir(uri) / MANIFEST).read_text())
    assert manifest["family"] == family.key
    assert manifest["model"] == "m"


@pytest.fixture
def saved(family: ModelFamily, tmp_path: Path) -> tuple[LocalArtifactStore, str]:
    texts, labels = binary_data(family)
    store = LocalArtifactStore(tmp_path / "artifacts")
    return store, save_predictor(store, "models/m/v1", family.key, fit(family, texts, labels, ["0", "1"]), {})


def edit_manifest(store: LocalArtifactStore, uri: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = store.get_dir(uri) / MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_tampered_format_version_is_refused(saved: tuple[LocalArtifactStore, str]) -> None:
    store, uri = saved
    edit_manifest(store, uri, lambda m: m.update(format_version=m["format_version"] + 1))
    with pytest.raises(ArtifactError, match="format"):
        load_predictor(store, uri)


def test_tampered_library_version_is_refused(saved: tuple[LocalArtifactStore, str]) -> None:
    store, uri = saved
    edit_manifest(store, uri, lambda m: m["libraries"].update({k: "0.0.1" for k in m["libraries"]}))
    with pytest.raises(ArtifactError, match="saved with"):
        load_predictor(store, uri)


def test_another_library_version_is_refused_naming_both_versions_before_unpickling(
    family: ModelFamily, saved: tuple[LocalArtifactStore, str]
) -> None:
    store, uri = saved
    library, installed = next(iter(family.library_versions().items()))
    edit_manifest(store, uri, lambda m: m["libraries"].update({library: "0.0.1"}))
    directory = store.get_dir(uri)
    for path in directory.iterdir():  # unpickling these would raise anything but a clear error
        if path.name != MANIFEST:
            path.write_bytes(b"\x80\x04garbage that is not a pickle")
    with pytest.raises(ArtifactError) as caught:
        load_predictor(store, uri)
    assert caught.value.message == (
        f"artifact {uri} was saved with {library} 0.0.1, installed {installed}: retrain it or install {library}==0.0.1"
    )


def test_another_family_or_format_is_refused_naming_what_wrote_it(
    family: ModelFamily, saved: tuple[LocalArtifactStore, str]
) -> None:
    store, uri = saved
    edit_manifest(store, uri, lambda m: m.update(family="gpt-17", learnloop="9.9.9"))
    with pytest.raises(ArtifactError, match=r"saved by model family 'gpt-17' \(written by learnloop 9.9.9\)"):
        load_predictor(store, uri)
    edit_manifest(store, uri, lambda m: m.update(family=family.key, format_version=family.format_version + 1))
    with pytest.raises(
        ArtifactError,
        match=rf"is {family.key} format {family.format_version + 1} \(written by learnloop 9.9.9\); "
        rf"this learnloop reads format {family.format_version}",
    ):
        load_predictor(store, uri)


def test_tampered_file_hash_is_refused(saved: tuple[LocalArtifactStore, str]) -> None:
    store, uri = saved
    edit_manifest(store, uri, lambda m: m["files"].update({name: "0" * 64 for name in m["files"]}))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_predictor(store, uri)


def test_modified_artifact_file_is_refused(saved: tuple[LocalArtifactStore, str]) -> None:
    store, uri = saved
    directory = store.get_dir(uri)
    victim = next(p for p in sorted(directory.iterdir()) if p.name != MANIFEST)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ArtifactError):
        load_predictor(store, uri)


def test_missing_or_corrupt_manifest_or_files_are_refused(saved: tuple[LocalArtifactStore, str]) -> None:
    store, uri = saved
    directory = store.get_dir(uri)
    victim = next(p for p in sorted(directory.iterdir()) if p.name != MANIFEST)
    victim.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_predictor(store, uri)
    (directory / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        load_predictor(store, uri)
    (directory / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match=MANIFEST):
        load_predictor(store, uri)
    with pytest.raises(ArtifactError):
        load_predictor(store, uri + "-does-not-exist")


def test_fit_does_not_mutate_its_inputs(family: ModelFamily) -> None:
    texts, labels = domain_data(family)
    label_set = ["amazon_cells", "imdb", "yelp"]
    params: dict[str, Any] = {}
    snapshot = (copy.deepcopy(texts), copy.deepcopy(labels), list(label_set), dict(params))
    family.fit(texts, labels, label_set=label_set, params=params, seed=0)
    assert (texts, labels, label_set, params) == snapshot


def test_same_seed_gives_the_same_probabilities(family: ModelFamily) -> None:
    texts, labels = domain_data(family)
    label_set = sorted(set(labels))
    probe = probe_texts(family)
    first = fit(family, texts, labels, label_set, seed=7).predict_proba(probe)
    second = fit(family, texts, labels, label_set, seed=7).predict_proba(probe)
    np.testing.assert_array_equal(first, second)


def test_a_single_label_cannot_be_trained(family: ModelFamily) -> None:
    with pytest.raises(InsufficientDataError):
        family.fit(["a", "b", "c"], ["1", "1", "1"], label_set=["0", "1"], params={}, seed=0)


def test_params_are_resolved_and_checked(family: ModelFamily) -> None:
    defaults = family.resolve_params({})
    assert family.resolve_params(defaults) == defaults
    with pytest.raises(ValidationError):
        family.resolve_params({"no_such_param": 1})


def test_params_listed_are_the_params_resolved_with_their_defaults(family: ModelFamily) -> None:
    listed = {spec.name: spec for spec in family.parameters()}
    defaults = family.resolve_params({})
    assert set(defaults) == set(listed)
    for name, value in defaults.items():
        assert listed[name].default == value, name
        assert listed[name].description and listed[name].type, name


def test_an_unknown_param_is_refused_naming_the_known_ones(family: ModelFamily) -> None:
    with pytest.raises(ValidationError) as caught:
        family.resolve_params({"no_such_param": 1})
    assert caught.value.field == "params"
    for spec in family.parameters():
        assert spec.name in caught.value.message


@pytest.mark.parametrize("bad", ["4", True, [1], None])
def test_a_param_of_the_wrong_type_is_refused_naming_it(family: ModelFamily, bad: Any) -> None:
    numbers = [
        n for n, v in family.resolve_params({}).items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    name = numbers[0]  # every classifier family has a number among its parameters
    with pytest.raises(ValidationError) as caught:
        family.resolve_params({name: bad})
    assert caught.value.field == f"params.{name}"
    assert name in caught.value.message


def test_unknown_family_key_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=FAMILY_KEYS[0]):
        get_family("no-such-family")


def test_the_family_declares_the_task_it_serves(family: ModelFamily) -> None:
    from learnloop.tasks import TASKS

    assert family.task in TASKS, f"family {family.key} serves an unknown task {family.task!r}"


def test_every_registered_family_declares_a_known_task_and_resolves_its_params() -> None:
    from learnloop.tasks import TASKS

    for family in FAMILIES.values():
        assert family.task in TASKS, f"family {family.key} serves an unknown task {family.task!r}"
        defaults = family.resolve_params({})
        assert family.resolve_params(defaults) == defaults
        with pytest.raises(ValidationError):
            family.resolve_params({"no_such_param": 1})


def test_the_external_family_has_nothing_to_fit_save_or_load(tmp_path: Path) -> None:
    from learnloop.errors import NotSupportedError
    from learnloop.families import AnsweredElsewhere
    from learnloop.families.generation import GenerationRequest

    external = get_family("external")
    assert external.task == "generation"
    assert external.resolve_params({"system_prompt": "You are a helpful NPC."}) == {
        "system_prompt": "You are a helpful NPC."
    }
    with pytest.raises(ValidationError):
        external.resolve_params({"system_prompt": ""})
    with pytest.raises(NotSupportedError):
        external.fit(["a"], ["b"], label_set=["b"], params={})
    with pytest.raises(ArtifactError):
        external.load(tmp_path)
    stand_in = AnsweredElsewhere("npc")
    with pytest.raises(NotSupportedError, match="POST /v1/models/npc/generations"):
        stand_in.submit(GenerationRequest(prompt="Hello?"))


def test_the_lora_family_checks_its_base_without_loading_it(tmp_path: Path) -> None:
    lora = get_family("causal-lm-lora")
    assert lora.task == "generation"
    assert lora.resolve_params({})["base"] == "smollm2-135m-instruct"
    with pytest.raises(ValidationError, match="unknown base"):
        lora.resolve_params({"base": "gpt-17"})
    with pytest.raises(ValidationError, match=r"no config\.json"):
        lora.resolve_params({"base": str(tmp_path)})
    (tmp_path / "config.json").write_text("{}")
    assert lora.resolve_params({"base": str(tmp_path), "system_prompt": "Be brief."}) == {
        "base": str(tmp_path.resolve()),
        "system_prompt": "Be brief.",
    }


@pytest.mark.parametrize("key", SUBSET_FITTING_KEYS)
def test_fit_many_gives_each_subset_the_model_fit_gives_it(key: str) -> None:
    """A family that fits several subsets sharing work must give each subset exactly the model
    ``fit`` on its rows alone gives."""
    family = FAMILIES[key]
    assert isinstance(family, SubsetFitting)
    texts, labels = domain_data(family)
    label_set = sorted(set(labels))
    weights = [1.0 + (i % 3) / 2 for i in range(len(texts))]
    subsets: list[list[int] | None] = [
        None,
        list(range(0, len(texts), 2)),
        list(range(len(texts) // 2)),
    ]  # two of the three labels
    fitted = list(
        family.fit_many(texts, labels, subsets=subsets, label_set=label_set, params={}, sample_weight=weights, seed=0)
    )
    assert len(fitted) == len(subsets)
    probe = probe_texts(family)
    for rows, predictor in zip(subsets, fitted, strict=True):
        picked = range(len(texts)) if rows is None else rows
        alone = family.fit(
            [texts[i] for i in picked],
            [labels[i] for i in picked],
            label_set=label_set,
            params={},
            sample_weight=[weights[i] for i in picked],
            seed=0,
        )
        np.testing.assert_array_equal(predictor.predict_proba(probe), alone.predict_proba(probe))


@pytest.mark.parametrize("key", CONTINUING_KEYS)
def test_a_continuing_family_says_when_it_updates_and_otherwise_fits_from_scratch(key: str) -> None:
    """``continues`` is true for its own version on labels it saw, and false for another
    family's version or a label its version never saw, where ``fit`` is the fit from scratch."""
    family = FAMILIES[key]
    assert isinstance(family, Continuing)
    texts, labels = binary_data(family)
    params = PARAMS.get(key, {})
    previous = fit(family, texts[:300], labels[:300], ["0", "1", "2"])
    assert family.continues(previous, labels[300:], params)
    other = next(k for k in FAMILY_KEYS if k != key and k != "embedding-logreg")
    assert not family.continues(fit(FAMILIES[other], texts, labels, ["0", "1", "2"]), labels, params)
    new_label = [*labels[300:], "2", "2"]
    assert not family.continues(previous, new_label, params)
    new_texts = [*texts[300:], "a third kind", "another of the third kind"]
    probe = probe_texts(family)
    np.testing.assert_array_equal(
        family.fit(new_texts, new_label, label_set=["0", "1", "2"], params=params, previous=previous).predict_proba(
            probe
        ),
        fit(family, new_texts, new_label, ["0", "1", "2"]).predict_proba(probe),
    )
