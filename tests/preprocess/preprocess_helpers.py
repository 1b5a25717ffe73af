"""Build ImageRecords from arrays and real files without depending on mpmmu.io."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mpmmu.records import ImageRecord


def make_record(pixels: np.ndarray, laterality: str = "unknown") -> ImageRecord:
    """Wrap float32 [0, 1] pixels in an ImageRecord as a raster file would be read."""
    pixels = np.asarray(pixels, dtype=np.float32)
    stored = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    return ImageRecord(
        pixels=pixels,
        stored=stored,
        photometric_interpretation="MONOCHROME2" if pixels.ndim == 2 else "RGB",
        bits_stored=8,
        modality="",
        laterality=laterality,  # type: ignore[arg-type]
        view="",
        presentation_intent="",
        pixel_spacing=None,
        frame_count=1,
        frame_index=0,
        windows=(),
        window_index=None,
        header={},
        source_format="png",
        sha256="0" * 64,
    )


def load_png(path: Path) -> np.ndarray:
    """Read an 8-bit PNG as float32 [0, 1]."""
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float32) / 255.0


def load_dicom_pixels(path: Path) -> np.ndarray:
    """Read an 8-bit DICOM's pixels as float32 [0, 1] with pydicom (no VOI)."""
    import pydicom

    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array.astype(np.float32)
    return pixels / float(2 ** int(dataset.BitsStored) - 1)


def synthetic_mammogram(height: int = 256, width: int = 200, chest_wall: str = "left") -> np.ndarray:
    """Draw a half-ellipse breast against the chest wall on one side, with a film label opposite."""
    rows, cols = np.mgrid[0:height, 0:width]
    center_y = height / 2
    semi_y = height * 0.45
    semi_x = width * 0.6
    if chest_wall == "left":
        inside = ((cols / semi_x) ** 2 + ((rows - center_y) / semi_y) ** 2) <= 1.0
    else:
        inside = (((width - 1 - cols) / semi_x) ** 2 + ((rows - center_y) / semi_y) ** 2) <= 1.0
    rng = np.random.default_rng(0)
    image = np.where(inside, 0.55 + 0.1 * rng.standard_normal((height, width)), 0.02).astype(np.float32)
    label_x = width - 30 if chest_wall == "left" else 10
    image[12:36, label_x : label_x + 18] = 1.0
    return np.clip(image, 0.0, 1.0)
