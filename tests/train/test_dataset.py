"""Cached stage-1 dataset: decode once, disk cache keyed by content and settings, tensors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mpmmu.train.augment import ULTRASOUND_AUGMENT
from mpmmu.train.dataset import CachedImageDataset, precompute_cache, train_view_size
from stage1_fixtures import CountingLoader, Row, TinyPreprocessConfig, make_rows


@pytest.fixture()
def rows(tmp_path: Path) -> list[Row]:
    folder = tmp_path / "images"
    folder.mkdir()
    return make_rows(folder, 6, "ultrasound", seed=1, prefix="us")


def test_dataset_serves_normalised_tensors(rows: list[Row], tmp_path: Path) -> None:
    dataset = CachedImageDataset(rows, "ultrasound", TinyPreprocessConfig(size=32), tmp_path / "cache", loader=CountingLoader())
    image, label = dataset[1]
    assert len(dataset) == 6
    assert image.shape == (3, 32, 32)
    assert image.dtype == torch.float32
    assert image.min() >= -1.0
    assert image.max() <= 1.0
    assert float(label) == 1.0
    assert dataset.labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_dataset_decodes_each_image_once(rows: list[Row], tmp_path: Path) -> None:
    loader = CountingLoader()
    config = TinyPreprocessConfig(size=32)
    CachedImageDataset(rows, "ultrasound", config, tmp_path / "cache", ULTRASOUND_AUGMENT, loader=loader)
    assert loader.calls == 6
    CachedImageDataset(rows, "ultrasound", config, tmp_path / "cache", ULTRASOUND_AUGMENT, loader=loader)
    assert loader.calls == 6
    files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 12
    shapes = {np.load(f).shape for f in files}
    assert shapes == {(32, 32), (train_view_size(32), train_view_size(32))}
    assert {np.load(f).dtype for f in files} == {np.dtype(np.uint8)}


def test_dataset_cache_key_follows_settings(rows: list[Row], tmp_path: Path) -> None:
    loader = CountingLoader()
    CachedImageDataset(rows[:2], "ultrasound", TinyPreprocessConfig(size=32), tmp_path / "cache", loader=loader)
    CachedImageDataset(rows[:2], "ultrasound", TinyPreprocessConfig(size=32, mean=(0.4,) * 3), tmp_path / "cache", loader=loader)
    assert loader.calls == 4
    roi_rows = [replace(row, ultrasound_roi=(0, 0, 20, 20)) for row in rows[:2]]
    CachedImageDataset(roi_rows, "ultrasound", TinyPreprocessConfig(size=32), tmp_path / "cache", loader=loader)
    assert loader.calls == 6


def test_dataset_cache_notices_changed_file(rows: list[Row], tmp_path: Path) -> None:
    loader = CountingLoader()
    config = TinyPreprocessConfig(size=32)
    first = CachedImageDataset(rows[:1], "ultrasound", config, tmp_path / "cache", loader=loader)
    np.save(rows[0].ultrasound_path, np.ones((48, 48), dtype=np.float32))
    second = CachedImageDataset(rows[:1], "ultrasound", config, tmp_path / "cache", loader=loader)
    assert loader.calls == 2
    assert not torch.equal(first.display(0), second.display(0))


def test_dataset_augmentation_depends_on_epoch(rows: list[Row], tmp_path: Path) -> None:
    dataset = CachedImageDataset(rows, "ultrasound", TinyPreprocessConfig(size=32), tmp_path / "cache", ULTRASOUND_AUGMENT, loader=CountingLoader())
    first, _ = dataset[0]
    again, _ = dataset[0]
    dataset.set_epoch(1)
    later, _ = dataset[0]
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, later)


def test_precompute_cache_fills_both_views(rows: list[Row], tmp_path: Path) -> None:
    loader = CountingLoader()
    config = TinyPreprocessConfig(size=32)
    assert precompute_cache(rows, "ultrasound", config, tmp_path / "cache", loader=loader, progress=False) == 6
    assert precompute_cache(rows, "ultrasound", config, tmp_path / "cache", loader=loader, progress=False) == 0
    CachedImageDataset(rows, "ultrasound", config, tmp_path / "cache", ULTRASOUND_AUGMENT, loader=loader)
    assert loader.calls == 6


def test_dataset_raises_missing_modality(rows: list[Row], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="case 'us000' has no mammography image"):
        CachedImageDataset(rows, "mammography", TinyPreprocessConfig(size=32), tmp_path / "cache", loader=CountingLoader())


def test_dataset_raises_missing_label(rows: list[Row], tmp_path: Path) -> None:
    unlabelled = [replace(rows[0], label=None)]
    with pytest.raises(ValueError, match="case 'us000' has label None"):
        CachedImageDataset(unlabelled, "ultrasound", TinyPreprocessConfig(size=32), tmp_path / "cache", loader=CountingLoader())


@pytest.mark.parametrize("modality", ["mammography", "ultrasound"])
def test_dataset_matches_preprocess_tensor(modality: str, tmp_path: Path) -> None:
    from mpmmu.data import read_manifest
    from mpmmu.data.synthetic import write_synthetic_dataset
    from mpmmu.io import read_image
    from mpmmu.preprocess import PreprocessConfig, preprocess

    rows = read_manifest(write_synthetic_dataset(tmp_path / "synthetic", n_per_class=2, seed=3, size=128))
    config = PreprocessConfig(size=64)
    dataset = CachedImageDataset(rows, modality, config, tmp_path / "cache")
    for index, row in enumerate(rows):
        path = row.mammogram_path if modality == "mammography" else row.ultrasound_path
        roi = row.mammogram_roi if modality == "mammography" else row.ultrasound_roi
        expected = preprocess(read_image(path), modality, roi, config).tensor
        # The cache stores uint8 display pixels: at most half a grey level off, / std 0.5.
        np.testing.assert_allclose(dataset[index][0].numpy(), expected, atol=1.01 / 255)
