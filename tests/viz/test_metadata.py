"""Model-card texts rendered from bundle metadata through the message catalogue."""

from __future__ import annotations

import pytest

from mpmmu.viz import fusion_reason_text, single_modality_names, training_data_text

METADATA = {
    "fusion": {
        "chosen": "late_fusion",
        "reason": "highest validation AUC (late_fusion 0.876, stacking 0.558)",
        "validation_auc": {"late_fusion": 0.8762, "stacking": 0.5578},
    },
    "training_data": {
        "description": "Branches fine-tuned on the train split of BUS-BRA and mini-MIAS.",
        "images_per_split": {
            "mammography": {"train": 83, "val": 24, "test": 10},
            "ultrasound": {"train": 1314, "val": 374, "test": 187},
        },
        "stage2_pairs": {"n_pairs": 374.0},
        "pseudo_paired": True,
        "seed": 0,
    },
}


def test_fusion_reason_text_from_numbers():
    assert fusion_reason_text(METADATA, "en") == (
        "highest validation AUC (late fusion of both branches 0.876; stacking ensemble of fused features 0.558)"
    )


def test_fusion_reason_text_chinese_has_no_english():
    text = fusion_reason_text(METADATA, "zh-CN")

    assert "0.876" in text
    assert "0.558" in text
    assert "late_fusion" not in text
    assert "highest" not in text


def test_fusion_reason_text_without_aucs():
    assert fusion_reason_text({"fusion": {"chosen": "stacking", "reason": "only one"}}, "zh-CN") == "—"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_training_data_text_fills_counts(lang):
    text = training_data_text(METADATA, lang)

    for number in ("83", "1314", "24", "374"):
        assert number in text
    assert "BUS-BRA" not in text


def test_training_data_text_chinese_has_no_english():
    text = training_data_text(METADATA, "zh-CN")

    assert "Branches" not in text
    assert "split" not in text


def test_training_data_text_missing_counts_returns_none():
    metadata = {"training_data": {"description": "x", "seed": 0, "pseudo_paired": True}}

    assert training_data_text(metadata, "en") is None


def test_training_data_text_true_pairs_omits_pseudo_pairs():
    metadata = {"training_data": {**METADATA["training_data"], "pseudo_paired": False}}

    text = training_data_text(metadata, "en")

    assert "1314 ultrasound images" in text
    assert "pseudo-pairs" not in text


def test_single_modality_names_follow_bundle_choice():
    models = {"mammography": "mammography_branch", "ultrasound": "ultrasound_only"}

    assert single_modality_names(models, "en") == {
        "single_mammography": "mammography branch alone",
        "single_ultrasound": "ultrasound-only model",
    }
    assert single_modality_names(models, "zh-CN")["single_mammography"] == "仅乳腺X线分支"


def test_single_modality_names_for_ensembles():
    models = {"mammography": "mammography_only", "ultrasound": "ultrasound_only"}

    assert single_modality_names(models, "en")["single_mammography"] == "mammography-only model"
