"""Unit tests of the training orchestration helpers and the evaluation report pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mpmmu.data import CaseRow, make_pseudo_pairs
from mpmmu.errors import MetricInputError
from mpmmu.train.evaluate import (
    ReportRow,
    format_table,
    metric_row,
    read_predictions,
    roc_points,
    train_command,
)
from mpmmu.train.crossfit import choose_from_out_of_fold, paired_features, stacking_params_for
from mpmmu.train.run import ImageScores, TrainRunConfig, check_work_dir, whole_image_row, write_csv


def _row(case_id: str, patient: str, label: str, split: str, modality: str) -> CaseRow:
    path = Path(f"/images/{case_id}.png")
    roi = (1, 2, 30, 40)
    return CaseRow(
        case_id=case_id,
        patient_id=patient,
        mammogram_path=path if modality == "mammography" else None,
        ultrasound_path=path if modality == "ultrasound" else None,
        label=label,
        mammogram_roi=roi if modality == "mammography" else None,
        ultrasound_roi=roi if modality == "ultrasound" else None,
        split=split,
    )


def _scores(case_ids: list[str], labels: list[int], offset: float, width: int = 3) -> ImageScores:
    n = len(case_ids)
    features = np.arange(n * width, dtype=np.float32).reshape(n, width) + offset
    return ImageScores(
        case_id=np.array(case_ids),
        patient_id=np.array([f"p-{case}" for case in case_ids]),
        split=np.array(["val"] * n),
        y=np.array(labels),
        p=np.linspace(0.1, 0.9, n),
        p_whole=np.full(n, np.nan),
        features=features,
    )


def test_check_work_dir_raises_inside_data(tmp_path):
    data = tmp_path / "shared" / "data"
    data.mkdir(parents=True)
    with pytest.raises(ValueError, match="read-only"):
        check_work_dir(data / "runs", data)
    with pytest.raises(ValueError, match="read-only"):
        check_work_dir(tmp_path / "shared" / "cache", data)


def test_check_work_dir_accepts_sibling(tmp_path):
    data = tmp_path / "shared" / "data"
    data.mkdir(parents=True)
    check_work_dir(tmp_path / "cache" / "runs", data)


def test_config_raises_on_unknown_attention(tmp_path):
    with pytest.raises(ValueError, match="attention must be"):
        TrainRunConfig(work_dir=tmp_path / "work", data_dir=tmp_path / "data", attention="se")


def test_config_raises_on_one_fold(tmp_path):
    with pytest.raises(ValueError, match="stage2_folds"):
        TrainRunConfig(work_dir=tmp_path / "work", data_dir=tmp_path / "data", stage2_folds=1)


def test_whole_image_row_drops_both_rois():
    row = _row("u1", "a", "benign", "test", "ultrasound")
    whole = whole_image_row(row)
    assert whole.ultrasound_roi is None
    assert whole.mammogram_roi is None
    assert whole.ultrasound_path == row.ultrasound_path


def test_paired_features_looks_up_both_images():
    us_rows = [_row(f"u{i}", f"us{i}", label, "val", "ultrasound") for i, label in enumerate(["benign", "malignant"] * 3)]
    mg_rows = [_row(f"m{i}", f"mg{i}", label, "val", "mammography") for i, label in enumerate(["benign", "malignant"])]
    scores = {
        "ultrasound": _scores([row.case_id for row in us_rows], [row.y for row in us_rows], 0.0),
        "mammography": _scores([row.case_id for row in mg_rows], [row.y for row in mg_rows], 1000.0, width=2),
    }
    pairs = make_pseudo_pairs(us_rows, mg_rows, "ultrasound", seed=0)
    features = paired_features(pairs, scores)

    assert features.n_pairs == len(us_rows)
    for i, pair in enumerate(pairs):
        us_case, _, mg_case = pair.case_id.partition("+")
        us_index = scores["ultrasound"].index()[us_case]
        mg_index = scores["mammography"].index()[mg_case]
        np.testing.assert_array_equal(features.features_us[i], scores["ultrasound"].features[us_index])
        np.testing.assert_array_equal(features.features_mg[i], scores["mammography"].features[mg_index])
        assert features.y[i] == pair.y
        assert features.groups_mg[i] == f"p-{mg_case}"


def test_image_scores_save_load_roundtrip(tmp_path):
    scores = _scores(["a", "b", "c"], [0, 1, 0], 0.5)
    scores.save(tmp_path / "s.npz")
    loaded = ImageScores.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.case_id, scores.case_id)
    np.testing.assert_array_equal(loaded.features, scores.features)
    assert np.isnan(loaded.p_whole).all()


def _oof(stacking: np.ndarray, late: np.ndarray, y: np.ndarray):
    pair_oof = {"y": y, "stacking": stacking, "late_fusion": late, "fused_mlp_head": late}
    image_oof = {
        modality: {"case_id": np.array(["a", "b", "c", "d"]), "y": np.array([0, 1, 0, 1]), "only": np.array([0.2, 0.7, 0.4, 0.6])}
        for modality in ("mammography", "ultrasound")
    }
    scores = {modality: _scores(["a", "b", "c", "d"], [0, 1, 0, 1], 0.0) for modality in ("mammography", "ultrasound")}
    return choose_from_out_of_fold(pair_oof, image_oof, scores)


def test_choose_fusion_picks_better_stacking():
    y = np.array([0, 0, 1, 1, 0, 1])
    perfect = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    weak = np.array([0.6, 0.2, 0.3, 0.9, 0.5, 0.4])
    fusion, thresholds, metrics = _oof(perfect, weak, y)
    assert fusion == "stacking"
    assert metrics["stacking"]["auc"] == pytest.approx(1.0)
    assert set(thresholds) >= {"stacking", "late_fusion", "fused_mlp_head", "mammography_only", "ultrasound_branch"}


def test_choose_fusion_tie_picks_late_fusion():
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.6, 0.9])
    fusion, _, _ = _oof(scores, scores.copy(), y)
    assert fusion == "late_fusion"


def test_choose_fusion_skips_untested_pairs():
    y = np.array([0, 0, 1, 1, 1])
    stacking = np.array([0.1, 0.2, 0.8, 0.9, np.nan])
    _, _, metrics = _oof(stacking, np.array([0.2, 0.1, 0.9, 0.8, 0.5]), y)
    assert metrics["stacking"]["n"] == 4
    assert metrics["late_fusion"]["n"] == 5


def test_stacking_params_shrink_folds_for_few_mammograms(tmp_path):
    config = TrainRunConfig(work_dir=tmp_path / "w", data_dir=tmp_path / "d", n_estimators=7)
    assert stacking_params_for(config, 60)["cv"] == 5
    assert stacking_params_for(config, 12)["cv"] == 3
    assert stacking_params_for(config, 4)["cv"] == 2
    assert stacking_params_for(config, 4)["calibration_cv"] == 2
    assert stacking_params_for(config, 12)["n_estimators"] == 7


def test_write_csv_read_predictions_roundtrip(tmp_path):
    path = write_csv(tmp_path / "p.csv", {"case_id": ["a", "b"], "y": [0, 1], "score": [0.25, np.nan]})
    data = read_predictions(path)
    assert data["case_id"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(data["y"], [0.0, 1.0])
    assert data["score"][0] == pytest.approx(0.25)
    assert np.isnan(data["score"][1])


def test_write_csv_raises_on_unequal_columns(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        write_csv(tmp_path / "p.csv", {"a": [1, 2], "b": [1]})


def test_metric_row_matches_sklearn_auc():
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 30)
    score = np.clip(0.5 * y + rng.normal(0.25, 0.25, size=y.size), 0, 1)
    row = metric_row(y, score, threshold=0.5, groups=np.arange(y.size) // 2, n_boot=200)
    assert row.auc == pytest.approx(roc_auc_score(y, score))
    assert row.delong_low < row.auc < row.delong_high
    assert row.bootstrap_low < row.auc < row.bootstrap_high
    assert row.n == 60
    assert row.n_positive == 30
    assert 0 <= row.brier <= 1


def test_metric_row_raises_on_one_class():
    with pytest.raises(MetricInputError):
        metric_row(np.zeros(5, dtype=int), np.linspace(0, 1, 5), 0.5)


def test_roc_points_thinned_and_bounded():
    y = np.array([0, 1] * 200)
    score = np.linspace(0, 1, y.size)
    points = roc_points(y, score, max_points=50)
    assert len(points["fpr"]) <= 50
    assert points["fpr"][0] == 0.0
    assert points["tpr"][-1] == 1.0


def test_format_table_shows_n_and_intervals():
    y = np.array([0, 1] * 10)
    score = np.linspace(0, 1, 20)
    row = ReportRow("model A", "data B", metric_row(y, score, 0.5, n_boot=100), "mpmmu train")
    lines = format_table([row, ReportRow("model C", "data D", None, "mpmmu train")])
    assert lines[2].startswith("| model A | data B | 20 (10) |")
    assert f"{row.metrics.delong_low:.3f}-{row.metrics.delong_high:.3f}" in lines[2]
    assert "not computed" in lines[3]


def test_train_command_lists_non_default_settings():
    config = {"epochs": 6, "mammography_epochs": 15, "patience": 3, "freeze_stages": 3, "attention": "none", "synthetic": None}
    command = train_command(config)
    assert command.startswith("mpmmu train --epochs 6 --mammography-epochs 15")
    assert "--freeze-stages 3" in command
    assert "--attention none" in command
    assert "--synthetic" not in command


def test_train_command_lists_attention_stages_only_when_moved():
    base = {"epochs": 6, "mammography_epochs": 15}

    assert "--attention-stages" not in train_command({**base, "attention_stages": ["head"]})
    assert "--attention-stages 4,6,head" in train_command({**base, "attention_stages": [4, 6, "head"]})
    assert "--attention-stages" not in train_command({**base, "attention": "none", "attention_stages": [6]})
