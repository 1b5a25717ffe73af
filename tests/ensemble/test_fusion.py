"""Tests of feature fusion, late fusion and the single-MLP fused head."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mpmmu.ensemble.fusion import LateFusion, fuse_features, logit, make_fused_mlp_head
from mpmmu.ensemble.synthetic import make_synthetic_pairs


def test_logit_matches_log_odds() -> None:
    np.testing.assert_allclose(logit([0.5, 0.8, 0.2]), [0.0, np.log(4.0), -np.log(4.0)])


def test_logit_is_finite_at_zero_and_one() -> None:
    values = logit([0.0, 1.0])

    assert np.all(np.isfinite(values))
    assert values[0] < -30
    assert values[1] > 30


@pytest.mark.parametrize(
    ("p_mg", "p_us", "expected"),
    [
        (0.8, 0.6, 6.0 / 7.0),  # odds 4 x 1.5 = 6
        (0.5, 0.3, 0.3),  # an undecided branch leaves the other unchanged
        (0.2, 0.8, 0.5),  # opposite log-odds cancel
        (0.9, 0.9, 81.0 / 82.0),
    ],
)
def test_late_fusion_sums_log_odds(p_mg: float, p_us: float, expected: float) -> None:
    fusion = LateFusion().fit([[0.1, 0.2], [0.9, 0.7]], [0, 1])

    proba = fusion.predict_proba([[p_mg, p_us]])

    np.testing.assert_allclose(proba[0, 1], expected)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_late_fusion_sum_learns_nothing() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(50, 2))

    fusion = LateFusion().fit(X, rng.integers(0, 2, size=50))

    np.testing.assert_array_equal(fusion.coef_, [1.0, 1.0])
    assert fusion.intercept_ == 0.0


def test_late_fusion_logistic_weights_informative_branch() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    p_us = 1 / (1 + np.exp(-(2.0 * y - 1.0 + rng.normal(size=400))))
    p_mg = rng.uniform(0.05, 0.95, size=400)

    fusion = LateFusion(weights="logistic").fit(np.column_stack([p_mg, p_us]), y)

    assert fusion.coef_[1] > 0.5
    assert abs(fusion.coef_[0]) < 0.3


def test_late_fusion_predict_uses_zero_log_odds() -> None:
    fusion = LateFusion().fit([[0.1, 0.2], [0.9, 0.7]], ["benign", "malignant"])

    labels = fusion.predict([[0.8, 0.6], [0.2, 0.3]])

    assert labels.tolist() == ["malignant", "benign"]


def test_late_fusion_raises_logits_instead_of_probabilities() -> None:
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        LateFusion().fit([[-2.0, 0.5], [1.5, 0.5]], [0, 1])


def test_late_fusion_raises_three_columns() -> None:
    with pytest.raises(ValueError, match="2 columns"):
        LateFusion().fit([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], [0, 1])


def test_late_fusion_raises_unknown_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        LateFusion(weights="mean").fit([[0.1, 0.2], [0.9, 0.7]], [0, 1])


def test_fuse_features_puts_mammography_first() -> None:
    fused = fuse_features(np.ones((3, 2)), np.zeros((3, 4)))

    assert fused.shape == (3, 6)
    assert np.all(fused[:, :2] == 1)
    assert np.all(fused[:, 2:] == 0)


def test_fuse_features_raises_row_mismatch() -> None:
    with pytest.raises(ValueError, match="features_mg has 3 rows but features_us has 2"):
        fuse_features(np.ones((3, 2)), np.ones((2, 2)))


def test_fuse_features_raises_nan() -> None:
    features = np.ones((3, 2))
    features[1, 1] = np.nan

    with pytest.raises(ValueError, match="features_us contains NaN"):
        fuse_features(np.ones((3, 2)), features)


def test_fused_mlp_head_learns_synthetic_pairs() -> None:
    train = make_synthetic_pairs(n_ultrasound_patients=200, n_mammograms=200, seed=0)
    test = make_synthetic_pairs(n_ultrasound_patients=200, n_mammograms=200, seed=1)

    head = make_fused_mlp_head(n_components=8, random_state=0)
    head.fit(fuse_features(train["features_mg"], train["features_us"]), train["y"])
    proba = head.predict_proba(fuse_features(test["features_mg"], test["features_us"]))

    assert proba.shape == (200, 2)
    assert roc_auc_score(test["y"], proba[:, 1]) > 0.75


def test_fused_mlp_head_raises_bad_n_components() -> None:
    with pytest.raises(ValueError, match="n_components must be None"):
        make_fused_mlp_head(n_components=1.5)
