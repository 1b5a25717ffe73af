"""Tests of ROC AUC, DeLong variance and test, bootstrap interval and operating points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from mpmmu.errors import MetricInputError
from mpmmu.metrics.roc import (
    bootstrap_auc_ci,
    choose_threshold,
    delong_ci,
    delong_covariance,
    delong_test,
    roc_auc,
    roc_curve_points,
    threshold_metrics,
)

# A hand-worked paired example: three positives then three negatives.
# Score a: positive placements (1, 1, 2/3), negative placements (2/3, 1, 1), AUC 8/9.
# Score b: positive placements (1, 2/3, 0), negative placements (1/3, 2/3, 2/3), AUC 5/9.
# S10 = [[1/27, 5/54], [5/54, 7/27]], S01 = [[1/27, 1/27], [1/27, 1/27]], each over 3 cases:
# Var(a) = 2/81, Var(b) = 8/81, Cov = 7/162, Var(a - b) = 1/27, z = (1/3) / sqrt(1/27) = sqrt(3).
HAND_Y = np.array([1, 1, 1, 0, 0, 0])
HAND_A = np.array([0.9, 0.8, 0.4, 0.5, 0.3, 0.1])
HAND_B = np.array([0.7, 0.6, 0.2, 0.65, 0.5, 0.3])


def _placement_covariance(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """DeLong's covariance from the explicit O(n^2) kernel psi(x, y) = 1, 1/2, 0."""
    positives, negatives = scores[:, y == 1], scores[:, y == 0]
    v10, v01 = [], []
    for row_pos, row_neg in zip(positives, negatives):
        psi = np.zeros((row_pos.size, row_neg.size))
        for i, x in enumerate(row_pos):
            for j, z in enumerate(row_neg):
                if x > z:
                    psi[i, j] = 1.0
                elif x == z:
                    psi[i, j] = 0.5
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    return np.cov(v10, ddof=1) / v10.shape[1] + np.cov(v01, ddof=1) / v01.shape[1]


@pytest.fixture()
def tied_scores() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=60)
    score_a = rng.integers(1, 6, size=60) + y  # 5-point ratings, many ties
    score_b = rng.integers(1, 4, size=60) + 2 * y
    return y, score_a.astype(float), score_b.astype(float)


def test_roc_auc_matches_sklearn_with_ties(tied_scores):
    y, score_a, score_b = tied_scores
    assert roc_auc(y, score_a) == pytest.approx(roc_auc_score(y, score_a), abs=1e-12)
    assert roc_auc(y, score_b) == pytest.approx(roc_auc_score(y, score_b), abs=1e-12)


def test_roc_auc_ties_count_half():
    assert roc_auc([0, 1], [3.0, 3.0]) == 0.5
    assert roc_auc([0, 0, 1], [1.0, 2.0, 2.0]) == 0.75


def test_roc_auc_hand_example():
    assert roc_auc(HAND_Y, HAND_A) == pytest.approx(8 / 9)
    assert roc_auc(HAND_Y, HAND_B) == pytest.approx(5 / 9)


def test_delong_covariance_matches_placement_formula(tied_scores):
    y, score_a, score_b = tied_scores
    scores = np.vstack([score_a, score_b])
    auc, covariance = delong_covariance(y, scores)
    expected = _placement_covariance(y, scores)
    np.testing.assert_allclose(covariance, expected, rtol=1e-12, atol=1e-15)
    assert auc[0] == pytest.approx(roc_auc_score(y, score_a))


def test_delong_ci_hand_example_variance():
    result = delong_ci(HAND_Y, HAND_A)
    half_width = stats.norm.ppf(0.975) * math.sqrt(2 / 81)
    assert result.variance == pytest.approx(2 / 81)
    assert result.ci_low == pytest.approx(8 / 9 - half_width)
    assert result.ci_high == 1.0  # 8/9 + half_width > 1, clipped
    assert (result.n_pos, result.n_neg) == (3, 3)


def test_delong_ci_logit_interval_inside_unit_interval(tied_scores):
    y, score_a, _ = tied_scores
    result = delong_ci(y, score_a, alpha=0.1)
    assert 0.0 < result.logit_ci_low < result.auc < result.logit_ci_high < 1.0
    assert result.ci_low < result.auc < result.ci_high
    assert result.std_error == pytest.approx(math.sqrt(result.variance))


def test_delong_ci_logit_interval_nan_at_perfect_auc():
    result = delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert result.auc == 1.0
    assert math.isnan(result.logit_ci_low)
    assert result.variance == 0.0


def test_delong_test_hand_example():
    result = delong_test(HAND_Y, HAND_A, HAND_B)
    assert result.difference == pytest.approx(1 / 3)
    assert result.std_error == pytest.approx(math.sqrt(1 / 27))
    assert result.z == pytest.approx(math.sqrt(3))
    assert result.p_value == pytest.approx(2 * stats.norm.sf(math.sqrt(3)))
    assert result.correlation == pytest.approx((7 / 162) / math.sqrt(2 / 81 * 8 / 81))
    half_width = stats.norm.ppf(0.975) * math.sqrt(1 / 27)
    assert result.ci_low == pytest.approx(1 / 3 - half_width)
    assert result.ci_high == pytest.approx(1 / 3 + half_width)


def test_delong_test_identical_scores_gives_p_one(tied_scores):
    y, score_a, _ = tied_scores
    result = delong_test(y, score_a, score_a)
    assert result.difference == 0.0
    assert result.z == 0.0
    assert result.p_value == 1.0


def test_delong_ci_raises_single_class():
    with pytest.raises(MetricInputError, match="both positive and negative"):
        delong_ci([1, 1, 1], [0.1, 0.2, 0.3])


def test_roc_auc_raises_non_binary_labels():
    with pytest.raises(MetricInputError, match="got 2"):
        roc_auc([0, 1, 2], [0.1, 0.2, 0.3])


def test_roc_auc_raises_length_mismatch():
    with pytest.raises(MetricInputError, match="3 values"):
        roc_auc([0, 1, 1], [0.1, 0.2])


def test_roc_auc_raises_nan_score():
    with pytest.raises(MetricInputError, match="finite"):
        roc_auc([0, 1], [0.1, float("nan")])


def test_bootstrap_groups_resample_patients(tied_scores):
    y, score_a, _ = tied_scores
    # Two identical images per patient: resampling patients must equal resampling single cases.
    doubled = bootstrap_auc_ci(
        np.repeat(y, 2),
        np.repeat(score_a, 2),
        groups=np.repeat(np.arange(60), 2),
        n_boot=300,
        seed=3,
    )
    single = bootstrap_auc_ci(y, score_a, n_boot=300, seed=3)
    assert doubled.n_groups == 60
    assert doubled.ci_low == pytest.approx(single.ci_low)
    assert doubled.ci_high == pytest.approx(single.ci_high)


def test_bootstrap_replicate_matches_explicit_resample(tied_scores):
    y, score_a, _ = tied_scores
    groups = np.arange(60) // 3
    # With one resample both interval limits equal that resample's AUC.
    result = bootstrap_auc_ci(y, score_a, groups=groups, n_boot=1, seed=21)
    drawn = np.random.default_rng(21).integers(0, 20, size=20)
    index = np.concatenate([np.flatnonzero(groups == group) for group in drawn])
    expected = roc_auc_score(y[index], score_a[index])
    assert result.ci_low == pytest.approx(expected, abs=1e-12)
    assert result.ci_high == pytest.approx(expected, abs=1e-12)


def test_bootstrap_interval_contains_auc_and_is_reproducible(tied_scores):
    y, score_a, _ = tied_scores
    first = bootstrap_auc_ci(y, score_a, n_boot=400, seed=11)
    second = bootstrap_auc_ci(y, score_a, n_boot=400, seed=11)
    assert first == second
    assert first.ci_low < first.auc < first.ci_high
    assert first.n_valid == 400


def test_bootstrap_interval_width_close_to_delong(tied_scores):
    y, score_a, _ = tied_scores
    bootstrap = bootstrap_auc_ci(y, score_a, n_boot=1000, seed=5)
    delong = delong_ci(y, score_a)
    assert bootstrap.ci_high - bootstrap.ci_low == pytest.approx(
        delong.ci_high - delong.ci_low, rel=0.25
    )


def test_bootstrap_raises_zero_resamples():
    with pytest.raises(MetricInputError, match="n_boot"):
        bootstrap_auc_ci([0, 1], [0.1, 0.9], n_boot=0)


def test_bootstrap_raises_groups_shape():
    with pytest.raises(MetricInputError, match="groups must have shape"):
        bootstrap_auc_ci([0, 1, 1], [0.1, 0.9, 0.8], groups=[1, 2])


def test_roc_curve_points_area_equals_auc(tied_scores):
    y, score_a, _ = tied_scores
    points = roc_curve_points(y, score_a)
    assert (points.fpr[0], points.tpr[0]) == (0.0, 0.0)
    assert (points.fpr[-1], points.tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(points.fpr) >= 0)
    assert np.trapezoid(points.tpr, points.fpr) == pytest.approx(roc_auc(y, score_a))
    assert math.isinf(points.thresholds[0])


def test_threshold_metrics_counts():
    y = [1, 1, 1, 0, 0, 0, 0]
    score = [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05]
    result = threshold_metrics(y, score, 0.5)
    assert (result.tp, result.fn, result.fp, result.tn) == (2, 1, 1, 3)
    assert result.sensitivity == pytest.approx(2 / 3)
    assert result.specificity == pytest.approx(3 / 4)
    assert result.accuracy == pytest.approx(5 / 7)
    assert result.ppv == pytest.approx(2 / 3)
    assert result.npv == pytest.approx(3 / 4)
    assert result.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_threshold_metrics_undefined_rates_are_nan():
    result = threshold_metrics([0, 0, 0], [0.1, 0.2, 0.3], 0.5)
    assert math.isnan(result.ppv)
    assert math.isnan(result.sensitivity)
    assert result.specificity == 1.0


def test_choose_threshold_youden():
    y = [1, 1, 1, 0, 0, 0, 0]
    score = [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05]
    # J by threshold: 0.9 -> 1/3, 0.7 -> 1/12, 0.6 -> 5/12, 0.3 -> 1/6, 0.2 -> 1/2 (maximum).
    assert choose_threshold(y, score) == 0.2


def test_choose_threshold_sensitivity_target():
    y = [1, 1, 1, 0, 0, 0, 0]
    score = [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05]
    threshold = choose_threshold(y, score, rule="sensitivity", target=0.9)
    assert threshold == 0.2
    assert threshold_metrics(y, score, threshold).sensitivity == 1.0


def test_choose_threshold_specificity_target():
    y = [1, 1, 1, 0, 0, 0, 0]
    score = [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05]
    threshold = choose_threshold(y, score, rule="specificity", target=0.75)
    assert threshold == 0.6


def test_choose_threshold_raises_unknown_rule():
    with pytest.raises(MetricInputError, match="rule must be"):
        choose_threshold([0, 1], [0.1, 0.9], rule="f1")
