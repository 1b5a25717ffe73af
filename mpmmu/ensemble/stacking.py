"""Stacking ensemble of MPM-MU stage 2: four base learners and an MLP meta-learner.

Yan et al. (J Appl Clin Med Phys 2026, doi 10.1002/acm2.70464) fuse the two branches' pooled
attention features and stack logistic regression, an SVM, a random forest and Extra-Trees under an
MLP meta-learner. This module keeps that design and adds what small, pseudo-paired data need:
every cross-validation is grouped by patient (by both patients for pairs, see
:mod:`mpmmu.ensemble.folds`) and every learner is regularised for a few hundred samples.
"""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils import check_random_state

# NOTE: _param_validation is private in scikit-learn 1.9, but its own estimators and
# scikit-learn-contrib projects use it for constraint tables. Pin the minor version if it moves.
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from mpmmu.ensemble.folds import check_groups, grouped_folds

logger = logging.getLogger(__name__)

BASE_LEARNERS: tuple[str, ...] = ("logistic_regression", "svm", "random_forest", "extra_trees")
"""Names of the base learners, in the column order of the meta-learner's input."""

VOTE_NAMES: tuple[str, ...] = BASE_LEARNERS + ("meta_mlp",)
"""Keys of :meth:`StackingEnsemble.votes`."""


def _positive_probability(model: Pipeline, X: np.ndarray) -> np.ndarray:
    """Return ``model.predict_proba(X)[:, 1]``, averaging a final forest's trees directly.

    A forest's own ``predict_proba`` dispatches every tree through joblib, which costs about
    0.1 ms per tree. For the one case the app scores, that is most of the forest's time. The
    trees' probabilities are summed in float64 and divided by their number, as scikit-learn does.
    Batches of more than 16 cases take scikit-learn's path, where that overhead is spread over
    the rows and ``n_jobs`` can run trees in parallel.
    """
    forest = model[-1]
    if not isinstance(forest, (RandomForestClassifier, ExtraTreesClassifier)) or len(X) > 16:
        return model.predict_proba(X)[:, 1]
    features = np.asarray(model[:-1].transform(X), dtype=np.float32)
    total = np.zeros(len(features), dtype=np.float64)
    for tree in forest.estimators_:
        total += tree.predict_proba(features, check_input=False)[:, 1]
    return total / len(forest.estimators_)


class StackingEnsemble(ClassifierMixin, BaseEstimator):
    """Stack four base learners under an MLP, with patient-grouped out-of-fold training.

    Each base learner is a pipeline of :class:`~sklearn.preprocessing.StandardScaler`, an optional
    :class:`~sklearn.decomposition.PCA` and the model. The meta-learner, a small
    :class:`~sklearn.neural_network.MLPClassifier` behind a scaler, is trained on the base
    learners' out-of-fold probabilities of the positive class.

    Parameters
    ----------
    n_components : int, float or None, default=None
        PCA inside every base learner: an int keeps that many components, a float in (0, 1) keeps
        that share of the variance, None skips PCA.
    cv : int, default=5
        Folds of the out-of-fold stage that produces the meta-learner's training input.
    calibration_cv : int, default=3
        Folds of the Platt scaling that turns SVM decision values into probabilities. These folds
        are grouped like the outer ones, inside each outer training part.
    C : float, default=0.1
        Inverse L2 strength of the logistic regression; small because features outnumber samples.
    svm_C : float, default=1.0
        Penalty of the RBF SVM (``gamma="scale"``).
    n_estimators : int, default=300
        Trees in the random forest and in Extra-Trees.
    min_samples_leaf : int, default=3
        Smallest leaf of both tree ensembles; larger values keep trees from isolating one image.
    max_features : {"sqrt", "log2"}, int or float, default="sqrt"
        Features tried per split in both tree ensembles.
    meta_hidden_layer_sizes : tuple of int, default=(8,)
        Hidden layers of the meta-learner.
    meta_alpha : float, default=1.0
        L2 strength of the meta-learner, strong because it is fitted on a few hundred samples.
    passthrough : sequence of int or None, default=None
        Columns of X that the meta-learner receives beside the base learners' probabilities, for
        example the columns holding the two branches' logits. None passes none.
    random_state : int, RandomState or None, default=None
        Seeds the folds and every learner.
    n_jobs : int or None, default=None
        Parallel jobs of the tree ensembles.

    Attributes
    ----------
    classes_ : numpy.ndarray of shape (2,)
        The two labels; probabilities and votes are for ``classes_[1]``.
    n_features_in_ : int
    base_learners_ : dict of str to Pipeline
        The base learners refitted on all training data, keyed as :data:`BASE_LEARNERS`.
    meta_learner_ : Pipeline
        Scaler and MLP fitted on the out-of-fold probabilities.
    oof_predictions_ : numpy.ndarray of shape (n_samples, 4)
        Out-of-fold probability of ``classes_[1]`` per base learner: the meta-learner's training
        input, and an honest estimate of each base learner when the folds were grouped. NaN for
        pairs that two-way blocked folds could not test (see :func:`grouped_folds`).
    oof_coverage_ : float
        Share of samples with out-of-fold predictions, the meta-learner's training rows.

    Notes
    -----
    ``SVC(probability=True)`` is deprecated since scikit-learn 1.9, so the SVM is wrapped in
    :class:`~sklearn.calibration.CalibratedClassifierCV` with sigmoid (Platt) calibration. Its
    ``ensemble=True`` mode fits one SVM and one sigmoid per calibration fold and averages their
    probabilities; unlike ``ensemble=False`` it accepts folds that do not test every sample, which
    two-way blocked folds need.

    With pseudo-pairs the same mammogram appears in many pairs. Ungrouped folds then put copies of
    one mammogram in training and test, the trees memorise it, and the out-of-fold probabilities
    that train the meta-learner are far too confident. Pass both patients as ``groups``.
    """

    _parameter_constraints: dict = {
        "n_components": [
            None,
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
        ],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "calibration_cv": [Interval(Integral, 2, None, closed="left")],
        "C": [Interval(Real, 0, None, closed="neither")],
        "svm_C": [Interval(Real, 0, None, closed="neither")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "max_features": [
            StrOptions({"sqrt", "log2"}),
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "meta_hidden_layer_sizes": ["array-like"],
        "meta_alpha": [Interval(Real, 0, None, closed="left")],
        "passthrough": [None, "array-like"],
        "random_state": ["random_state"],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        n_components: int | float | None = None,
        cv: int = 5,
        calibration_cv: int = 3,
        C: float = 0.1,
        svm_C: float = 1.0,
        n_estimators: int = 300,
        min_samples_leaf: int = 3,
        max_features: str | int | float = "sqrt",
        meta_hidden_layer_sizes: tuple[int, ...] = (8,),
        meta_alpha: float = 1.0,
        passthrough: tuple[int, ...] | None = None,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.cv = cv
        self.calibration_cv = calibration_cv
        self.C = C
        self.svm_C = svm_C
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.meta_hidden_layer_sizes = meta_hidden_layer_sizes
        self.meta_alpha = meta_alpha
        self.passthrough = passthrough
        self.random_state = random_state
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> StackingEnsemble:
        """Fit the base learners out of fold, refit them on all data, then fit the meta-learner.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Fused features, one row per case or pair.
        y : array-like of shape (n_samples,)
            Binary labels.
        groups : array-like of shape (n_samples,) or (n_samples, 2), optional
            Patient per sample, or (ultrasound patient, mammography patient) per pair. No fold
            has a patient on both sides, see :func:`mpmmu.ensemble.folds.grouped_folds`. None
            makes every sample its own group.

        Returns
        -------
        StackingEnsemble
            The fitted estimator.

        Raises
        ------
        ValueError
            If y is not binary, the parameters are invalid, or the groups cannot fill ``cv`` folds.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if type_of_target(y) == "multiclass":
            raise ValueError(
                f"Only binary classification is supported by StackingEnsemble, got y with "
                f"{len(np.unique(y))} classes"
            )
        if X.shape[0] < self.cv:
            raise ValueError(
                f"StackingEnsemble needs at least cv={self.cv} samples, got n_samples={X.shape[0]}"
            )
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"StackingEnsemble needs samples of both classes, got only 1 class: "
                f"{self.classes_[0]!r}"
            )
        groups = check_groups(groups, X.shape[0])
        self._check_passthrough(X.shape[1])
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)

        folds = grouped_folds(y_encoded, groups, self.cv, random_state=seed)
        oof_predictions = np.full((X.shape[0], len(BASE_LEARNERS)), np.nan)
        for train, test in folds:
            train_groups = None if groups is None else groups[train]
            learners = self._make_base_learners(y_encoded[train], train_groups, seed)
            for column, learner in enumerate(learners.values()):
                learner.fit(X[train], y_encoded[train])
                oof_predictions[test, column] = learner.predict_proba(X[test])[:, 1]

        self.base_learners_ = self._make_base_learners(y_encoded, groups, seed)
        for learner in self.base_learners_.values():
            learner.fit(X, y_encoded)

        tested = ~np.isnan(oof_predictions[:, 0])
        if len(np.unique(y_encoded[tested])) < 2:
            raise ValueError(
                f"the out-of-fold predictions cover {int(tested.sum())} samples of one class "
                f"only, so the meta-learner cannot be fitted; pair images by patient or lower cv"
            )
        self.meta_learner_ = self._make_meta_learner(seed)
        self.meta_learner_.fit(
            self._meta_input(oof_predictions[tested], X[tested]), y_encoded[tested]
        )
        self.oof_predictions_ = oof_predictions
        self.oof_coverage_ = float(tested.mean())
        logger.info(
            "fitted stacking on %d samples and %d features with %d grouped folds; %.0f%% of the "
            "samples have out-of-fold predictions",
            X.shape[0],
            X.shape[1],
            self.cv,
            100 * self.oof_coverage_,
        )
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the meta-learner's class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        p_positive = self.votes(X)["meta_mlp"]
        return np.column_stack([1.0 - p_positive, p_positive])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the class with the higher meta-learner probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        p_positive = self.predict_proba(X)[:, 1]
        return self.classes_[(p_positive >= 0.5).astype(np.intp)]

    def votes(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Return each learner's probability of ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        dict of str to numpy.ndarray of shape (n_samples,)
            Keys :data:`VOTE_NAMES`: the four base learners, then "meta_mlp", the ensemble's
            output. Values are float64 in [0, 1].
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)

        base = np.column_stack([_positive_probability(self.base_learners_[name], X) for name in BASE_LEARNERS])
        meta = self.meta_learner_.predict_proba(self._meta_input(base, X))[:, 1]
        votes = {name: base[:, column] for column, name in enumerate(BASE_LEARNERS)}
        votes["meta_mlp"] = meta
        return votes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_passthrough(self, n_features: int) -> None:
        if self.passthrough is None:
            return
        columns = np.asarray(self.passthrough)
        if columns.ndim != 1 or not np.issubdtype(columns.dtype, np.integer):
            raise ValueError(
                f"passthrough must be a sequence of column indices, got {self.passthrough!r}"
            )
        if np.any(columns < 0) or np.any(columns >= n_features):
            raise ValueError(
                f"passthrough columns must lie in [0, {n_features - 1}] for X with {n_features} "
                f"features, got {columns.tolist()}"
            )

    def _meta_input(self, base_probabilities: np.ndarray, X: np.ndarray) -> np.ndarray:
        if self.passthrough is None:
            return base_probabilities
        return np.column_stack([base_probabilities, X[:, np.asarray(self.passthrough)]])

    def _preprocessing(self, seed: int) -> list[tuple[str, object]]:
        steps: list[tuple[str, object]] = [("scale", StandardScaler())]
        if self.n_components is not None:
            steps.append(("pca", PCA(n_components=self.n_components, random_state=seed)))
        return steps

    def _make_base_learners(
        self, y: np.ndarray, groups: np.ndarray | None, seed: int
    ) -> dict[str, Pipeline]:
        # The calibration folds of the SVM are grouped like the outer folds, so Platt scaling is
        # never fitted on decision values for a patient the SVM was trained on.
        calibration_folds = grouped_folds(y, groups, self.calibration_cv, random_state=seed)
        models = {
            "logistic_regression": LogisticRegression(C=self.C, max_iter=5000),
            "svm": CalibratedClassifierCV(
                SVC(kernel="rbf", C=self.svm_C, gamma="scale", random_state=seed),
                method="sigmoid",
                cv=calibration_folds,
                ensemble=True,
            ),
            "random_forest": RandomForestClassifier(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                random_state=seed,
                n_jobs=self.n_jobs,
            ),
            "extra_trees": ExtraTreesClassifier(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                random_state=seed,
                n_jobs=self.n_jobs,
            ),
        }
        return {
            name: Pipeline(self._preprocessing(seed) + [("model", model)])
            for name, model in models.items()
        }

    def _make_meta_learner(self, seed: int) -> Pipeline:
        # lbfgs suits a few hundred samples of four inputs better than adam with early stopping,
        # which would hold out an ungrouped tenth of them. The strong L2 term regularises instead.
        mlp = MLPClassifier(
            hidden_layer_sizes=tuple(self.meta_hidden_layer_sizes),
            alpha=self.meta_alpha,
            solver="lbfgs",
            max_iter=2000,
            random_state=seed,
        )
        return Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
