"""Feature fusion, late fusion of the branch probabilities, and the single-MLP fused head.

Three ways to combine a mammogram and an ultrasound of one lesion, compared in stage 2:

- the stacking ensemble on the fused features (:mod:`mpmmu.ensemble.stacking`);
- :class:`LateFusion`, the sum of the two branches' log-odds, the honest baseline;
- :func:`make_fused_mlp_head`, one MLP on the fused features, for the ablation table.
"""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

logger = logging.getLogger(__name__)

# Probabilities are clipped to [_EPS, 1 - _EPS] before the logit, so a branch that outputs exactly
# 0 or 1 gives log-odds of about +-36.7 instead of infinity.
_EPS = 1e-16


def logit(p: np.ndarray) -> np.ndarray:
    """Return the log-odds log(p / (1 - p)), with p clipped away from 0 and 1.

    Parameters
    ----------
    p : array-like of float
        Probabilities in [0, 1].

    Returns
    -------
    numpy.ndarray of float64, same shape as ``p``
    """
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def fuse_features(features_mg: np.ndarray, features_us: np.ndarray) -> np.ndarray:
    """Concatenate the mammography and ultrasound features of each pair.

    The mammography block comes first. Standardisation and PCA happen inside the learners, so
    that they are fitted on training folds only.

    Parameters
    ----------
    features_mg : array-like of shape (n_samples, n_features_mg)
        Pooled attention features of the mammography branch.
    features_us : array-like of shape (n_samples, n_features_us)
        Pooled attention features of the ultrasound branch.

    Returns
    -------
    numpy.ndarray of float64, shape (n_samples, n_features_mg + n_features_us)

    Raises
    ------
    ValueError
        If either block is not 2-D or not finite, or the row counts differ.
    """
    features_mg = np.asarray(features_mg, dtype=np.float64)
    features_us = np.asarray(features_us, dtype=np.float64)
    for name, block in (("features_mg", features_mg), ("features_us", features_us)):
        if block.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {block.shape}")
        if not np.all(np.isfinite(block)):
            raise ValueError(f"{name} contains NaN or infinite values; re-extract the features")
    if features_mg.shape[0] != features_us.shape[0]:
        raise ValueError(
            f"features_mg has {features_mg.shape[0]} rows but features_us has "
            f"{features_us.shape[0]}; pass one row per pair in the same order"
        )
    return np.hstack([features_mg, features_us])


class LateFusion(ClassifierMixin, BaseEstimator):
    """Combine the two branches by summing their log-odds.

    ``p = sigmoid(w_mg * logit(p_mg) + w_us * logit(p_us) + b)``, with X holding the columns
    (p_mg, p_us). The default, ``weights="sum"``, fixes w_mg = w_us = 1 and b = 0 and learns
    nothing, which makes it the honest baseline for any learned fusion. ``weights="logistic"``
    fits w and b by logistic regression on the log-odds. Fit it on data the branches were not
    trained on (the validation pairs), because on training data it inherits their overfitting.

    Parameters
    ----------
    weights : {"sum", "logistic"}, default="sum"
        Fixed plain sum, or weights and intercept fitted by logistic regression.
    C : float, default=1.0
        Inverse L2 strength of the logistic regression; ignored for "sum".

    Attributes
    ----------
    classes_ : numpy.ndarray of shape (2,)
    coef_ : numpy.ndarray of shape (2,)
        (w_mg, w_us).
    intercept_ : float
        b.
    n_features_in_ : int
        Always 2.

    Notes
    -----
    If both branches were calibrated posteriors of conditionally independent modalities, Bayes'
    rule would subtract the prior log-odds once; the plain sum counts it twice. That shifts every
    score by the same constant, so AUC is unchanged and the operating threshold, chosen on
    validation data, absorbs it, but the plain sum's probabilities are not calibrated.
    """

    _parameter_constraints: dict = {
        "weights": [StrOptions({"sum", "logistic"})],
        "C": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, weights: str = "sum", C: float = 1.0) -> None:
        self.weights = weights
        self.C = C

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: np.ndarray, y: np.ndarray) -> LateFusion:
        """Record the classes, and fit weights and intercept when ``weights="logistic"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            Columns p_mg and p_us, probabilities in [0, 1].
        y : array-like of shape (n_samples,)
            Binary labels.

        Returns
        -------
        LateFusion

        Raises
        ------
        ValueError
            If X does not have two columns of probabilities or y is not binary.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        self._check_probabilities(X)
        check_classification_targets(y)
        if type_of_target(y) != "binary" or len(np.unique(y)) != 2:
            raise ValueError(
                f"Only binary classification is supported by LateFusion, got y with "
                f"{len(np.unique(y))} classes"
            )
        self.classes_, y_encoded = np.unique(y, return_inverse=True)

        if self.weights == "sum":
            self.coef_ = np.ones(2)
            self.intercept_ = 0.0
        else:
            model = LogisticRegression(C=self.C, max_iter=1000).fit(logit(X), y_encoded)
            self.coef_ = model.coef_[0].astype(np.float64)
            self.intercept_ = float(model.intercept_[0])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Return the fused log-odds.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            Columns p_mg and p_us.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        self._check_probabilities(X)
        return logit(X) @ self.coef_ + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the fused probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            Columns p_mg and p_us.

        Returns
        -------
        numpy.ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        p_positive = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p_positive, p_positive])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the class on the positive side of zero fused log-odds.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        return self.classes_[(scores >= 0).astype(np.intp)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_probabilities(self, X: np.ndarray) -> None:
        if X.shape[1] != 2:
            raise ValueError(
                f"LateFusion expects X with 2 columns (p_mg, p_us), got {X.shape[1]} columns"
            )
        if np.any(X < 0) or np.any(X > 1):
            raise ValueError(
                f"LateFusion expects probabilities in [0, 1], got values from {X.min():.4g} to "
                f"{X.max():.4g}; pass the branches' sigmoid outputs, not their logits"
            )


def make_fused_mlp_head(
    n_components: int | float | None = None,
    hidden_layer_sizes: tuple[int, ...] = (64,),
    alpha: float = 1.0,
    random_state: int | None = None,
) -> Pipeline:
    """Build the single-MLP fusion head of the ablation table: scaler, optional PCA, one MLP.

    The MLP uses lbfgs and an L2 penalty, not early stopping, because early stopping would hold
    out a random, ungrouped tenth of the pairs and stop on copies of training mammograms.

    Parameters
    ----------
    n_components : int, float or None, default=None
        PCA components (int), or share of variance kept (float in (0, 1)), or None for no PCA.
    hidden_layer_sizes : tuple of int, default=(64,)
    alpha : float, default=1.0
        L2 strength; strong because fused features outnumber the training pairs.
    random_state : int or None, default=None

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; call ``fit(fuse_features(...), y)``.

    Raises
    ------
    ValueError
        If ``n_components`` or ``alpha`` is out of range.
    """
    if n_components is not None and not (
        (isinstance(n_components, Integral) and n_components >= 1)
        or (isinstance(n_components, RealNotInt) and 0 < n_components < 1)
    ):
        raise ValueError(
            f"n_components must be None, an int >= 1 or a float in (0, 1), got {n_components!r}"
        )
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")

    steps: list[tuple[str, object]] = [("scale", StandardScaler())]
    if n_components is not None:
        steps.append(("pca", PCA(n_components=n_components, random_state=random_state)))
    steps.append(
        (
            "mlp",
            MLPClassifier(
                hidden_layer_sizes=hidden_layer_sizes,
                alpha=alpha,
                solver="lbfgs",
                max_iter=2000,
                random_state=random_state,
            ),
        )
    )
    return Pipeline(steps)
