"""Images of one modality, decoded and preprocessed once, cached on disk and kept in memory.

Decoding a full-size mammogram and finding the breast takes far longer than a training step, so
every image is read with :func:`mpmmu.io.read_image` and preprocessed with
:func:`mpmmu.preprocess.preprocess` once per setting. The display pixels are stored as uint8
``.npy`` files under ``<cache root>/stage1`` (``mpmmu.config.cache_root()`` by default), keyed by
the SHA-256 of the image file, the modality, the lesion box and the preprocessing settings, so a
changed file or setting never reuses a stale entry.

Two views are cached per image: one at the model input size, identical in framing to what the
pipeline feeds the model, for validation and prediction, and one at a larger size (8/7 of it,
256 px for 224 px) that the augmentation resamples from when training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mpmmu.config import cache_root
from mpmmu.train.augment import AugmentPolicy, augment_image

logger = logging.getLogger(__name__)

#: Version of the cache layout; bump it when the stored arrays change meaning.
CACHE_FORMAT = 1
#: The training view is this much larger than the model input, leaving room to zoom in.
TRAIN_VIEW_RATIO = 8 / 7

Roi = tuple[int, int, int, int]
#: Decodes one image file and returns its display pixels (float in [0, 1], (S, S) or (S, S, 3))
#: for each preprocessing configuration, in order.
ImageLoader = Callable[[Path, str, "Roi | None", Sequence[Any]], list[np.ndarray]]


class CaseRowLike(Protocol):
    """The fields of :class:`mpmmu.data.CaseRow` that training reads."""

    case_id: str
    mammogram_path: Path | None
    ultrasound_path: Path | None
    label: str | None
    mammogram_roi: Roi | None
    ultrasound_roi: Roi | None


def read_and_preprocess(path: Path, modality: str, roi: Roi | None, configs: Sequence[Any]) -> list[np.ndarray]:
    """Decode ``path`` once and return ``preprocess(...).display`` for each of ``configs``."""
    from mpmmu.io import read_image
    from mpmmu.preprocess import preprocess

    record = read_image(path)
    return [preprocess(record, modality, roi, config).display for config in configs]


def image_path(row: CaseRowLike, modality: str) -> Path | None:
    """Return the row's image path for ``modality``."""
    return row.mammogram_path if modality == "mammography" else row.ultrasound_path


def image_roi(row: CaseRowLike, modality: str) -> Roi | None:
    """Return the row's lesion box for ``modality``."""
    return row.mammogram_roi if modality == "mammography" else row.ultrasound_roi


def label_value(row: CaseRowLike) -> int:
    """Return 1 for a malignant row and 0 for a benign one.

    Raises
    ------
    ValueError
        If the label is missing or not "benign"/"malignant".
    """
    if row.label == "malignant":
        return 1
    if row.label == "benign":
        return 0
    raise ValueError(
        f"case {row.case_id!r} has label {row.label!r}; training needs 'benign' or 'malignant', "
        "so drop unlabelled rows first"
    )


def train_view_size(image_size: int) -> int:
    """Return the side of the cached training view for a model input of ``image_size``."""
    return int(round(image_size * TRAIN_VIEW_RATIO))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _to_uint8(display: np.ndarray) -> np.ndarray:
    display = np.asarray(display, dtype=np.float32)
    if display.ndim == 3 and display.shape[2] == 1:
        display = display[:, :, 0]
    if display.ndim not in (2, 3) or (display.ndim == 3 and display.shape[2] != 3):
        raise ValueError(f"display pixels must be (S, S) or (S, S, 3), got shape {display.shape}")
    return np.clip(np.rint(display * 255.0), 0, 255).astype(np.uint8)


class ImageCache:
    """Disk cache of preprocessed display pixels, one uint8 ``.npy`` file per image and setting.

    Parameters
    ----------
    cache_dir : str or pathlib.Path or None
        Folder for the files; None uses ``mpmmu.config.cache_root() / "stage1"``.
    loader : callable
        Decoder with the signature of :func:`read_and_preprocess`.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, loader: ImageLoader = read_and_preprocess) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "stage1"
        self.loader = loader
        self.decoded = 0

    def _key(self, file_sha256: str, modality: str, roi: Roi | None, config: Any) -> str:
        description = {
            "format": CACHE_FORMAT,
            "image": file_sha256,
            "modality": modality,
            "roi": list(roi) if roi is not None else None,
            "preprocess": config.to_dict(),
        }
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.npy"

    def get(self, path: Path, modality: str, roi: Roi | None, configs: Sequence[Any]) -> list[np.ndarray]:
        """Return uint8 display pixels of ``path`` for each of ``configs``, decoding only on a miss."""
        file_sha256 = _file_sha256(path)
        paths = [self._path(self._key(file_sha256, modality, roi, config)) for config in configs]
        arrays: list[np.ndarray | None] = []
        for cached in paths:
            try:
                arrays.append(np.load(cached, allow_pickle=False))
            except (FileNotFoundError, ValueError, OSError):
                arrays.append(None)
        missing = [i for i, array in enumerate(arrays) if array is None]
        if missing:
            displays = self.loader(path, modality, roi, [configs[i] for i in missing])
            self.decoded += 1
            for i, display in zip(missing, displays, strict=True):
                array = _to_uint8(display)
                self._write(paths[i], array)
                arrays[i] = array
        return [array for array in arrays if array is not None]

    def _write(self, target: Path, array: np.ndarray) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a crash never leaves a truncated entry.
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.save(stream, array, allow_pickle=False)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _as_chw(array: np.ndarray) -> torch.Tensor:
    """Return a uint8 (C, H, W) tensor from an (H, W) or (H, W, 3) array."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


class CachedImageDataset(Dataset):
    """Labelled images of one modality, preprocessed once and served as normalised tensors.

    Parameters
    ----------
    rows : sequence of CaseRow
        Every row must have an image of ``modality``; labels are needed only when ``labelled``.
    modality : {"mammography", "ultrasound"}
    preprocess_config : mpmmu.preprocess.PreprocessConfig
        Its ``size`` is the model input size; ``mean``/``std`` normalise the tensors.
    cache_dir : str or pathlib.Path or None
        Disk cache folder (see :class:`ImageCache`).
    augment : AugmentPolicy or None
        Random augmentation for training; None serves the model-size view unchanged.
    seed : int
        Base seed of the augmentation. Each item's draw depends only on (seed, epoch, index),
        with the epoch set by :meth:`set_epoch`, so batch order and worker count do not matter.
    loader : callable
        Decoder with the signature of :func:`read_and_preprocess`, replaceable in tests.
    labelled : bool
        Whether to read labels (False for prediction on unlabelled rows; the label is then -1).
    progress : bool
        Show a progress bar while filling the cache.

    Raises
    ------
    ValueError
        If a row lacks the modality's image, or a label when ``labelled``.
    """

    def __init__(
        self,
        rows: Sequence[CaseRowLike],
        modality: str,
        preprocess_config: Any,
        cache_dir: str | os.PathLike[str] | None = None,
        augment: AugmentPolicy | None = None,
        *,
        seed: int = 0,
        loader: ImageLoader = read_and_preprocess,
        labelled: bool = True,
        progress: bool = False,
    ) -> None:
        if modality not in ("mammography", "ultrasound"):
            raise ValueError(f"modality must be 'mammography' or 'ultrasound', got {modality!r}")
        self.rows = list(rows)
        self.modality = modality
        self.preprocess_config = preprocess_config
        self.image_size = int(preprocess_config.size)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.cache = ImageCache(cache_dir, loader)

        self.labels = np.array([label_value(row) if labelled else -1 for row in self.rows], dtype=np.int64)
        configs = [preprocess_config]
        if augment is not None:
            configs.append(replace(preprocess_config, size=train_view_size(self.image_size)))

        self._images: list[list[torch.Tensor]] = []
        seen: dict[tuple[Path, Roi | None], list[torch.Tensor]] = {}
        for row in tqdm(self.rows, desc=f"caching {modality} images", unit="image", disable=not progress):
            path = image_path(row, modality)
            if path is None:
                raise ValueError(f"case {row.case_id!r} has no {modality} image; drop it before training")
            roi = image_roi(row, modality)
            key = (Path(path), tuple(roi) if roi is not None else None)
            if key not in seen:
                try:
                    arrays = self.cache.get(Path(path), modality, roi, configs)
                except Exception:
                    logger.error("Could not read or preprocess the %s image of case %s", modality, row.case_id)
                    raise
                seen[key] = [_as_chw(array) for array in arrays]
            self._images.append(seen[key])
        logger.info(
            "%d %s images ready (%d decoded, the rest from the cache in %s)",
            len(self.rows), modality, self.cache.decoded, self.cache.cache_dir,
        )

        self._mean = torch.tensor(preprocess_config.mean, dtype=torch.float32)[:, None, None]
        self._std = torch.tensor(preprocess_config.std, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = epoch

    def display(self, index: int) -> torch.Tensor:
        """Return the model-size display pixels of item ``index``, float32 (C, S, S) in [0, 1]."""
        return self._images[index][0].float() / 255.0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the normalised float32 (3, S, S) image and the float label of item ``index``."""
        if self.augment is None:
            image = self.display(index)
        else:
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch) * 1_000_033 + index
            )
            source = self._images[index][1].float() / 255.0
            image = augment_image(source, self.image_size, self.augment, generator)
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        tensor = (image - self._mean) / self._std
        return tensor.contiguous(), torch.tensor(float(self.labels[index]))


def precompute_cache(
    rows: Sequence[CaseRowLike],
    modality: str,
    preprocess_config: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    loader: ImageLoader = read_and_preprocess,
    progress: bool = True,
) -> int:
    """Fill the disk cache with both views of every row's ``modality`` image.

    Run it before a long training run, so the first epoch does not wait for decoding. Rows
    without that modality's image are skipped.

    Returns
    -------
    int
        Number of images decoded (the others were cached already).
    """
    cache = ImageCache(cache_dir, loader)
    configs = [preprocess_config, replace(preprocess_config, size=train_view_size(int(preprocess_config.size)))]

    done: set[tuple[Path, Roi | None]] = set()
    for row in tqdm(list(rows), desc=f"caching {modality} images", unit="image", disable=not progress):
        path = image_path(row, modality)
        if path is None:
            continue
        roi = image_roi(row, modality)
        key = (Path(path), tuple(roi) if roi is not None else None)
        if key in done:
            continue
        cache.get(Path(path), modality, roi, configs)
        done.add(key)
    logger.info("Cache %s: %d %s images decoded, %d already present", cache.cache_dir, cache.decoded, modality, len(done) - cache.decoded)
    return cache.decoded
