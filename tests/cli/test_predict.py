"""``mpmmu predict`` on a tiny trained bundle: JSON fields, overlays, reports and manifests."""

from __future__ import annotations

import csv
import json

import pytest

from mpmmu import RESEARCH_USE_STATEMENT
from mpmmu.cli import main
from mpmmu.cli.predict import format_report, prediction_to_dict
from mpmmu.data import format_roi, read_manifest
from mpmmu.records import Prediction


@pytest.fixture(scope="module")
def case(tiny_bundle_dir):
    rows = read_manifest(tiny_bundle_dir.parent / "data" / "manifest.csv")
    return next(row for row in rows if row.split == "test")


def test_predict_json_has_required_fields(tiny_bundle_dir, case, tmp_path, capsys):
    status = main(
        [
            "predict",
            "--mammogram", str(case.mammogram_path),
            "--ultrasound", str(case.ultrasound_path),
            "--mammogram-roi", format_roi(case.mammogram_roi),
            "--ultrasound-roi", format_roi(case.ultrasound_roi),
            "--bundle", str(tiny_bundle_dir),
            "--heatmap-dir", str(tmp_path),
            "--device", "cpu",
            "--json",
        ]
    )

    output = json.loads(capsys.readouterr().out)
    assert status == 0
    for key in ("p_malignant", "p_mammography", "p_ultrasound", "votes", "threshold", "model_version"):
        assert key in output, key
    assert 0.0 <= output["p_malignant"] <= 1.0
    assert set(output["votes"]) == {"logistic_regression", "svm", "random_forest", "extra_trees", "meta_mlp"}
    assert output["model_version"].startswith("mpmmu-")
    assert output["roi_used"] == {"mammography": True, "ultrasound": True}
    for modality, image_path in (("mammography", case.mammogram_path), ("ultrasound", case.ultrasound_path)):
        assert (tmp_path / f"{image_path.stem}-{modality}-gradcam.png").is_file()
        assert output["heatmaps"][modality].endswith(f"{modality}-gradcam.png")


def test_predict_ultrasound_only_says_whole_image(tiny_bundle_dir, case, tmp_path, capsys):
    status = main(
        [
            "predict",
            "--ultrasound", str(case.ultrasound_path),
            "--bundle", str(tiny_bundle_dir),
            "--heatmap-dir", str(tmp_path),
        ]
    )

    output = capsys.readouterr().out
    assert status == 0
    assert "no lesion box given for the ultrasound, whole image used" in output
    assert "ultrasound-only model answered" in output
    assert "mammography   not given" in output
    assert RESEARCH_USE_STATEMENT in output
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"{case.ultrasound_path.stem}-ultrasound-gradcam.png"]


def test_predict_without_images_exits_2(tiny_bundle_dir, capsys):
    status = main(["predict", "--bundle", str(tiny_bundle_dir)])

    assert status == 2
    assert "no image given" in capsys.readouterr().err


def test_predict_bad_roi_exits_2(tiny_bundle_dir, case, capsys):
    status = main(
        ["predict", "--ultrasound", str(case.ultrasound_path), "--ultrasound-roi", "1,2,3", "--bundle", str(tiny_bundle_dir)]
    )

    assert status == 2
    assert "ROI must be four integers" in capsys.readouterr().err


@pytest.mark.parametrize(("device", "message"), [("foo", "invalid device 'foo'"), ("meta", "device meta is not supported")])
def test_predict_bad_device_exits_2(tiny_bundle_dir, case, capsys, device, message):
    status = main(["predict", "--ultrasound", str(case.ultrasound_path), "--device", device, "--bundle", str(tiny_bundle_dir)])

    assert status == 2
    assert message in capsys.readouterr().err


def test_predict_heatmap_dir_is_file_exits_2(tiny_bundle_dir, case, tmp_path, capsys):
    not_a_folder = tmp_path / "cases.csv"
    not_a_folder.write_text("x\n")

    status = main([
        "predict", "--ultrasound", str(case.ultrasound_path), "--heatmap-dir", str(not_a_folder), "--bundle", str(tiny_bundle_dir),
    ])

    assert status == 2
    assert f"cannot use {not_a_folder} as the heatmap folder" in capsys.readouterr().err


def test_predict_missing_bundle_exits_2(case, tmp_path, capsys):
    status = main(["predict", "--ultrasound", str(case.ultrasound_path), "--bundle", str(tmp_path / "none")])

    assert status == 2
    assert "no model bundle at" in capsys.readouterr().err


def test_predict_manifest_writes_csv(tiny_bundle_dir, tmp_path, capsys):
    manifest = tiny_bundle_dir.parent / "data" / "manifest.csv"
    out = tmp_path / "predictions.csv"

    status = main(["predict", "--manifest", str(manifest), "--out", str(out), "--bundle", str(tiny_bundle_dir)])

    with open(out, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert status == 0
    assert len(table) == len(read_manifest(manifest))
    assert all(record["error"] == "" for record in table)
    assert all(0.0 <= float(record["p_malignant"]) <= 1.0 for record in table)
    assert {record["predicted_label"] for record in table} <= {"benign", "malignant"}
    assert f"scored {len(table)} of {len(table)} cases" in capsys.readouterr().out


def test_format_report_states_pseudo_pair_caveat():
    prediction = Prediction(
        p_malignant=0.8,
        p_mammography=0.6,
        p_ultrasound=0.9,
        votes={"logistic_regression": 0.7, "meta_mlp": 0.8},
        threshold=0.5,
        fusion="stacking",
        agreement=1.0,
        model_version="mpmmu-000000000000",
        device="cpu (2 threads)",
        timings={},
        pseudo_paired_training=True,
    )
    metadata = {"training_data": {"caveat": "Trained on class-matched pseudo-pairs."}}

    report = format_report(prediction, {}, metadata)

    assert "p_malignant   0.800 (malignant at threshold 0.500)" in report
    assert "note: Trained on class-matched pseudo-pairs." in report
    assert report.endswith(RESEARCH_USE_STATEMENT)


def _late_fusion_prediction(**overrides) -> Prediction:
    fields = dict(
        p_malignant=0.369,
        p_mammography=0.3,
        p_ultrasound=0.5,
        votes={"logistic_regression": 0.1, "svm": 0.3, "random_forest": 0.2, "extra_trees": 0.4, "meta_mlp": 0.212},
        threshold=0.343,
        fusion="late_fusion",
        agreement=0.5,
        model_version="mpmmu-000000000000",
        device="cpu (2 threads)",
        timings={},
        pseudo_paired_training=False,
        votes_model="stacking",
        votes_threshold=0.248,
    )
    fields.update(overrides)
    return Prediction(**fields)


LATE_FUSION_METADATA = {"fusion": {"chosen": "late_fusion", "validation_auc": {"late_fusion": 0.876, "stacking": 0.558}}}


def test_format_report_labels_stacking_votes_as_comparison():
    report = format_report(_late_fusion_prediction(), {}, LATE_FUSION_METADATA)

    assert "learners of the stacking ensemble, shown for comparison" in report
    assert "the answer comes from late fusion, which had the higher validation AUC" in report
    assert "50% of the stacking base learners give the answer's class" in report
    assert "stacking threshold (0.248)" in report
    assert "on the side of the answer" not in report


def test_format_report_explains_threshold_and_fusion_choice():
    report = format_report(_late_fusion_prediction(), {}, LATE_FUSION_METADATA)

    assert "threshold     0.343 is the late fusion model's" in report
    assert "each model has its own threshold, chosen on validation data by Youden's J" in report
    assert "validation AUC: late fusion 0.876, stacking 0.558" in report


def test_format_report_single_model_votes_unlabelled():
    prediction = _late_fusion_prediction(fusion="ultrasound_only", votes_model="ultrasound_only", threshold=0.185, votes_threshold=0.185)

    report = format_report(prediction, {}, LATE_FUSION_METADATA)

    assert "threshold     0.185 is the ultrasound only model's" in report
    assert "shown for comparison" not in report
    assert "of the base learners on the same side of the threshold as the answer" in report
    assert "validation AUC" not in report


def test_prediction_to_dict_names_votes_model():
    record = json.loads(json.dumps(prediction_to_dict(_late_fusion_prediction())))

    assert record["answered_by"] == "late_fusion"
    assert record["votes_model"] == "stacking"
    assert record["votes_threshold"] == pytest.approx(0.248)
    assert record["threshold_model"] == "late_fusion"
    assert record["threshold_method"] == "youden"
