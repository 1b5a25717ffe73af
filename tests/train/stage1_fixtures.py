"""Tiny synthetic images and rows for stage-1 tests, with a loader that needs no real decoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TinyPreprocessConfig:
    """The fields of PreprocessConfig that stage 1 reads."""

    size: int = 64
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Row:
    """The fields of CaseRow that stage 1 reads."""

    case_id: str
    patient_id: str
    mammogram_path: Path | None
    ultrasound_path: Path | None
    label: str | None
    mammogram_roi: tuple[int, int, int, int] | None = None
    ultrasound_roi: tuple[int, int, int, int] | None = None
    source: str = "synthetic"
    split: str | None = None


class CountingLoader:
    """Read a saved float image and resize it to each configuration's size, counting decodes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path, modality: str, roi, configs: Sequence[Any]) -> list[np.ndarray]:
        self.calls += 1
        image = torch.from_numpy(np.load(path))[None, None]
        return [
            F.interpolate(image, size=(config.size, config.size), mode="bilinear", align_corners=False)[0, 0]
            .clamp(0, 1)
            .numpy()
            for config in configs
        ]


def make_rows(folder: Path, count: int, modality: str, seed: int, prefix: str) -> list[Row]:
    """Write ``count`` 48-px images, half with a bright disc (malignant), and return their rows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    rows = []
    for i in range(count):
        malignant = i % 2 == 1
        image = rng.uniform(0.1, 0.4, size=(48, 48)).astype(np.float32)
        if malignant:
            cy, cx = rng.integers(14, 34, size=2)
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] += 0.5
        path = folder / f"{prefix}{i:03d}.npy"
        np.save(path, np.clip(image, 0, 1))
        mammogram = path if modality == "mammography" else None
        ultrasound = path if modality == "ultrasound" else None
        rows.append(
            Row(
                case_id=f"{prefix}{i:03d}",
                patient_id=f"p{prefix}{i:03d}",
                mammogram_path=mammogram,
                ultrasound_path=ultrasound,
                label="malignant" if malignant else "benign",
            )
        )
    return rows
