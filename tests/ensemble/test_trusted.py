"""Tests of saving and loading fitted ensembles through skops with reviewed types only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from mpmmu.ensemble.fusion import LateFusion, fuse_features
from mpmmu.ensemble.stacking import VOTE_NAMES, StackingEnsemble
from mpmmu.ensemble.synthetic import make_synthetic_pairs
from mpmmu.ensemble.trusted import SKOPS_TRUSTED_TYPES, load_ensemble, save_ensemble
from mpmmu.errors import BundleError


class Intruder:
    """An unreviewed type, standing in for code smuggled into a bundle."""

    def __init__(self) -> None:
        self.payload = "anything"


@pytest.fixture(scope="module")
def pairs() -> dict[str, np.ndarray]:
    return make_synthetic_pairs(n_ultrasound_patients=120, n_mammograms=12, seed=0)


@pytest.fixture(scope="module")
def fitted(pairs) -> StackingEnsemble:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])
    groups = np.column_stack([pairs["groups_us"], pairs["groups_mg"]])
    params = {"n_estimators": 10, "cv": 3, "calibration_cv": 2, "n_components": 4}
    return StackingEnsemble(**params, random_state=0).fit(X, pairs["y"], groups)


def test_save_ensemble_round_trip_identical_votes(fitted, pairs, tmp_path: Path) -> None:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])
    path = tmp_path / "stacking.skops"

    save_ensemble(fitted, path)
    loaded = load_ensemble(path)

    assert isinstance(loaded, StackingEnsemble)
    before, after = fitted.votes(X), loaded.votes(X)
    for name in VOTE_NAMES:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_save_ensemble_round_trip_late_fusion(tmp_path: Path) -> None:
    fusion = LateFusion(weights="logistic").fit([[0.1, 0.3], [0.8, 0.6], [0.3, 0.2]], [0, 1, 0])
    path = tmp_path / "late_fusion.skops"

    save_ensemble(fusion, path)
    loaded = load_ensemble(path)

    X = [[0.4, 0.7], [0.9, 0.1]]
    np.testing.assert_array_equal(loaded.predict_proba(X), fusion.predict_proba(X))


def test_trusted_types_cover_fitted_stacking(fitted) -> None:
    untrusted = set(sio.get_untrusted_types(data=sio.dumps(fitted)))

    assert untrusted <= set(SKOPS_TRUSTED_TYPES)


def test_load_ensemble_raises_untrusted_type(fitted, tmp_path: Path) -> None:
    path = tmp_path / "tampered.skops"
    sio.dump({"ensemble": fitted, "extra": Intruder()}, path)

    with pytest.raises(BundleError, match="Intruder"):
        load_ensemble(path)


def test_save_ensemble_raises_untrusted_type(fitted, tmp_path: Path) -> None:
    path = tmp_path / "never_written.skops"

    with pytest.raises(BundleError, match="not in SKOPS_TRUSTED_TYPES"):
        save_ensemble({"ensemble": fitted, "extra": Intruder()}, path)
    assert not path.exists()


def test_load_ensemble_raises_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot read the ensemble file"):
        load_ensemble(tmp_path / "absent.skops")
