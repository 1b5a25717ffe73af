"""Model bundle: save/load round trip, tamper detection, version checks, creation checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mpmmu.ensemble.fusion import LateFusion, fuse_features
from mpmmu.ensemble.stacking import StackingEnsemble
from mpmmu.errors import BundleError
from mpmmu.models import build_branch
from mpmmu.pipeline import Bundle, check_versions
from mpmmu.pipeline.bundle import content_version
from mpmmu.preprocess import PreprocessConfig

SMALL_STACKING = {"cv": 3, "calibration_cv": 2, "n_estimators": 5, "random_state": 0}


def _parts() -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    branches = {m: build_branch(m, pretrained=False).eval() for m in ("mammography", "ultrasound")}
    n = 24
    y = np.tile([0, 1], n // 2)
    features = {m: rng.standard_normal((n, b.feature_dim)) + y[:, None] * 0.5 for m, b in branches.items()}
    groups = np.arange(n)
    ensembles = {
        "stacking": StackingEnsemble(**SMALL_STACKING).fit(
            fuse_features(features["mammography"], features["ultrasound"]), y, groups
        ),
        "late_fusion": LateFusion().fit(rng.uniform(0.1, 0.9, (n, 2)), y),
        "ultrasound_only": StackingEnsemble(**SMALL_STACKING).fit(features["ultrasound"], y, groups),
    }
    return {
        "branches": branches,
        "ensembles": ensembles,
        "preprocess_configs": {m: PreprocessConfig(size=64) for m in branches},
        "thresholds": {"stacking": 0.4, "late_fusion": 0.5, "ultrasound_only": 0.45},
        "fusion": "stacking",
        "validation_auc": {"stacking": 0.8, "late_fusion": 0.7},
        "metrics": {"test_auc": np.float64(0.75)},
        "training_data": {"description": "random features", "pseudo_paired": True},
        "manifest_sha256": {"pairs": "0" * 64},
    }


@pytest.fixture(scope="module")
def parts() -> dict:
    """Untrained branches and small stage-2 models; tests copy what they change."""
    return _parts()


@pytest.fixture(scope="module")
def saved_bundle(tmp_path_factory, parts) -> Path:
    directory = tmp_path_factory.mktemp("bundle")
    Bundle.create(**parts).save(directory)
    return directory


@pytest.fixture
def bundle_copy(saved_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(saved_bundle, tmp_path / "copy"))


def test_bundle_round_trip_restores_weights_and_ensembles(saved_bundle, parts):
    loaded = Bundle.load(saved_bundle)

    for modality, branch in parts["branches"].items():
        expected = branch.state_dict()
        for key, tensor in loaded.branches[modality].state_dict().items():
            torch.testing.assert_close(tensor, expected[key], msg=f"{modality} {key}")
        assert not loaded.branches[modality].training
    X = np.random.default_rng(1).standard_normal((3, 2 * parts["branches"]["mammography"].feature_dim))
    np.testing.assert_allclose(
        loaded.ensembles["stacking"].predict_proba(X), parts["ensembles"]["stacking"].predict_proba(X)
    )
    assert set(loaded.ensembles) == {"stacking", "late_fusion", "ultrasound_only"}


def test_bundle_metadata_has_required_fields(saved_bundle):
    metadata = json.loads((saved_bundle / "metadata.json").read_text())

    assert metadata["model_version"].startswith("mpmmu-")
    assert metadata["class_names"] == ["benign", "malignant"]
    assert metadata["thresholds"]["stacking"] == 0.4
    assert metadata["fusion"]["chosen"] == "stacking"
    assert "stacking 0.800" in metadata["fusion"]["reason"]
    assert metadata["input_size"] == {"mammography": 64, "ultrasound": 64}
    assert metadata["preprocess"]["ultrasound"]["size"] == 64
    assert metadata["branches"]["mammography"]["attention"] == "cbam"
    assert metadata["training_data"]["pseudo_paired"] is True
    assert "pseudo-pairs" in metadata["training_data"]["caveat"]
    assert metadata["manifest_sha256"] == {"pairs": "0" * 64}
    assert metadata["metrics"]["test_auc"] == 0.75
    for package in ("torch", "timm", "scikit-learn", "skops", "mpmmu"):
        assert package in metadata["versions"]
    assert set(metadata["files"]) == {
        "mammography.safetensors",
        "ultrasound.safetensors",
        "ensembles/stacking.skops",
        "ensembles/late_fusion.skops",
        "ensembles/ultrasound_only.skops",
    }
    assert "created" in metadata


def test_bundle_model_version_follows_thresholds(saved_bundle, bundle_copy):
    path = bundle_copy / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["thresholds"]["stacking"] = 0.3
    changed = content_version(metadata)

    assert Bundle.load(saved_bundle).model_version == metadata["model_version"]
    assert changed != metadata["model_version"]


def test_bundle_load_raises_edited_metadata(bundle_copy):
    path = bundle_copy / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["thresholds"]["stacking"] = 0.01
    path.write_text(json.dumps(metadata))

    with pytest.raises(BundleError, match="metadata.json was altered: its model_version"):
        Bundle.load(bundle_copy)


@pytest.mark.parametrize("name", ["ultrasound.safetensors", "ensembles/stacking.skops"])
def test_bundle_load_raises_tampered_file(bundle_copy, name):
    path = bundle_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(BundleError, match=f"bundle file {name} has SHA-256 [0-9a-f]{{64}}, metadata.json expects [0-9a-f]{{64}}"):
        Bundle.load(bundle_copy)


def test_bundle_load_raises_missing_file(bundle_copy):
    (bundle_copy / "mammography.safetensors").unlink()

    with pytest.raises(BundleError, match="mammography.safetensors is missing"):
        Bundle.load(bundle_copy)


def test_bundle_load_raises_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="no model bundle at .*metadata.json is missing"):
        Bundle.load(tmp_path / "nowhere")


def test_bundle_load_raises_sklearn_version_mismatch(bundle_copy):
    path = bundle_copy / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["versions"]["scikit-learn"] = "1.2.0"
    path.write_text(json.dumps(metadata))

    with pytest.raises(BundleError, match=r"saved with scikit-learn 1\.2\.0 but scikit-learn .* is installed.*Install scikit-learn==1\.2\.0"):
        Bundle.load(bundle_copy)


def test_bundle_load_warns_torch_version_mismatch(bundle_copy):
    path = bundle_copy / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["versions"]["torch"] = "1.0.0"
    path.write_text(json.dumps(metadata))

    with pytest.warns(UserWarning, match="saved with torch 1.0.0"):
        bundle = Bundle.load(bundle_copy)

    assert set(bundle.branches) == {"mammography", "ultrasound"}


def test_check_versions_accepts_patch_difference():
    saved = {"scikit-learn": "1.9.0", "skops": "0.16.0", "torch": "2.14.1", "timm": "1.0.31"}
    installed = {"scikit-learn": "1.9.7", "skops": "0.16.2", "torch": "2.14.1", "timm": "1.0.31"}

    assert check_versions(saved, installed) == []


def test_check_versions_raises_skops_minor_difference():
    saved = {"scikit-learn": "1.9.0", "skops": "0.15.0"}
    installed = {"scikit-learn": "1.9.0", "skops": "0.16.0"}

    with pytest.raises(BundleError, match="skops 0.15.0 but skops 0.16.0"):
        check_versions(saved, installed)


def test_bundle_save_float16_halves_weights(tmp_path, saved_bundle, parts):
    bundle = Bundle.create(**parts).save(tmp_path / "half", weights_dtype="float16")
    loaded = Bundle.load(tmp_path / "half")

    full_size = (saved_bundle / "ultrasound.safetensors").stat().st_size
    half_size = (tmp_path / "half" / "ultrasound.safetensors").stat().st_size
    assert half_size < 0.6 * full_size
    assert bundle.metadata["weights_dtype"] == "float16"
    weight = loaded.branches["ultrasound"].classifier.weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, parts["branches"]["ultrasound"].classifier.weight, atol=1e-3, rtol=1e-3)


def test_bundle_create_raises_missing_threshold(parts):
    parts = dict(parts, thresholds={"stacking": 0.4, "ultrasound_only": 0.45})

    with pytest.raises(BundleError, match=r"no operating threshold for \['late_fusion'\]"):
        Bundle.create(**parts)


def test_bundle_create_raises_unavailable_fusion(parts):
    ensembles = {name: model for name, model in parts["ensembles"].items() if name != "late_fusion"}
    parts = dict(parts, fusion="late_fusion", ensembles=ensembles)

    with pytest.raises(BundleError, match="fusion must be"):
        Bundle.create(**parts)


def test_bundle_save_deflates_ensembles(saved_bundle):
    import zipfile

    with zipfile.ZipFile(saved_bundle / "ensembles" / "stacking.skops") as archive:
        members = archive.infolist()

    assert members
    assert all(member.compress_type == zipfile.ZIP_DEFLATED for member in members)


def test_bundle_single_modality_defaults_to_ensembles(saved_bundle):
    loaded = Bundle.load(saved_bundle)

    assert loaded.single_modality == {"mammography": "ensemble", "ultrasound": "ensemble"}
    assert loaded.metadata["fusion"]["single_modality"] == loaded.single_modality
    assert loaded.single_modality_models == {"mammography": "mammography_only", "ultrasound": "ultrasound_only"}


def test_bundle_single_modality_branch_round_trips(tmp_path, parts):
    parts = dict(
        parts,
        thresholds={**parts["thresholds"], "mammography_branch": 0.55},
        single_modality={"mammography": "branch"},
    )

    loaded = Bundle.create(**parts).save(tmp_path / "branch")

    assert loaded.single_modality == {"mammography": "branch", "ultrasound": "ensemble"}
    assert loaded.thresholds["mammography_branch"] == pytest.approx(0.55)
    assert loaded.single_modality_models == {"mammography": "mammography_branch", "ultrasound": "ultrasound_only"}


def test_bundle_single_modality_read_from_older_metadata(parts):
    bundle = Bundle.create(**parts)
    del bundle.metadata["fusion"]["single_modality"]

    assert bundle.single_modality == {"mammography": "ensemble", "ultrasound": "ensemble"}
    assert bundle.single_modality_models["mammography"] == "mammography_only"


@pytest.mark.parametrize(
    ("single", "message"),
    [
        ({"mammography": "branch"}, "has no 'mammography_branch' threshold"),
        ({"mammography": "forest"}, "single_modality maps"),
        ({"breast": "branch"}, "single_modality maps"),
    ],
)
def test_bundle_create_raises_bad_single_modality(parts, single, message):
    with pytest.raises(BundleError, match=message):
        Bundle.create(**dict(parts, single_modality=single))
