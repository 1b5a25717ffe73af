"""ROC analysis of one or two scores on the same cases: AUC, DeLong intervals and tests, bootstrap.

The AUC is the trapezoidal area under the empirical ROC curve, which equals the Mann-Whitney
statistic: the probability that a random positive case scores higher than a random negative case,
ties counting one half. DeLong's variance comes from the structural components (placement values)
of each case, computed from midranks as in Sun and Xu's fast algorithm.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics 44:837-845.

Sun X, Xu W (2014). Fast implementation of DeLong's algorithm for comparing the areas under
correlated receiver operating characteristic curves. IEEE Signal Processing Letters 21:1389-1393.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from mpmmu.errors import MetricInputError

logger = logging.getLogger(__name__)


def _as_labels(y: object, *, require_both: bool = True) -> np.ndarray:
    """Return ``y`` as a 1-D int8 array of 0/1, raising on any other value."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise MetricInputError(f"labels must be one-dimensional, got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.int8)
    if labels.size and not np.isin(labels, (0, 1)).all():
        bad = labels[~np.isin(labels, (0, 1))][0].item()
        raise MetricInputError(f"labels must be 0 (negative) or 1 (positive), got {bad!r}")
    labels = labels.astype(np.int8)
    if require_both:
        n_pos = int(labels.sum())
        if n_pos == 0 or n_pos == labels.size:
            raise MetricInputError(
                f"an ROC analysis needs both positive and negative cases, got {n_pos} positive "
                f"of {labels.size}; add cases of the missing class"
            )
    return labels


def _as_scores(score: object, n: int, name: str = "score") -> np.ndarray:
    """Return ``score`` as a finite 1-D float64 array of length ``n``."""
    values = np.asarray(score, dtype=np.float64)
    if values.ndim != 1 or values.size != n:
        raise MetricInputError(
            f"{name} must be one-dimensional with {n} values like the labels, "
            f"got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        index = int(np.flatnonzero(~np.isfinite(values))[0])
        raise MetricInputError(f"{name} must be finite, got {values[index]} at index {index}")
    return values


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise MetricInputError(f"alpha must lie in (0, 1), got {alpha}")


def structural_components(y: object, scores: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the AUCs and DeLong structural components of several scores on the same cases.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
        1 for a positive (abnormal) case, 0 for a negative one.
    scores : array-like of float, shape (n_scores, n_cases) or (n_cases,)
        Higher means more likely positive.

    Returns
    -------
    auc : numpy.ndarray, shape (n_scores,)
    v10 : numpy.ndarray, shape (n_scores, n_pos)
        For each positive case, the fraction of negatives it outscores (ties one half).
    v01 : numpy.ndarray, shape (n_scores, n_neg)
        For each negative case, the fraction of positives that outscore it (ties one half).

    Notes
    -----
    Sun and Xu's midrank identities give both components in O(n log n): with ``T_z`` the midrank
    of a positive among all cases and ``T_x`` its midrank among positives,
    ``v10 = (T_z - T_x) / n_neg``; for a negative, ``v01 = 1 - (T_z - T_y) / n_pos``.
    ``scipy.stats.rankdata(method="average")`` computes the midranks.
    """
    labels = _as_labels(y)
    matrix = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if matrix.ndim != 2 or matrix.shape[1] != labels.size:
        raise MetricInputError(
            f"scores must have shape (n_scores, {labels.size}), got {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise MetricInputError("scores must be finite, got NaN or infinity")

    positive = labels == 1
    n_pos = int(positive.sum())
    n_neg = labels.size - n_pos
    rank_all = stats.rankdata(matrix, axis=1)
    rank_pos = stats.rankdata(matrix[:, positive], axis=1)
    rank_neg = stats.rankdata(matrix[:, ~positive], axis=1)

    v10 = (rank_all[:, positive] - rank_pos) / n_neg
    v01 = 1.0 - (rank_all[:, ~positive] - rank_neg) / n_pos
    auc = v10.mean(axis=1)
    return auc, v10, v01


def delong_covariance(y: object, scores: object) -> tuple[np.ndarray, np.ndarray]:
    """Estimate the AUCs of several scores on the same cases and DeLong's covariance matrix.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    scores : array-like of float, shape (n_scores, n_cases)

    Returns
    -------
    auc : numpy.ndarray, shape (n_scores,)
    covariance : numpy.ndarray, shape (n_scores, n_scores)
        ``S10 / n_pos + S01 / n_neg``, the sample covariances (denominator n - 1) of the
        structural components of positives and negatives.

    Raises
    ------
    MetricInputError
        When a class has fewer than two cases, so a sample covariance is undefined.
    """
    auc, v10, v01 = structural_components(y, scores)
    n_pos, n_neg = v10.shape[1], v01.shape[1]
    if n_pos < 2 or n_neg < 2:
        raise MetricInputError(
            f"DeLong's variance needs at least 2 positive and 2 negative cases, got {n_pos} "
            f"positive and {n_neg} negative"
        )
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return auc, s10 / n_pos + s01 / n_neg


def roc_auc(y: object, score: object) -> float:
    """Compute the trapezoidal (Mann-Whitney) area under the empirical ROC curve.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
        1 positive, 0 negative; both classes must be present.
    score : array-like of float, shape (n_cases,)
        Higher means more likely positive. Ties between a positive and a negative count 1/2.

    Returns
    -------
    float
        The AUC in [0, 1].
    """
    labels = _as_labels(y)
    values = _as_scores(score, labels.size)
    auc, _, _ = structural_components(labels, values)
    return float(auc[0])


@dataclass(frozen=True)
class DeLongResult:
    """The AUC of one score with DeLong's variance and a confidence interval.

    ``ci_low``/``ci_high`` are the Wald interval ``auc +- z * sqrt(variance)`` clipped to [0, 1].
    ``logit_ci_low``/``logit_ci_high`` are the Wald interval on the logit scale mapped back, so
    they always lie inside (0, 1). They are NaN when the AUC is exactly 0 or 1.
    """

    auc: float
    ci_low: float
    ci_high: float
    variance: float
    n_pos: int
    n_neg: int
    alpha: float
    logit_ci_low: float
    logit_ci_high: float

    @property
    def std_error(self) -> float:
        """Standard error of the AUC, the square root of the variance."""
        return float(np.sqrt(self.variance))


def delong_ci(y: object, score: object, alpha: float = 0.05) -> DeLongResult:
    """Estimate the AUC with DeLong's variance and a (1 - alpha) confidence interval.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    score : array-like of float, shape (n_cases,)
    alpha : float
        Two-sided error rate; 0.05 gives a 95% interval.

    Returns
    -------
    DeLongResult
    """
    _check_alpha(alpha)
    labels = _as_labels(y)
    values = _as_scores(score, labels.size)
    auc_array, covariance = delong_covariance(labels, values[np.newaxis, :])
    auc = float(auc_array[0])
    variance = float(covariance[0, 0])
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    half_width = z * np.sqrt(variance)

    if 0.0 < auc < 1.0:
        logit_auc = np.log(auc / (1.0 - auc))
        logit_half_width = half_width / (auc * (1.0 - auc))
        logit_low = float(1.0 / (1.0 + np.exp(-(logit_auc - logit_half_width))))
        logit_high = float(1.0 / (1.0 + np.exp(-(logit_auc + logit_half_width))))
    else:
        logit_low = logit_high = float("nan")

    n_pos = int(labels.sum())
    return DeLongResult(
        auc=auc,
        ci_low=float(max(0.0, auc - half_width)),
        ci_high=float(min(1.0, auc + half_width)),
        variance=variance,
        n_pos=n_pos,
        n_neg=labels.size - n_pos,
        alpha=alpha,
        logit_ci_low=logit_low,
        logit_ci_high=logit_high,
    )


@dataclass(frozen=True)
class DeLongTest:
    """DeLong's test of two correlated AUCs on the same cases; ``difference = auc_a - auc_b``."""

    auc_a: float
    auc_b: float
    difference: float
    std_error: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    correlation: float
    alpha: float


def delong_test(y: object, score_a: object, score_b: object, alpha: float = 0.05) -> DeLongTest:
    """Test whether two scores read on the same cases have equal AUCs (DeLong et al. 1988).

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    score_a, score_b : array-like of float, shape (n_cases,)
        Two scores for the same cases, for example two models or two modalities.
    alpha : float
        Two-sided error rate of the confidence interval of the difference.

    Returns
    -------
    DeLongTest
        The difference, its standard error from ``var_a + var_b - 2 cov_ab``, the z statistic,
        the two-sided normal p-value and the Wald interval of the difference. When both scores
        rank the cases identically the standard error is 0 and z is 0 with p = 1.
    """
    _check_alpha(alpha)
    labels = _as_labels(y)
    values_a = _as_scores(score_a, labels.size, "score_a")
    values_b = _as_scores(score_b, labels.size, "score_b")
    auc, covariance = delong_covariance(labels, np.vstack([values_a, values_b]))

    difference = float(auc[0] - auc[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2.0 * covariance[0, 1])
    std_error = float(np.sqrt(max(variance, 0.0)))
    if std_error > 0.0:
        z = difference / std_error
        p_value = float(2.0 * stats.norm.sf(abs(z)))
    else:
        z = 0.0 if difference == 0.0 else float(np.copysign(np.inf, difference))
        p_value = 1.0 if difference == 0.0 else 0.0
    denominator = np.sqrt(covariance[0, 0] * covariance[1, 1])
    correlation = float(covariance[0, 1] / denominator) if denominator > 0 else float("nan")
    half_width = float(stats.norm.ppf(1.0 - alpha / 2.0)) * std_error
    return DeLongTest(
        auc_a=float(auc[0]),
        auc_b=float(auc[1]),
        difference=difference,
        std_error=std_error,
        z=float(z),
        p_value=p_value,
        ci_low=difference - half_width,
        ci_high=difference + half_width,
        correlation=correlation,
        alpha=alpha,
    )


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap interval of the AUC.

    ``n_valid`` counts the resamples that contained both classes; the others are skipped.
    """

    auc: float
    ci_low: float
    ci_high: float
    n_boot: int
    n_valid: int
    n_groups: int
    alpha: float


def bootstrap_auc_ci(
    y: object,
    score: object,
    groups: object | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapResult:
    """Estimate a percentile bootstrap interval of the AUC, resampling patients, not images.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    score : array-like of float, shape (n_cases,)
    groups : array-like, shape (n_cases,), optional
        Patient identifier of each row. Whole patients are drawn with replacement, so images of
        one patient stay together. ``None`` treats every row as its own patient.
    n_boot : int
        Number of resamples.
    seed : int
        Seed of the ``numpy.random.default_rng`` generator.
    alpha : float
        Two-sided error rate; the interval is the alpha/2 and 1 - alpha/2 quantiles.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    MetricInputError
        On invalid labels or scores, ``n_boot < 1``, or when fewer than half of the resamples
        contain both classes (too few patients of one class).
    """
    _check_alpha(alpha)
    if n_boot < 1:
        raise MetricInputError(f"n_boot must be >= 1, got {n_boot}")
    labels = _as_labels(y)
    values = _as_scores(score, labels.size)
    auc = roc_auc(labels, values)

    if groups is None:
        group_codes = np.arange(labels.size)
    else:
        group_array = np.asarray(groups)
        if group_array.shape != labels.shape:
            raise MetricInputError(
                f"groups must have shape {labels.shape} like the labels, got {group_array.shape}"
            )
        _, group_codes = np.unique(group_array, return_inverse=True)
    n_groups = int(group_codes.max()) + 1

    # A resample is a multiset of cases, so its AUC is the Mann-Whitney statistic with each case
    # weighted by how often its patient was drawn; score levels are ranked once for all resamples.
    _, level_index = np.unique(values, return_inverse=True)
    n_levels = int(level_index.max()) + 1
    positive = labels == 1
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        drawn = rng.integers(0, n_groups, size=n_groups)
        weights = np.bincount(drawn, minlength=n_groups)[group_codes].astype(np.float64)
        positive_weight = np.bincount(level_index, weights=weights * positive, minlength=n_levels)
        negative_weight = np.bincount(level_index, weights=weights * ~positive, minlength=n_levels)
        total_positive, total_negative = positive_weight.sum(), negative_weight.sum()
        if total_positive == 0 or total_negative == 0:
            continue
        negatives_below = np.cumsum(negative_weight) - negative_weight
        wins = np.sum(positive_weight * (negatives_below + 0.5 * negative_weight))
        replicates.append(wins / (total_positive * total_negative))

    n_valid = len(replicates)
    if n_valid < n_boot / 2:
        raise MetricInputError(
            f"only {n_valid} of {n_boot} bootstrap resamples contained both classes; "
            f"the data has too few patients of one class for a bootstrap interval"
        )
    if n_valid < n_boot:
        logger.info(
            "skipped %d of %d bootstrap resamples lacking a class", n_boot - n_valid, n_boot
        )
    low, high = np.quantile(np.asarray(replicates), [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapResult(
        auc=auc,
        ci_low=float(low),
        ci_high=float(high),
        n_boot=n_boot,
        n_valid=n_valid,
        n_groups=n_groups,
        alpha=alpha,
    )


@dataclass(frozen=True)
class RocPoints:
    """Vertices of the empirical ROC curve from (0, 0) to (1, 1), for plotting.

    ``thresholds[k]`` is the score at or above which a case is called positive to reach
    ``(fpr[k], tpr[k])``; the first threshold is +inf.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def roc_curve_points(y: object, score: object) -> RocPoints:
    """Compute the empirical ROC curve, one vertex per distinct score.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    score : array-like of float, shape (n_cases,)

    Returns
    -------
    RocPoints
        Arrays of length ``n_distinct_scores + 1``; the trapezoidal area under them equals
        :func:`roc_auc`.
    """
    labels = _as_labels(y)
    values = _as_scores(score, labels.size)
    thresholds = np.unique(values)[::-1]
    # Cases with score >= threshold are called positive; searchsorted counts them per threshold.
    positive_sorted = np.sort(values[labels == 1])
    negative_sorted = np.sort(values[labels == 0])
    n_pos, n_neg = positive_sorted.size, negative_sorted.size
    tp = n_pos - np.searchsorted(positive_sorted, thresholds, side="left")
    fp = n_neg - np.searchsorted(negative_sorted, thresholds, side="left")
    return RocPoints(
        fpr=np.concatenate([[0.0], fp / n_neg]),
        tpr=np.concatenate([[0.0], tp / n_pos]),
        thresholds=np.concatenate([[np.inf], thresholds]),
    )


ThresholdRule = Literal["youden", "sensitivity", "specificity"]


def choose_threshold(
    y: object, score: object, rule: ThresholdRule = "youden", target: float = 0.9
) -> float:
    """Choose an operating threshold on the score (a case is positive when score >= threshold).

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    score : array-like of float, shape (n_cases,)
    rule : {"youden", "sensitivity", "specificity"}
        "youden" maximises sensitivity + specificity - 1, taking the highest threshold on ties.
        "sensitivity" takes the highest threshold whose sensitivity reaches ``target``, which
        maximises specificity under that constraint. "specificity" takes the lowest threshold
        whose specificity reaches ``target``.
    target : float
        Required sensitivity or specificity in (0, 1] for the constrained rules.

    Returns
    -------
    float
        One of the observed scores.
    """
    if rule not in ("youden", "sensitivity", "specificity"):
        raise MetricInputError(
            f"rule must be 'youden', 'sensitivity' or 'specificity', got {rule!r}"
        )
    if rule != "youden" and not 0.0 < target <= 1.0:
        raise MetricInputError(f"target must lie in (0, 1], got {target}")
    points = roc_curve_points(y, score)
    fpr, tpr, thresholds = points.fpr[1:], points.tpr[1:], points.thresholds[1:]

    if rule == "youden":
        return float(thresholds[int(np.argmax(tpr - fpr))])
    if rule == "sensitivity":
        # tpr rises as the threshold falls, so the first index reaching the target is the highest.
        return float(thresholds[int(np.argmax(tpr >= target - 1e-12))])
    specificity = 1.0 - fpr
    meeting = np.flatnonzero(specificity >= target - 1e-12)
    if meeting.size == 0:
        # Even the highest threshold calls some negative positive when it ties with a positive.
        raise MetricInputError(
            f"no threshold reaches specificity {target}; the best is {specificity[0]:.4f}"
        )
    return float(thresholds[meeting[-1]])


@dataclass(frozen=True)
class ThresholdMetrics:
    """Confusion counts and rates at one threshold; a rate with a zero denominator is NaN."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: float
    specificity: float
    accuracy: float
    f1: float
    ppv: float
    npv: float


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def threshold_metrics(y: object, score: object, threshold: float) -> ThresholdMetrics:
    """Compute sensitivity, specificity, accuracy, F1, PPV and NPV at one threshold.

    A case is called positive when its score is >= threshold.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
        One class may be absent (for example a test set of benign lesions only); the rates that
        need it are then NaN.
    score : array-like of float, shape (n_cases,)
    threshold : float

    Returns
    -------
    ThresholdMetrics
    """
    labels = _as_labels(y, require_both=False)
    values = _as_scores(score, labels.size)
    if labels.size == 0:
        raise MetricInputError("threshold metrics need at least one case, got none")
    called = values >= threshold
    tp = int(np.sum(called & (labels == 1)))
    fp = int(np.sum(called & (labels == 0)))
    fn = int(np.sum(~called & (labels == 1)))
    tn = int(np.sum(~called & (labels == 0)))
    return ThresholdMetrics(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        accuracy=_ratio(tp + tn, labels.size),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        ppv=_ratio(tp, tp + fp),
        npv=_ratio(tn, tn + fn),
    )
