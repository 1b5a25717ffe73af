"""Tests of the Brier score and the calibration curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve as sklearn_calibration_curve

from mpmmu.errors import MetricInputError
from mpmmu.metrics.calibration import brier_score, calibration_curve


def test_brier_score_known_value():
    assert brier_score([1, 0, 1, 0], [0.9, 0.1, 0.6, 0.5]) == pytest.approx(
        (0.01 + 0.01 + 0.16 + 0.25) / 4
    )


def test_brier_score_raises_probability_outside_unit_interval():
    with pytest.raises(MetricInputError, match="must lie in \\[0, 1\\], got 1.5"):
        brier_score([1, 0], [1.5, 0.1])


def test_calibration_curve_uniform_matches_sklearn():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    curve = calibration_curve(y, p, n_bins=5, strategy="uniform")
    fraction, mean = sklearn_calibration_curve(y, p, n_bins=5, strategy="uniform")
    filled = curve.counts > 0
    np.testing.assert_allclose(curve.fraction_positive[filled], fraction)
    np.testing.assert_allclose(curve.mean_predicted[filled], mean)
    assert curve.counts.sum() == 500


def test_calibration_curve_quantile_bins_equal_counts():
    p = np.linspace(0.01, 0.99, 100)
    y = np.tile([0, 1], 50)
    curve = calibration_curve(y, p, n_bins=4)
    assert curve.counts.tolist() == [25, 25, 25, 25]
    assert curve.bin_edges.size == 5


def test_calibration_curve_perfect_calibration_has_zero_ece():
    p = np.array([0.2] * 5 + [0.8] * 5)
    y = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    curve = calibration_curve(y, p, n_bins=2, strategy="uniform")
    assert curve.expected_calibration_error == pytest.approx(0.0)


def test_calibration_curve_empty_bin_is_nan():
    curve = calibration_curve([0, 1], [0.05, 0.95], n_bins=10, strategy="uniform")
    assert curve.counts.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert np.isnan(curve.mean_predicted[5])


def test_calibration_curve_raises_unknown_strategy():
    with pytest.raises(MetricInputError, match="strategy"):
        calibration_curve([0, 1], [0.1, 0.9], strategy="kmeans")
