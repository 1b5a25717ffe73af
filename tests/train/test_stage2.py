"""Tests of stage 2: fitting the fused and single-modality ensembles and choosing the fusion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mpmmu.ensemble.stacking import VOTE_NAMES
from mpmmu.ensemble.synthetic import make_synthetic_pairs
from mpmmu.ensemble.trusted import load_ensemble, save_ensemble
from mpmmu.train.stage2 import (
    ModalityFeatures,
    PairedFeatures,
    Stage2Result,
    choose_single_modality,
    fit_stage2,
)

SMALL = {"n_estimators": 10, "cv": 3, "calibration_cv": 2}


@pytest.fixture(autouse=True)
def single_blas_thread() -> Iterator[None]:
    # BLAS threads contending for two cores slow these tiny fits several times over.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def train_pairs() -> dict[str, np.ndarray]:
    return make_synthetic_pairs(n_ultrasound_patients=160, n_mammograms=20, seed=0, id_prefix="t")


@pytest.fixture(scope="module")
def val_pairs() -> PairedFeatures:
    pairs = make_synthetic_pairs(n_ultrasound_patients=80, n_mammograms=40, seed=1, id_prefix="v")
    return PairedFeatures(**pairs)


@pytest.fixture(scope="module")
def result(train_pairs, val_pairs) -> Stage2Result:
    with threadpool_limits(limits=1):
        return fit_stage2(**train_pairs, val=val_pairs, seed=0, stacking_params=SMALL)


def test_fit_stage2_records_fusion_choice(result: Stage2Result) -> None:
    metadata = result.metadata()

    assert result.fusion in ("stacking", "late_fusion")
    assert metadata["fusion"] == result.fusion
    better = max(("late_fusion", "stacking"), key=lambda name: result.metrics[name]["auc"])
    assert result.fusion == better


def test_fit_stage2_thresholds_per_model(result: Stage2Result) -> None:
    for name in ("stacking", "late_fusion", "fused_mlp_head", "mammography_only", "ultrasound_only"):
        assert 0.0 <= result.thresholds[name] <= 1.0, name
        assert result.metrics[name]["threshold"] == result.thresholds[name], name
    for name in ("stacking.logistic_regression", "stacking.svm", "mammography_branch"):
        assert name in result.metrics


def test_fit_stage2_records_mammogram_reuse(result: Stage2Result) -> None:
    assert result.training["n_distinct_mammograms"] == 20
    assert result.training["mammogram_reuse_min"] == 8
    assert result.training["mammogram_reuse_max"] == 8
    assert result.training["n_mammography_images"] == 20
    assert result.training["n_ultrasound_images"] == 160


def test_fit_stage2_chooses_late_fusion_on_noise(train_pairs, val_pairs) -> None:
    # The branch probabilities carry the label, the pooled features carry nothing.
    rng = np.random.default_rng(5)
    noisy_train = {
        **train_pairs,
        "features_mg": rng.normal(size=train_pairs["features_mg"].shape),
        "features_us": rng.normal(size=train_pairs["features_us"].shape),
        "p_us": np.clip(0.2 + 0.6 * train_pairs["y"] + rng.normal(0, 0.1, 160), 0, 1),
    }
    val = PairedFeatures(
        features_mg=rng.normal(size=val_pairs.features_mg.shape),
        p_mg=val_pairs.p_mg,
        features_us=rng.normal(size=val_pairs.features_us.shape),
        p_us=np.clip(0.2 + 0.6 * val_pairs.y + rng.normal(0, 0.1, val_pairs.n_pairs), 0, 1),
        y=val_pairs.y,
        groups_mg=val_pairs.groups_mg,
        groups_us=val_pairs.groups_us,
    )

    result = fit_stage2(**noisy_train, val=val, seed=0, stacking_params=SMALL)

    assert result.fusion == "late_fusion"
    assert result.metrics["late_fusion"]["auc"] > 0.9


def test_fit_stage2_chooses_stacking_on_noisy_p(train_pairs, val_pairs) -> None:
    # The pooled features carry the label, the branch probabilities carry nothing.
    rng = np.random.default_rng(6)
    informative_train = {
        **train_pairs,
        "features_us": train_pairs["features_us"] * 0.5 + train_pairs["y"][:, None],
        "p_mg": rng.uniform(size=160),
        "p_us": rng.uniform(size=160),
    }
    val = PairedFeatures(
        features_mg=val_pairs.features_mg,
        p_mg=rng.uniform(size=val_pairs.n_pairs),
        features_us=val_pairs.features_us * 0.5 + val_pairs.y[:, None],
        p_us=rng.uniform(size=val_pairs.n_pairs),
        y=val_pairs.y,
        groups_mg=val_pairs.groups_mg,
        groups_us=val_pairs.groups_us,
    )

    result = fit_stage2(**informative_train, val=val, seed=0, stacking_params=SMALL)

    assert result.fusion == "stacking"
    assert result.metrics["stacking"]["auc"] > 0.9


def test_stage2_predict_both_modalities_uses_chosen_fusion(result, val_pairs) -> None:
    output = result.predict(
        val_pairs.features_mg, val_pairs.p_mg, val_pairs.features_us, val_pairs.p_us
    )

    assert output.fusion == result.fusion
    assert output.single_modality is False
    assert output.threshold == result.thresholds[result.fusion]
    assert output.p_malignant.shape == (val_pairs.n_pairs,)
    assert tuple(output.votes) == VOTE_NAMES
    if result.fusion == "late_fusion":
        expected = result.late_fusion.predict_proba(val_pairs.branch_probabilities)[:, 1]
    else:
        expected = result.stacking.predict_proba(val_pairs.fused)[:, 1]
    np.testing.assert_allclose(output.p_malignant, expected)


@pytest.mark.parametrize("missing", ["mammography", "ultrasound"])
def test_stage2_predict_one_modality_is_flagged(result, val_pairs, missing: str) -> None:
    if missing == "mammography":
        output = result.predict(features_us=val_pairs.features_us[:4], p_us=val_pairs.p_us[:4])
        modality = "ultrasound"
    else:
        output = result.predict(features_mg=val_pairs.features_mg[:4], p_mg=val_pairs.p_mg[:4])
        modality = "mammography"
    present = f"{modality}_{'branch' if result.single_modality[modality] == 'branch' else 'only'}"

    assert output.single_modality is True
    assert output.fusion == present
    assert output.threshold == result.thresholds[present]
    assert output.p_malignant.shape == (4,)
    assert np.all((output.p_malignant >= 0) & (output.p_malignant <= 1))


def test_stage2_predict_raises_no_modality(result) -> None:
    with pytest.raises(ValueError, match="at least one modality"):
        result.predict()


def test_fit_stage2_single_modality_uses_all_images(train_pairs, val_pairs) -> None:
    # 40 more ultrasound images from patients with no pair still train the ultrasound-only model.
    extra = make_synthetic_pairs(n_ultrasound_patients=40, n_mammograms=4, seed=9, id_prefix="x")
    ultrasound_images = ModalityFeatures(
        features=np.vstack([train_pairs["features_us"], extra["features_us"]]),
        p=np.concatenate([train_pairs["p_us"], extra["p_us"]]),
        y=np.concatenate([train_pairs["y"], extra["y"]]),
        groups=np.concatenate([train_pairs["groups_us"], extra["groups_us"]]),
    )

    result = fit_stage2(
        **train_pairs,
        val=val_pairs,
        ultrasound_images=ultrasound_images,
        seed=0,
        stacking_params=SMALL,
    )

    assert result.training["n_ultrasound_images"] == 200
    assert result.ultrasound_only.oof_predictions_.shape[0] == 200


def test_stage2_result_round_trips_through_skops(result, val_pairs, tmp_path: Path) -> None:
    path = tmp_path / "stage2.skops"

    save_ensemble(result, path)
    loaded = load_ensemble(path)

    assert loaded.fusion == result.fusion
    assert loaded.metadata() == result.metadata()
    arguments = (val_pairs.features_mg, val_pairs.p_mg, val_pairs.features_us, val_pairs.p_us)
    np.testing.assert_array_equal(
        loaded.predict(*arguments).p_malignant, result.predict(*arguments).p_malignant
    )


def test_fit_stage2_raises_val_feature_width(train_pairs, val_pairs) -> None:
    val = PairedFeatures(
        features_mg=val_pairs.features_mg[:, :5],
        p_mg=val_pairs.p_mg,
        features_us=val_pairs.features_us,
        p_us=val_pairs.p_us,
        y=val_pairs.y,
        groups_mg=val_pairs.groups_mg,
        groups_us=val_pairs.groups_us,
    )

    with pytest.raises(ValueError, match="val.features_mg has 5 columns"):
        fit_stage2(**train_pairs, val=val, stacking_params=SMALL)


def test_paired_features_raises_label_not_binary(train_pairs) -> None:
    with pytest.raises(ValueError, match=r"0 \(benign\) or 1 \(malignant\)"):
        PairedFeatures(**{**train_pairs, "y": train_pairs["y"] + 1})


def test_paired_features_raises_probability_out_of_range(train_pairs) -> None:
    with pytest.raises(ValueError, match="p_us must hold probabilities"):
        PairedFeatures(**{**train_pairs, "p_us": train_pairs["p_us"] * 3})


def test_paired_features_images_drops_reused_mammograms(train_pairs) -> None:
    pairs = PairedFeatures(**train_pairs)

    mammograms = pairs.images("mammography")

    assert mammograms.features.shape == (20, train_pairs["features_mg"].shape[1])
    assert len(np.unique(mammograms.groups)) == 20


@pytest.mark.parametrize(
    ("branch_auc", "ensemble_auc", "expected"),
    [(0.80, 0.70, "branch"), (0.70, 0.80, "ensemble"), (0.75, 0.75, "ensemble"), (None, 0.4, "ensemble")],
)
def test_choose_single_modality_strictly_better_branch(branch_auc, ensemble_auc, expected) -> None:
    metrics = {"mammography_only": {"auc": ensemble_auc}, "ultrasound_only": {"auc": 0.9}}
    if branch_auc is not None:
        metrics["mammography_branch"] = {"auc": branch_auc}

    assert choose_single_modality(metrics) == {"mammography": expected, "ultrasound": "ensemble"}


def test_stage2_predict_one_modality_with_branch_chosen(result, val_pairs) -> None:
    metrics = {**result.metrics, "mammography_branch": {**result.metrics["mammography_branch"], "auc": 1.0}}
    branch_result = replace(result, metrics=metrics)

    output = branch_result.predict(features_mg=val_pairs.features_mg[:4], p_mg=val_pairs.p_mg[:4])

    assert branch_result.single_modality["mammography"] == "branch"
    assert branch_result.metadata()["single_modality"]["mammography"] == "branch"
    assert output.fusion == "mammography_branch"
    np.testing.assert_allclose(output.p_malignant, val_pairs.p_mg[:4])
    assert output.threshold == result.thresholds["mammography_branch"]
    assert set(output.votes) == set(VOTE_NAMES)
    with pytest.raises(ValueError, match="pass its probability as p_mg"):
        branch_result.predict(features_mg=val_pairs.features_mg[:4])
