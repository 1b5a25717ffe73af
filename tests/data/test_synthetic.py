"""Synthetic mammogram-like and ultrasound-like cases."""

from __future__ import annotations

import numpy as np
import pytest

from mpmmu.data.manifest import read_manifest
from mpmmu.data.synthetic import (
    make_synthetic_case,
    make_synthetic_mammogram,
    make_synthetic_ultrasound,
    write_synthetic_dataset,
)


def _inside(image: np.ndarray, roi) -> np.ndarray:
    x, y, width, height = roi
    return image[y : y + height, x : x + width]


@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_make_synthetic_case_shapes_and_rois(label):
    case = make_synthetic_case(label, seed=11, size=128)

    assert case.label == label
    for image, roi in ((case.mammogram, case.mammogram_roi), (case.ultrasound, case.ultrasound_roi)):
        assert image.shape == (128, 128)
        assert image.dtype == np.float32
        assert image.min() >= 0.0
        assert image.max() <= 1.0
        x, y, width, height = roi
        assert min(x, y) >= 0
        assert min(width, height) > 0
        assert x + width <= 128
        assert y + height <= 128


def test_make_synthetic_case_reproducible_by_seed():
    first = make_synthetic_case("malignant", seed=3)
    again = make_synthetic_case("malignant", seed=3)
    other = make_synthetic_case("malignant", seed=4)

    assert np.array_equal(first.mammogram, again.mammogram)
    assert np.array_equal(first.ultrasound, again.ultrasound)
    assert first.mammogram_roi == again.mammogram_roi
    assert not np.array_equal(first.ultrasound, other.ultrasound)


def test_make_synthetic_ultrasound_lesion_is_hypoechoic():
    rng = np.random.default_rng(0)
    for label in ("benign", "malignant"):
        image, roi = make_synthetic_ultrasound(label, rng)
        x, y, width, height = roi
        core = image[y + height // 3 : y + 2 * height // 3, x + width // 3 : x + 2 * width // 3]
        assert core.mean() < 0.6 * image[40:, :].mean()


def test_make_synthetic_mammogram_lesion_is_dense():
    rng = np.random.default_rng(0)
    for label in ("benign", "malignant"):
        image, roi = make_synthetic_mammogram(label, rng)
        x, y, width, height = roi
        core = image[y + height // 3 : y + 2 * height // 3, x + width // 3 : x + 2 * width // 3]
        assert core.mean() > image[image > 0.1].mean()


def test_synthetic_ultrasound_aspect_overlaps():
    rng = np.random.default_rng(1)
    ratios = {label: [] for label in ("benign", "malignant")}
    for _ in range(40):
        for label in ratios:
            _, (_, _, width, height) = make_synthetic_ultrasound(label, rng, size=128)
            ratios[label].append(height / width)

    # Malignant masses are taller than wide on average, but the ranges overlap, so the
    # aspect ratio alone does not decide every case.
    assert np.mean(ratios["malignant"]) > np.mean(ratios["benign"]) + 0.3
    assert max(ratios["benign"]) > min(ratios["malignant"])


def test_make_synthetic_mammogram_laterality_mirrors():
    left, _ = make_synthetic_mammogram("benign", np.random.default_rng(5), laterality="L")
    right, _ = make_synthetic_mammogram("benign", np.random.default_rng(5), laterality="R")

    assert np.array_equal(left[:, ::-1], right)
    assert left[:, :64].mean() > left[:, -64:].mean()


def test_make_synthetic_mammogram_burns_label_into_background():
    plain, _ = make_synthetic_mammogram("benign", np.random.default_rng(2), burn_in_label=True)
    corner = plain[:64, -64:]

    assert (corner == 1.0).sum() >= 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"label": "unknown"}, "label must be 'benign' or 'malignant'"), ({"size": 32}, "size must be at least 64")],
)
def test_make_synthetic_ultrasound_raises_bad_argument(kwargs, match):
    arguments = {"label": "benign", "rng": np.random.default_rng(0), "size": 128, **kwargs}

    with pytest.raises(ValueError, match=match):
        make_synthetic_ultrasound(**arguments)


def test_write_synthetic_dataset_manifest(tmp_path):
    path = write_synthetic_dataset(tmp_path / "synthetic", n_per_class=5, seed=0, size=96)

    rows = read_manifest(path, check_files=True)
    text = path.read_text()

    assert len(rows) == 10
    assert sum(row.label == "malignant" for row in rows) == 5
    assert {row.source for row in rows} == {"synthetic"}
    assert {row.split for row in rows} <= {"train", "val", "test"}
    assert "train" in {row.split for row in rows}
    assert all(row.mammogram_roi and row.ultrasound_roi for row in rows)
    assert "images/synthetic-0000-mammogram.png" in text
    assert str(tmp_path) not in text


def test_write_synthetic_dataset_raises_zero_cases(tmp_path):
    with pytest.raises(ValueError, match="n_per_class must be at least 1, got 0"):
        write_synthetic_dataset(tmp_path, n_per_class=0)
