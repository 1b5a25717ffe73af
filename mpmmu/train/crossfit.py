"""Stage 2 of a training run: pseudo-pairs of the validation split, cross-fitting and the final fit.

Stage 2 is fitted on the validation split, whose images neither branch trained on. The fusion
choice and the thresholds come from cross-fitting inside that split, see
:func:`cross_fit_validation`; :func:`fit_final_stage2` then refits on all validation pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from mpmmu.data import CaseRow, make_pseudo_pairs, patient_kfold
from mpmmu.errors import TrainingDataError
from mpmmu.train.run import MODALITIES, PAIR_MODELS, ImageScores, TrainRunConfig, rows_of

logger = logging.getLogger(__name__)


def _pair_parts(pairs: Sequence[CaseRow]) -> tuple[list[str], list[str]]:
    us_ids, mg_ids = [], []
    for pair in pairs:
        us_case, _, mg_case = pair.case_id.partition("+")
        us_ids.append(us_case)
        mg_ids.append(mg_case)
    return us_ids, mg_ids


def paired_features(pairs: Sequence[CaseRow], scores: dict[str, ImageScores]):
    """Look up both images of each pseudo-pair and return :class:`mpmmu.train.stage2.PairedFeatures`."""
    from mpmmu.train.stage2 import PairedFeatures

    us_ids, mg_ids = _pair_parts(pairs)
    us_index, mg_index = scores["ultrasound"].index(), scores["mammography"].index()
    us = np.array([us_index[case] for case in us_ids], dtype=np.intp)
    mg = np.array([mg_index[case] for case in mg_ids], dtype=np.intp)
    return PairedFeatures(
        features_mg=scores["mammography"].features[mg],
        p_mg=scores["mammography"].p[mg],
        features_us=scores["ultrasound"].features[us],
        p_us=scores["ultrasound"].p[us],
        y=np.array([pair.y for pair in pairs]),
        groups_mg=scores["mammography"].patient_id[mg],
        groups_us=scores["ultrasound"].patient_id[us],
    )


def modality_features(scores: ImageScores, mask: np.ndarray):
    """Return the images selected by ``mask`` as :class:`mpmmu.train.stage2.ModalityFeatures`."""
    from mpmmu.train.stage2 import ModalityFeatures

    return ModalityFeatures(scores.features[mask], scores.p[mask], scores.y[mask], scores.patient_id[mask])


def pair_scores(result, pairs) -> dict[str, np.ndarray]:
    """Score pairs with every stage-2 model of ``result`` (a ``Stage2Result``) and both branches."""
    fused = pairs.fused
    return {
        "stacking": result.stacking.votes(fused)["meta_mlp"],
        "late_fusion": result.late_fusion.predict_proba(pairs.branch_probabilities)[:, 1],
        "fused_mlp_head": result.fused_mlp_head.predict_proba(fused)[:, 1],
        "mammography_branch": pairs.p_mg,
        "ultrasound_branch": pairs.p_us,
        "mammography_only": result.mammography_only.predict_proba(pairs.features_mg)[:, 1],
        "ultrasound_only": result.ultrasound_only.predict_proba(pairs.features_us)[:, 1],
    }


def _fold_of(rows: Sequence[CaseRow], k: int, seed: int) -> dict[str, str]:
    fold_of = {}
    smallest_class = min(sum(row.label == label for row in rows) for label in ("benign", "malignant"))
    if smallest_class < 2:
        raise ValueError(
            f"the validation split contains {smallest_class} case(s) of one class; stage 2 needs at least "
            "2 per class to cross-fit, so use more data (a larger --synthetic N)"
        )
    if k > smallest_class:
        logger.warning("stage-2 cross-fitting uses %d folds instead of %d: the validation split has %d cases of one class", smallest_class, k, smallest_class)
        k = smallest_class
    for _, test in patient_kfold(rows, k, seed):
        for row in test:
            fold_of[row.case_id] = row.split
    return fold_of


def cross_fit_validation(
    split_rows: dict[str, list[CaseRow]],
    scores: dict[str, ImageScores],
    config: TrainRunConfig,
    stacking_params: dict[str, Any],
) -> tuple[list[CaseRow], dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Score the validation pairs and images out of fold, for the fusion choice and thresholds.

    Each modality's validation patients are cut into ``config.stage2_folds`` folds, and pairs are
    made inside each fold. Fold i is scored by stage 2 fitted on the pairs and images of the other
    folds, so no scored pair shares a patient with the pairs that fitted its models.

    Returns
    -------
    pairs : list of CaseRow
        The validation pseudo-pairs, with ``split`` set to their fold.
    pair_oof : dict of str to numpy.ndarray
        Out-of-fold score of each of :data:`PAIR_MODELS` per pair, and "y".
    image_oof : dict of str to dict of str to numpy.ndarray
        Per modality: case ids, labels and the out-of-fold single-modality ensemble score.
    """
    k = config.stage2_folds
    val = {modality: rows_of(split_rows[modality], "val") for modality in MODALITIES}
    folds = {modality: _fold_of(val[modality], k, config.seed) for modality in MODALITIES}
    folded = {modality: [row.with_split(folds[modality][row.case_id]) for row in val[modality]] for modality in MODALITIES}
    pairs = make_pseudo_pairs(folded["ultrasound"], folded["mammography"], "ultrasound", config.seed)
    pair_fold = np.array([pair.split for pair in pairs])
    all_pairs = paired_features(pairs, scores)

    pair_oof = {name: np.full(len(pairs), np.nan) for name in PAIR_MODELS}
    image_oof: dict[str, dict[str, np.ndarray]] = {}
    image_masks = {}
    for modality in MODALITIES:
        index = scores[modality].index()
        positions = np.array([index[row.case_id] for row in folded[modality]], dtype=np.intp)
        image_masks[modality] = (positions, np.array([row.split for row in folded[modality]]))
        image_oof[modality] = {
            "case_id": scores[modality].case_id[positions],
            "y": scores[modality].y[positions],
            "only": np.full(len(positions), np.nan),
        }

    for fold in sorted(set(pair_fold.tolist())):
        train_mask, test_mask = pair_fold != fold, pair_fold == fold
        train_pairs = _subset_pairs(all_pairs, train_mask)
        test_pairs = _subset_pairs(all_pairs, test_mask)
        images = {}
        for modality in MODALITIES:
            positions, image_fold = image_masks[modality]
            selected = np.zeros(len(scores[modality].y), dtype=bool)
            selected[positions[image_fold != fold]] = True
            images[modality] = modality_features(scores[modality], selected)
        result = fit_stage2_with_fallback(train_pairs, test_pairs, images, config.seed, stacking_params, config.stage2_pca)
        for name, values in pair_scores(result, test_pairs).items():
            pair_oof[name][test_mask] = values
        for modality in MODALITIES:
            positions, image_fold = image_masks[modality]
            held_out = image_fold == fold
            ensemble = result.mammography_only if modality == "mammography" else result.ultrasound_only
            image_oof[modality]["only"][held_out] = ensemble.predict_proba(scores[modality].features[positions[held_out]])[:, 1]
        logger.info("stage-2 cross-fitting: fold %s scored (%d pairs)", fold, int(test_mask.sum()))
    pair_oof["y"] = all_pairs.y
    return pairs, pair_oof, image_oof


def fit_stage2_with_fallback(
    train_pairs, val_pairs, images: dict[str, Any], seed: int, stacking_params: dict[str, Any], n_components: float | None = None
):
    """Call :func:`mpmmu.train.stage2.fit_stage2`, retrying with 2 inner folds when the patients cannot fill more.

    With a few validation mammograms per class, an inner fold's training part can end up with one
    class only. Fewer inner folds give every part more patients.
    """
    from mpmmu.train.stage2 import fit_stage2

    def fit(params: dict[str, Any]):
        return fit_stage2(
            train_pairs.features_mg, train_pairs.p_mg, train_pairs.features_us, train_pairs.p_us,
            train_pairs.y, train_pairs.groups_mg, train_pairs.groups_us,
            val=val_pairs,
            mammography_images=images["mammography"],
            ultrasound_images=images["ultrasound"],
            seed=seed,
            stacking_params=params,
            n_components=n_components,
        )

    try:
        return fit(stacking_params)
    except ValueError as error:
        fallback = {**stacking_params, "cv": 2, "calibration_cv": 2}
        if fallback == stacking_params:
            raise _too_few_patients(error) from error
        logger.warning("stage-2 fit failed with %s (%s); retrying with 2 inner folds", stacking_params, error)
    try:
        return fit(fallback)
    except ValueError as error:
        raise _too_few_patients(error) from error


def _too_few_patients(error: ValueError) -> TrainingDataError:
    return TrainingDataError(
        f"stage 2 could not be fitted even with 2 inner folds ({error}); the validation split has too few "
        "patients of one class for the cross-fitting, so train on more cases or change --stage2-folds"
    )


def _subset_pairs(pairs, mask: np.ndarray):
    from mpmmu.train.stage2 import PairedFeatures

    return PairedFeatures(
        pairs.features_mg[mask], pairs.p_mg[mask], pairs.features_us[mask], pairs.p_us[mask],
        pairs.y[mask], pairs.groups_mg[mask], pairs.groups_us[mask],
    )


def choose_from_out_of_fold(
    pair_oof: dict[str, np.ndarray],
    image_oof: dict[str, dict[str, np.ndarray]],
    scores: dict[str, ImageScores],
) -> tuple[str, dict[str, float], dict[str, dict[str, float]]]:
    """Choose the fusion and every threshold from the cross-fitted validation scores.

    Returns
    -------
    fusion : {"stacking", "late_fusion"}
        Stacking only when its out-of-fold AUC is strictly higher than late fusion's.
    thresholds : dict of str to float
        Youden threshold per model, including the raw branches on all validation images.
    metrics : dict of str to dict of str to float
        Out-of-fold validation AUC, n, threshold, sensitivity, specificity and Brier score.
    """
    from mpmmu.metrics import brier_score, choose_threshold, roc_auc, threshold_metrics

    def summarise(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
        threshold = float(choose_threshold(y, score, rule="youden"))
        at = threshold_metrics(y, score, threshold)
        return {
            "auc": float(roc_auc(y, score)),
            "n": float(len(y)),
            "threshold": threshold,
            "sensitivity": float(at.sensitivity),
            "specificity": float(at.specificity),
            "brier": float(brier_score(y, np.clip(score, 0.0, 1.0))),
        }

    metrics = {}
    y_pairs = pair_oof["y"]
    for name in ("stacking", "late_fusion", "fused_mlp_head"):
        tested = ~np.isnan(pair_oof[name])
        metrics[name] = summarise(y_pairs[tested], pair_oof[name][tested])
    for modality in MODALITIES:
        oof = image_oof[modality]
        tested = ~np.isnan(oof["only"])
        metrics[f"{modality}_only"] = summarise(oof["y"][tested], oof["only"][tested])
        val = scores[modality].split == "val"
        metrics[f"{modality}_branch"] = summarise(scores[modality].y[val], scores[modality].p[val])
    fusion = "stacking" if metrics["stacking"]["auc"] > metrics["late_fusion"]["auc"] else "late_fusion"
    thresholds = {name: values["threshold"] for name, values in metrics.items()}
    return fusion, thresholds, metrics


def fit_final_stage2(split_rows, scores, config: TrainRunConfig, stacking_params, fusion, thresholds, metrics):
    """Refit stage 2 on all validation pairs and images, keeping the cross-fitted choice and thresholds."""
    val_us = rows_of(split_rows["ultrasound"], "val")
    val_mg = rows_of(split_rows["mammography"], "val")
    pairs = paired_features(make_pseudo_pairs(val_us, val_mg, "ultrasound", config.seed), scores)
    images = {modality: modality_features(scores[modality], scores[modality].split == "val") for modality in MODALITIES}
    # NOTE: fit_stage2 also scores its val argument; with the training pairs passed there those
    # in-sample numbers are discarded and replaced by the cross-fitted ones below.
    result = fit_stage2_with_fallback(pairs, pairs, images, config.seed, stacking_params, config.stage2_pca)
    return replace(result, fusion=fusion, thresholds={**result.thresholds, **thresholds}, metrics=metrics)


def stacking_params_for(config: TrainRunConfig, smallest_class: int) -> dict[str, Any]:
    """Return the stage-2 stacking settings for a validation split whose rarer class has ``smallest_class`` mammograms."""
    # Every inner fold needs mammograms of both classes in its training part, and the
    # cross-fitting leaves (k - 1) / k of the validation mammograms for training.
    usable = smallest_class * (config.stage2_folds - 1) // config.stage2_folds
    if usable >= 25:
        inner_cv = 5
    elif usable >= 6:
        inner_cv = 3
    else:
        inner_cv = 2
    return {"cv": inner_cv, "calibration_cv": min(3, inner_cv), "n_estimators": config.n_estimators}
