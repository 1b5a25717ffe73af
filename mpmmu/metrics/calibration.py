"""Calibration of predicted probabilities: Brier score and reliability curve."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mpmmu.errors import MetricInputError
from mpmmu.metrics.roc import _as_labels

logger = logging.getLogger(__name__)


def _as_probabilities(p: object, n: int) -> np.ndarray:
    values = np.asarray(p, dtype=np.float64)
    if values.ndim != 1 or values.size != n:
        raise MetricInputError(
            f"probabilities must be one-dimensional with {n} values like the labels, got shape {values.shape}"
        )
    outside = ~((values >= 0.0) & (values <= 1.0))
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        raise MetricInputError(
            f"probabilities must lie in [0, 1], got {values[index]} at index {index}; "
            f"pass probabilities, not logits or scores"
        )
    return values


def brier_score(y: object, p: object) -> float:
    """Compute the Brier score, the mean squared difference between probability and outcome.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
        1 malignant (positive), 0 benign; one class may be absent.
    p : array-like of float, shape (n_cases,)
        Predicted probability of the positive class, in [0, 1].

    Returns
    -------
    float
        0 is perfect; always predicting the prevalence scores prevalence * (1 - prevalence).
    """
    labels = _as_labels(y, require_both=False)
    if labels.size == 0:
        raise MetricInputError("the Brier score needs at least one case, got none")
    probabilities = _as_probabilities(p, labels.size)
    return float(np.mean((probabilities - labels) ** 2))


@dataclass(frozen=True)
class CalibrationCurve:
    """A reliability curve: per bin, the mean predicted probability and the observed positive rate.

    Attributes
    ----------
    bin_edges : numpy.ndarray, shape (n_bins + 1,)
        Bin ``k`` contains ``bin_edges[k] <= p < bin_edges[k + 1]``. The last bin also contains
        its right edge.
    mean_predicted, fraction_positive : numpy.ndarray, shape (n_bins,)
        NaN for an empty bin.
    counts : numpy.ndarray of int, shape (n_bins,)
        Cases in each bin.
    """

    bin_edges: np.ndarray
    mean_predicted: np.ndarray
    fraction_positive: np.ndarray
    counts: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """Count-weighted mean of ``|fraction_positive - mean_predicted|`` over non-empty bins."""
        filled = self.counts > 0
        gaps = np.abs(self.fraction_positive[filled] - self.mean_predicted[filled])
        return float(np.sum(gaps * self.counts[filled]) / np.sum(self.counts))


def calibration_curve(
    y: object,
    p: object,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
) -> CalibrationCurve:
    """Bin predicted probabilities and compare each bin's mean with its observed positive rate.

    Parameters
    ----------
    y : array-like of int, shape (n_cases,)
    p : array-like of float, shape (n_cases,)
        Predicted probability of the positive class, in [0, 1].
    n_bins : int
        Number of bins requested.
    strategy : {"quantile", "uniform"}
        "quantile" puts about the same number of cases in each bin, with edges at the quantiles
        of ``p``. Tied quantiles merge, so fewer bins may come back. "uniform" splits [0, 1]
        into equal widths.

    Returns
    -------
    CalibrationCurve
    """
    if n_bins < 1:
        raise MetricInputError(f"n_bins must be >= 1, got {n_bins}")
    if strategy not in ("quantile", "uniform"):
        raise MetricInputError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    labels = _as_labels(y, require_both=False)
    if labels.size == 0:
        raise MetricInputError("a calibration curve needs at least one case, got none")
    probabilities = _as_probabilities(p, labels.size)

    if strategy == "quantile":
        edges = np.unique(np.quantile(probabilities, np.linspace(0.0, 1.0, n_bins + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
        if edges.size - 1 < n_bins:
            logger.info("merged tied quantiles: %d bins instead of %d", edges.size - 1, n_bins)
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    n_filled_bins = edges.size - 1
    bin_index = np.clip(
        np.searchsorted(edges[1:-1], probabilities, side="right"), 0, n_filled_bins - 1
    )

    counts = np.bincount(bin_index, minlength=n_filled_bins)
    sum_predicted = np.bincount(bin_index, weights=probabilities, minlength=n_filled_bins)
    sum_positive = np.bincount(bin_index, weights=labels, minlength=n_filled_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.where(counts > 0, sum_predicted / counts, np.nan)
        fraction_positive = np.where(counts > 0, sum_positive / counts, np.nan)
    return CalibrationCurve(
        bin_edges=edges,
        mean_predicted=mean_predicted,
        fraction_positive=fraction_positive,
        counts=counts.astype(np.int64),
    )
