"""dp-logreg: the guarantee its fit spends and records, fresh noise unless asked, the extra named
when missing, and a version's record through save, load, the retrain's metrics and the CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import uci_rows
from learnloop.cli.models import privacy_line
from learnloop.errors import MissingExtraError
from learnloop.families import get_family
from learnloop.families.base import PrivacyAccounted
from learnloop.families.dp_logreg import DpLogRegPredictor

ROWS = uci_rows("yelp")[:200]
TEXTS, LABELS = [t for t, _ in ROWS], [lab for _, lab in ROWS]
FAST: dict[str, Any] = {"epochs": 2, "batch_size": 64, "n_features": 2**10}


def fit(**params: Any) -> DpLogRegPredictor:
    predictor = get_family("dp-logreg").fit(TEXTS, LABELS, label_set=["0", "1"], params={**FAST, **params}, seed=3)
    assert isinstance(predictor, DpLogRegPredictor)
    return predictor


def test_the_fit_spends_at_most_its_target_epsilon_and_records_the_guarantee() -> None:
    predictor = fit(target_epsilon=2.0)
    assert isinstance(predictor, PrivacyAccounted)
    privacy = predictor.privacy
    assert privacy["private"] is True and privacy["accountant"] == "rdp"
    assert 1.8 < privacy["epsilon"] <= 2.0  # calibrated to the target, never above it
    assert privacy["delta"] == 1 / (10 * 200) and privacy["rows"] == 200  # the default: 1/(10 n)
    assert privacy["noise_multiplier"] > 0.5
    assert privacy["steps"] == 2 * 4  # 2 epochs of ceil(200 / 64) Poisson batches
    assert privacy["sample_rate"] == 1 / 4
    assert privacy["reproducible_noise"] is False and privacy["secure_mode"] is False


def test_a_smaller_budget_means_more_noise() -> None:
    loose, tight = fit(target_epsilon=8.0).privacy, fit(target_epsilon=0.5).privacy
    assert tight["noise_multiplier"] > 2 * loose["noise_multiplier"]
    assert tight["epsilon"] <= 0.5 < loose["epsilon"] <= 8.0


def test_the_noise_is_fresh_unless_reproducible_noise_is_asked() -> None:
    first, second = fit(), fit()
    assert not np.array_equal(first.coef, second.coef)  # same seed, other noise: the seed is no secret
    same = fit(reproducible_noise=True), fit(reproducible_noise=True)
    np.testing.assert_array_equal(same[0].coef, same[1].coef)
    assert same[0].privacy["reproducible_noise"] is True


def test_without_a_target_it_trains_without_noise_and_says_it_is_not_private() -> None:
    privacy = fit(target_epsilon=None).privacy
    assert privacy["private"] is False and privacy["epsilon"] is None and privacy["noise_multiplier"] == 0.0
    assert "not private" in privacy_line(privacy)


def test_the_guarantee_survives_save_and_load(tmp_path: Path) -> None:
    family = get_family("dp-logreg")
    predictor = fit(delta=1e-6)
    family.save(predictor, tmp_path)
    loaded = family.load(tmp_path)
    assert isinstance(loaded, DpLogRegPredictor)
    assert loaded.privacy == predictor.privacy and loaded.privacy["delta"] == 1e-6
    line = privacy_line(loaded.privacy)
    assert line.startswith(f"differential privacy: epsilon {predictor.privacy['epsilon']:.3g}, delta 1e-06")


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opacus", None)  # how Python marks a module not importable
    with pytest.raises(MissingExtraError, match=r"pip install 'learnloop\[privacy\]' \(missing: opacus\)"):
        fit()


def test_params_outside_their_ranges_are_refused() -> None:
    from learnloop.errors import ValidationError

    family = get_family("dp-logreg")
    for bad in ({"target_epsilon": 0.0}, {"delta": 0.5}, {"max_grad_norm": -1.0}, {"n_features": 2**30}):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            family.resolve_params(bad)
