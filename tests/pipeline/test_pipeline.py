"""End to end on a tiny trained bundle: predict with both, one or no images, explanations, batches."""

from __future__ import annotations

import csv
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mpmmu.data import read_manifest
from mpmmu.errors import ModelInputError
from mpmmu.io import read_image
from mpmmu.pipeline import Pipeline
from mpmmu.pipeline.pipeline import BASE_LEARNERS, PREDICTION_COLUMNS, write_predictions

VOTE_NAMES = {*BASE_LEARNERS, "meta_mlp"}


@pytest.fixture(scope="module")
def pipeline(tiny_bundle_dir) -> Pipeline:
    return Pipeline.load(tiny_bundle_dir, device="cpu")


@pytest.fixture(scope="module")
def rows(tiny_bundle_dir) -> list:
    return read_manifest(tiny_bundle_dir.parent / "data" / "manifest.csv")


@pytest.fixture(scope="module")
def case(rows) -> dict:
    row = next(row for row in rows if row.split == "test")
    return {
        "row": row,
        "mammogram": read_image(row.mammogram_path),
        "ultrasound": read_image(row.ultrasound_path),
    }


@pytest.fixture(scope="module")
def explained(pipeline, case):
    return pipeline.predict(
        case["mammogram"],
        case["ultrasound"],
        mammogram_roi=case["row"].mammogram_roi,
        ultrasound_roi=case["row"].ultrasound_roi,
        explain=True,
    )


def test_predict_fills_scores_and_provenance(pipeline, explained):
    prediction = explained

    assert 0.0 <= prediction.p_malignant <= 1.0
    assert 0.0 <= prediction.p_mammography <= 1.0
    assert 0.0 <= prediction.p_ultrasound <= 1.0
    assert set(prediction.votes) == VOTE_NAMES
    assert prediction.fusion == pipeline.metadata["fusion"]["chosen"]
    assert prediction.threshold == pytest.approx(pipeline.metadata["thresholds"][prediction.fusion])
    assert prediction.model_version == pipeline.model_version
    assert prediction.device.startswith("cpu")
    assert prediction.roi_used == {"mammography": True, "ultrasound": True}
    assert prediction.pseudo_paired_training is False
    assert not any("no lesion box" in warning for warning in prediction.warnings)


def test_predict_reports_timings_per_step(explained):
    expected = {
        "preprocess_mammography",
        "preprocess_ultrasound",
        "branch_mammography",
        "branch_ultrasound",
        "ensemble",
        "gradcam_mammography",
        "gradcam_ultrasound",
        "attention_mammography",
        "attention_ultrasound",
        "total",
    }

    assert expected <= set(explained.timings)
    assert all(seconds >= 0 for seconds in explained.timings.values())


def test_predict_agreement_counts_base_learners(explained):
    final_side = explained.p_malignant >= explained.threshold
    same_side = [(explained.votes[name] >= explained.votes_threshold) == final_side for name in BASE_LEARNERS]

    assert explained.agreement == pytest.approx(np.mean(same_side))


@pytest.fixture(scope="module")
def late_fusion_pipeline(pipeline) -> Pipeline:
    metadata = dict(pipeline.metadata)
    metadata["fusion"] = {**metadata["fusion"], "chosen": "late_fusion"}
    thresholds = dict(metadata["thresholds"])
    # Distinct thresholds, so a mix-up of the late-fusion and stacking thresholds shows.
    thresholds["late_fusion"] = 0.4
    thresholds["stacking"] = 0.6
    metadata["thresholds"] = thresholds
    return Pipeline(replace(pipeline.bundle, metadata=metadata), pipeline.device)


def test_predict_late_fusion_labels_stacking_votes(late_fusion_pipeline, case):
    prediction = late_fusion_pipeline.predict(case["mammogram"], case["ultrasound"], explain=False)

    assert prediction.fusion == "late_fusion"
    assert prediction.threshold == pytest.approx(0.4)
    assert prediction.votes_model == "stacking"
    assert prediction.votes_threshold == pytest.approx(0.6)
    assert set(prediction.votes) == VOTE_NAMES


def test_predict_late_fusion_agreement_uses_stacking_threshold(late_fusion_pipeline, case):
    prediction = late_fusion_pipeline.predict(case["mammogram"], case["ultrasound"], explain=False)
    final_side = prediction.p_malignant >= 0.4
    same_side = [(prediction.votes[name] >= 0.6) == final_side for name in BASE_LEARNERS]

    assert prediction.agreement == pytest.approx(np.mean(same_side))


def test_predict_heatmaps_on_original_pixels(explained, case):
    for modality, image in (("mammography", case["mammogram"]), ("ultrasound", case["ultrasound"])):
        heatmap = explained.heatmaps[modality]
        assert heatmap.shape == image.shape
        assert heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0
        assert heatmap.max() <= 1.0


def test_predict_heatmap_zero_outside_crop(pipeline, explained, case):
    row = case["row"]
    transform = pipeline.preprocess(case["ultrasound"], "ultrasound", row.ultrasound_roi).transform
    x, y, width, height = transform.crop_box
    outside = np.ones(case["ultrasound"].shape, dtype=bool)
    outside[y : y + height, x : x + width] = False

    heatmap = explained.heatmaps["ultrasound"]

    assert outside.any()
    assert heatmap[outside].max() == 0.0


def test_predict_attention_maps(explained, case):
    attention = explained.attention

    assert attention["mammography_spatial"].shape == case["mammogram"].shape
    assert attention["ultrasound_channels"].shape == (1280,)
    assert attention["ultrasound_channel_map"].shape == case["ultrasound"].shape
    for name in ("mammography_spatial", "ultrasound_channels", "ultrasound_channel_map"):
        assert attention[name].min() >= 0.0, name
        assert attention[name].max() <= 1.0, name


def test_predict_branch_probability_matches_training_path(pipeline, case, tiny_bundle_dir):
    from mpmmu.preprocess import PreprocessConfig
    from mpmmu.train.stage1 import predict_branch

    config = PreprocessConfig.from_dict(pipeline.metadata["preprocess"]["ultrasound"])
    expected = predict_branch(pipeline.bundle.branches["ultrasound"], [case["row"]], config, device="cpu")

    prediction = pipeline.predict(None, case["ultrasound"], ultrasound_roi=case["row"].ultrasound_roi, explain=False)

    # The training cache keeps preprocessed images as uint8, so the two paths differ by rounding.
    assert prediction.p_ultrasound == pytest.approx(float(expected.probabilities[0]), abs=5e-3)


def _single_modality_pipeline(pipeline: Pipeline, answer: str) -> Pipeline:
    metadata = dict(pipeline.metadata)
    metadata["fusion"] = {
        **metadata["fusion"],
        "single_modality": {"mammography": answer, "ultrasound": answer},
    }
    thresholds = dict(metadata["thresholds"])
    # Distinct thresholds, so a mix-up of the branch and ensemble thresholds shows.
    thresholds.update(mammography_branch=0.31, ultrasound_branch=0.32, mammography_only=0.41, ultrasound_only=0.42)
    metadata["thresholds"] = thresholds
    return Pipeline(replace(pipeline.bundle, metadata=metadata), pipeline.device)


@pytest.fixture(scope="module")
def ensemble_single_pipeline(pipeline) -> Pipeline:
    return _single_modality_pipeline(pipeline, "ensemble")


@pytest.fixture(scope="module")
def branch_single_pipeline(pipeline) -> Pipeline:
    return _single_modality_pipeline(pipeline, "branch")


def test_predict_ultrasound_only_answers_with_single_model(ensemble_single_pipeline, case):
    pipeline = ensemble_single_pipeline
    prediction = pipeline.predict(None, case["ultrasound"], explain=True)

    assert prediction.fusion == "ultrasound_only"
    assert prediction.p_mammography is None
    assert prediction.p_malignant == pytest.approx(prediction.votes["meta_mlp"])
    assert prediction.threshold == pytest.approx(pipeline.metadata["thresholds"]["ultrasound_only"])
    assert set(prediction.heatmaps) == {"ultrasound"}
    assert prediction.roi_used == {"ultrasound": False}
    assert "one modality missing (mammography): ultrasound-only model answered" in prediction.warnings
    assert "no lesion box given for the ultrasound, whole image used" in prediction.warnings


def test_predict_mammography_only_answers_with_single_model(ensemble_single_pipeline, case):
    pipeline = ensemble_single_pipeline
    prediction = pipeline.predict(case["mammogram"], None, mammogram_roi=case["row"].mammogram_roi, explain=False)

    assert prediction.fusion == "mammography_only"
    assert prediction.threshold == pytest.approx(0.41)
    assert prediction.p_ultrasound is None
    assert prediction.heatmaps == {}
    assert "one modality missing (ultrasound): mammography-only model answered" in prediction.warnings


@pytest.mark.parametrize("modality", ["mammography", "ultrasound"])
def test_predict_one_image_by_chosen_branch(branch_single_pipeline, case, modality):
    images = {"mammogram": None, "ultrasound": None}
    key = "mammogram" if modality == "mammography" else "ultrasound"
    images[key] = case[key]
    prediction = branch_single_pipeline.predict(images["mammogram"], images["ultrasound"], explain=False)
    p_branch = prediction.p_mammography if modality == "mammography" else prediction.p_ultrasound

    assert prediction.fusion == f"{modality}_branch"
    assert prediction.p_malignant == pytest.approx(p_branch)
    assert prediction.threshold == pytest.approx(0.31 if modality == "mammography" else 0.32)
    # The single-modality ensemble's learners still vote, marked as a comparison.
    assert prediction.votes_model == f"{modality}_only"
    assert prediction.votes_threshold == pytest.approx(0.41 if modality == "mammography" else 0.42)
    assert set(prediction.votes) == VOTE_NAMES
    assert any(text.endswith(f"{modality}-branch model answered") for text in prediction.warnings)


def test_predict_raises_no_image(pipeline):
    with pytest.raises(ModelInputError, match="no image given"):
        pipeline.predict(None, None)


def test_predict_leaves_branches_unchanged(pipeline, case):
    branches = pipeline.bundle.branches.values()

    pipeline.predict(case["mammogram"], case["ultrasound"], explain=True)

    for branch in branches:
        hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in branch.modules())
        assert hooks == 0
        assert not branch.training
        assert not any(parameter.requires_grad for parameter in branch.parameters())
        assert all(parameter.grad is None for parameter in branch.parameters())


def test_predict_concurrent_calls_match_serial(pipeline, case, explained):
    arguments = (case["mammogram"], case["ultrasound"], case["row"].mammogram_roi, case["row"].ultrasound_roi)
    results = [None] * 4

    def score(index: int) -> None:
        results[index] = pipeline.predict(*arguments, explain=True)

    threads = [threading.Thread(target=score, args=(index,)) for index in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for result in results:
        assert result.p_malignant == pytest.approx(explained.p_malignant, abs=1e-6)
        np.testing.assert_allclose(result.heatmaps["ultrasound"], explained.heatmaps["ultrasound"], atol=1e-5)
        np.testing.assert_allclose(
            result.attention["mammography_spatial"], explained.attention["mammography_spatial"], atol=1e-5
        )


def test_predict_batch_records_failures(pipeline, rows, tmp_path):
    chosen = [row for row in rows if row.split == "test"][:2]
    broken = replace(chosen[0], case_id="broken", ultrasound_path=tmp_path / "missing.png")

    results = pipeline.predict_batch([*chosen, broken])
    path = write_predictions(results, tmp_path / "predictions.csv")

    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == PREDICTION_COLUMNS
    assert [record["case_id"] for record in table] == [chosen[0].case_id, chosen[1].case_id, "broken"]
    assert float(table[0]["p_malignant"]) == pytest.approx(results[0].prediction.p_malignant, abs=1e-6)
    assert table[0]["error"] == ""
    assert table[2]["p_malignant"] == ""
    assert "missing.png" in table[2]["error"]


@pytest.mark.parametrize(
    ("auc", "warned"),
    [(0.42, True), (0.59, True), (0.6, False), (0.87, False), (None, False)],
)
def test_weak_model_warning_below_validation_auc(auc, warned):
    validation = {} if auc is None else {"mammography_only": {"auc": auc}}
    holder = SimpleNamespace(metadata={"metrics": {"validation_out_of_fold": validation}})

    warning = Pipeline._weak_model_warning(holder, "mammography_only")

    assert (warning is not None) == warned
    if warned:
        assert f"{auc:.2f}" in warning
        assert "mammography-only" in warning
