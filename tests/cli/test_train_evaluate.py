"""End-to-end: ``mpmmu train --synthetic`` then ``mpmmu evaluate`` on the run, in a tmp dir."""

from __future__ import annotations

import json
import shutil

import pytest

from mpmmu.cli import main

# Tiny settings: 64 px inputs, random weights, one epoch, small forests. 60 cases per label
# leave 12 per label in the validation split, enough for 2-fold cross-fitting of stage 2.
TRAIN_ARGS = [
    "train", "--synthetic", "60", "--epochs", "1", "--mammography-epochs", "1", "--image-size", "64",
    "--no-pretrained", "--threads", "1", "--pairing-seeds", "2", "--stage2-folds", "2", "--trees", "5",
    "--attention-stages", "5,head",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    work, bundle = root / "work", root / "bundle"
    status = main([*TRAIN_ARGS, "--work", str(work), "--out", str(bundle), "--image-cache", str(root / "cache")])
    assert status == 0
    return work, bundle


@pytest.mark.parametrize(
    ("stages", "backbone", "message"),
    [
        ("9", "efficientnet_lite0", "stage index 0..6, got 9"),
        ("5", "resnet18", "stage index 0..3, got 5"),
        ("3,head", "resnet18", "names the same place twice"),
        ("4,6 --attention none", "efficientnet_lite0", "has no effect with --attention none"),
    ],
)
def test_train_invalid_attention_stages_exits_2(tmp_path, capsys, stages, backbone, message):
    stage_args = ["--attention-stages", *stages.split(" ")]
    status = main([*TRAIN_ARGS[:-2], *stage_args, "--backbone", backbone, "--work", str(tmp_path / "work")])

    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_train_too_few_patients_for_stage2_exits_2(tmp_path, capsys):
    # 30 cases per label leave too few validation patients of one class for 2-fold cross-fitting.
    args = ["train", "--synthetic", "30", "--image-size", "64", "--epochs", "1", "--mammography-epochs", "1",
            "--no-pretrained", "--threads", "1", "--trees", "5", "--pairing-seeds", "1", "--stage2-folds", "2"]

    status = main([*args, "--work", str(tmp_path / "work"), "--image-cache", str(tmp_path / "cache")])

    assert status == 2
    assert "stage 2 could not be fitted even with 2 inner folds" in capsys.readouterr().err


def test_train_synthetic_bundle_loads(trained_run):
    from mpmmu.pipeline import Bundle

    work, bundle_dir = trained_run
    bundle = Bundle.load(bundle_dir)
    assert set(bundle.branches) == {"mammography", "ultrasound"}
    assert bundle.fusion in ("stacking", "late_fusion")
    assert bundle.pseudo_paired_training
    metrics = bundle.metadata["metrics"]
    assert "ultrasound_branch" in metrics["test"]["ultrasound_images"]
    assert metrics["roc"]["pairs_ultrasound_seed0"]["stacking"]["fpr"][0] == 0.0
    assert set(bundle.metadata["manifest_sha256"]) == {"mammography", "ultrasound"}
    for branch in bundle.branches.values():
        assert branch.attention_stages == (5, "head")
    assert set(bundle.single_modality.values()) <= {"ensemble", "branch"}
    for modality, answer in bundle.single_modality.items():
        chosen = f"{modality}_branch" if answer == "branch" else f"{modality}_only"
        assert chosen in bundle.thresholds


def test_train_synthetic_writes_predictions(trained_run):
    work, _ = trained_run
    predictions = work / "predictions"
    for name in ("test_ultrasound", "test_mammography", "val_pairs_oof", "test_pairs_ultrasound_seed1", "test_pairs_mammogram_seed0"):
        assert (predictions / f"{name}.csv").is_file(), name
    summary = json.loads((work / "run.json").read_text())
    assert summary["stage2"]["fusion"] in ("stacking", "late_fusion")
    assert set(summary["stage1"]) == {"mammography", "ultrasound"}


def test_evaluate_writes_rows_with_n_and_ci(trained_run, tmp_path, capsys):
    work, bundle_dir = trained_run
    out = tmp_path / "RESULTS.md"
    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--out", str(out)])
    assert status == 0
    text = out.read_text()
    assert "upper bound" in text
    table = [line for line in text.splitlines() if line.startswith("| ultrasound branch (ECA) alone | BUS-BRA lesion box")]
    assert len(table) == 1
    cells = [cell.strip() for cell in table[0].split("|")]
    n_cell, ci_cell = cells[3], cells[5]
    assert n_cell.split(" ")[0].isdigit()
    assert "-" in ci_cell
    assert "fused, stacking (MPM-MU)" in text
    assert "This run used generated synthetic data" in text
    # Synthetic numbers are not judged against the targets set for the real data.
    assert "## Targets" not in text
    assert "mpmmu train --synthetic 60" in text
    assert str(out) in capsys.readouterr().out


def test_evaluate_missing_run_exits_2(tmp_path, capsys):
    status = main(["evaluate", "--bundle", str(tmp_path), "--work", str(tmp_path), "--out", str(tmp_path / "r.md")])
    assert status == 2
    assert "run.json not found" in capsys.readouterr().err


def test_evaluate_adds_ablation_rows(trained_run, tmp_path):
    work, bundle_dir = trained_run
    ablation = shutil.copytree(work, tmp_path / "ablation")
    out = tmp_path / "RESULTS.md"
    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--ablation-work", str(ablation), "--out", str(out)])
    assert status == 0
    text = out.read_text()
    assert "| ultrasound branch (ECA) alone, attention after 5,head | BUS-BRA lesion box" in text
    assert "| fused, stacking (MPM-MU), attention after 5,head | test pseudo-pairs" in text


def test_evaluate_writes_placement_table(trained_run, tmp_path):
    work, bundle_dir = trained_run
    out = tmp_path / "RESULTS.md"
    placement = shutil.copytree(work, tmp_path / "placement")
    status = main([
        "evaluate", "--bundle", str(bundle_dir), "--work", str(work),
        "--placement-work", str(placement), "--placement-work", str(placement), "--placement-work", str(work),
        "--out", str(out),
    ])
    assert status == 0
    text = out.read_text()
    section = text.split("## Where the attention sits (placement ablation)")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ultrasound | 5,head |")]
    # The main run and its copy; the repeated copy and the main run passed again count once.
    assert len(rows) == 2
    cells = [cell.strip() for cell in rows[0].split("|")]
    assert 0.0 <= float(cells[5]) <= 1.0
    assert 0.0 <= float(cells[6]) <= 1.0
    assert "--attention-stages 5,head" in cells[9]
    assert "| mammography | 5,head | mini-MIAS lesion squares, woman-wise held-out test |" in section


def test_evaluate_placement_work_without_run_exits_2(trained_run, tmp_path, capsys):
    work, bundle_dir = trained_run
    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--placement-work", str(tmp_path), "--out", str(tmp_path / "r.md")])
    assert status == 2
    assert "neither run.json nor cv_run.json found" in capsys.readouterr().err


def test_evaluate_adds_hand_written_notes(trained_run, tmp_path):
    work, bundle_dir = trained_run
    notes, out = tmp_path / "notes.md", tmp_path / "RESULTS.md"
    notes.write_text("The learning rate was changed after the first test numbers.\n", encoding="utf-8")

    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--notes", str(notes), "--out", str(out)])

    assert status == 0
    section = out.read_text().split("## Notes on these runs (written by hand, not computed)")[1]
    assert "The learning rate was changed after the first test numbers." in section


def test_evaluate_raises_bundle_of_another_run(trained_run, tmp_path, capsys):
    work, bundle_dir = trained_run
    other = shutil.copytree(bundle_dir, tmp_path / "other")
    metadata = json.loads((other / "metadata.json").read_text())
    metadata["model_version"] = "mpmmu-000000000000"
    (other / "metadata.json").write_text(json.dumps(metadata))

    status = main(["evaluate", "--bundle", str(other), "--work", str(work), "--out", str(tmp_path / "r.md")])

    assert status == 2
    assert "was not written by the run" in capsys.readouterr().err


def test_evaluate_raises_missing_cv_work(trained_run, tmp_path, capsys):
    work, bundle_dir = trained_run
    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--cv-work", str(tmp_path), "--out", str(tmp_path / "r.md")])

    assert status == 2
    assert "no predictions/cv_mammography.csv" in capsys.readouterr().err


def test_evaluate_raises_out_folder(trained_run, tmp_path, capsys):
    work, bundle_dir = trained_run
    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--out", str(tmp_path)])

    assert status == 2
    assert "is a folder" in capsys.readouterr().err


def test_evaluate_missing_notes_file_exits_2(trained_run, tmp_path, capsys):
    work, bundle_dir = trained_run
    status = main(["evaluate", "--bundle", str(bundle_dir), "--work", str(work), "--notes", str(tmp_path / "none.md"), "--out", str(tmp_path / "r.md")])

    assert status == 2
    assert "cannot read the notes file" in capsys.readouterr().err
