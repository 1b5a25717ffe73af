"""Tests of the stacking ensemble, including the pseudo-pair trap it is built to avoid."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from mpmmu.ensemble.fusion import fuse_features
from mpmmu.ensemble.stacking import BASE_LEARNERS, VOTE_NAMES, StackingEnsemble
from mpmmu.ensemble.synthetic import make_synthetic_pairs

# Few trees and folds keep every fit well under a second.
SMALL = {"n_estimators": 10, "cv": 3, "calibration_cv": 2, "random_state": 0}


@pytest.fixture(scope="module")
def pairs() -> dict[str, np.ndarray]:
    return make_synthetic_pairs(n_ultrasound_patients=160, n_mammograms=20, seed=0, id_prefix="a")


@pytest.fixture(scope="module")
def fitted(pairs: dict[str, np.ndarray]) -> StackingEnsemble:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])
    groups = np.column_stack([pairs["groups_us"], pairs["groups_mg"]])
    return StackingEnsemble(**SMALL).fit(X, pairs["y"], groups)


# LateFusion is left out: it takes exactly two columns of probabilities, which the generic
# checks do not generate.
@parametrize_with_checks([StackingEnsemble(**SMALL)])
def test_stacking_passes_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_stacking_votes_keys_shapes_and_ranges(fitted: StackingEnsemble, pairs) -> None:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])[:25]

    votes = fitted.votes(X)

    assert tuple(votes) == VOTE_NAMES
    for name, vote in votes.items():
        assert vote.shape == (25,), name
        assert vote.dtype == np.float64, name
        assert np.all((vote >= 0) & (vote <= 1)), name


@pytest.mark.parametrize("n_cases", [1, 5, 25])
def test_stacking_votes_match_each_learners_predict_proba(fitted: StackingEnsemble, pairs, n_cases: int) -> None:
    # Small batches take a direct path through the forests' trees; it must agree with scikit-learn's.
    X = fuse_features(pairs["features_mg"], pairs["features_us"])[:n_cases]

    votes = fitted.votes(X)

    for name in BASE_LEARNERS:
        expected = fitted.base_learners_[name].predict_proba(X)[:, 1]
        np.testing.assert_allclose(votes[name], expected, rtol=0, atol=1e-12, err_msg=name)


def test_stacking_predict_proba_is_meta_vote(fitted: StackingEnsemble, pairs) -> None:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])[:25]

    proba = fitted.predict_proba(X)

    assert proba.shape == (25, 2)
    np.testing.assert_allclose(proba[:, 1], fitted.votes(X)["meta_mlp"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_stacking_stores_out_of_fold_predictions(fitted: StackingEnsemble, pairs) -> None:
    assert fitted.oof_predictions_.shape == (len(pairs["y"]), len(BASE_LEARNERS))
    assert fitted.oof_coverage_ == 1.0
    assert set(fitted.base_learners_) == set(BASE_LEARNERS)


def test_stacking_passthrough_feeds_meta_learner(pairs) -> None:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])

    model = StackingEnsemble(**SMALL, passthrough=[0, 1]).fit(X, pairs["y"])

    assert model.meta_learner_.n_features_in_ == len(BASE_LEARNERS) + 2


def test_stacking_pca_keeps_components(pairs) -> None:
    X = fuse_features(pairs["features_mg"], pairs["features_us"])

    model = StackingEnsemble(**SMALL, n_components=4).fit(X, pairs["y"])

    pca = model.base_learners_["svm"].named_steps["pca"]
    assert pca.n_components_ == 4


def test_stacking_fit_raises_multiclass() -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = np.arange(30) % 3

    with pytest.raises(ValueError, match="Only binary classification"):
        StackingEnsemble(**SMALL).fit(X, y)


def test_stacking_fit_raises_passthrough_out_of_range() -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = np.arange(30) % 2

    with pytest.raises(ValueError, match=r"passthrough columns must lie in \[0, 2\]"):
        StackingEnsemble(**SMALL, passthrough=[3]).fit(X, y)


def test_stacking_fit_raises_groups_wrong_length() -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = np.arange(30) % 2

    with pytest.raises(ValueError, match="X has 30 rows"):
        StackingEnsemble(**SMALL).fit(X, y, groups=np.arange(29))


def test_stacking_grouped_oof_is_honest_ungrouped_is_optimistic() -> None:
    # 40 mammograms, each reused by 8 ultrasound patients of its class: a learner that
    # memorises a mammogram reads the label off it. The independent test set has new patients
    # and one mammogram per pair, so its AUC is what the model really achieves.
    train = make_synthetic_pairs(n_ultrasound_patients=320, n_mammograms=40, seed=0, id_prefix="a")
    test = make_synthetic_pairs(n_ultrasound_patients=400, n_mammograms=400, seed=100, id_prefix="b")
    X = fuse_features(train["features_mg"], train["features_us"])
    X_test = fuse_features(test["features_mg"], test["features_us"])
    both_patients = np.column_stack([train["groups_us"], train["groups_mg"]])
    params = {"n_estimators": 50, "cv": 4, "random_state": 0}

    def mean_auc(y: np.ndarray, scores: np.ndarray) -> float:
        return float(np.mean([roc_auc_score(y, column) for column in scores.T]))

    grouped = StackingEnsemble(**params).fit(X, train["y"], both_patients)
    ungrouped = StackingEnsemble(**params).fit(X, train["y"])
    test_auc = mean_auc(
        test["y"], np.column_stack([grouped.votes(X_test)[name] for name in BASE_LEARNERS])
    )
    grouped_oof_auc = mean_auc(train["y"], grouped.oof_predictions_)
    ungrouped_oof_auc = mean_auc(train["y"], ungrouped.oof_predictions_)

    assert abs(grouped_oof_auc - test_auc) < 0.08, (grouped_oof_auc, test_auc)
    assert ungrouped_oof_auc - test_auc > 0.15, (ungrouped_oof_auc, test_auc)
