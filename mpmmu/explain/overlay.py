"""Blend a heatmap onto an image for display, and save the result as PNG."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

#: Colormaps accepted by :func:`overlay`, by their matplotlib names.
COLORMAPS = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "hot": cv2.COLORMAP_HOT,
}


def _to_rgb_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    else:
        image = np.clip(image.astype(np.float32), 0.0, 1.0)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {image.shape}")


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Map a heatmap in [0, 1] to RGB colours.

    Parameters
    ----------
    heatmap : numpy.ndarray
        float (H, W); values outside [0, 1] are clipped.
    colormap : str
        One of :data:`COLORMAPS`.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {sorted(COLORMAPS)}")
    levels = np.uint8(np.round(np.clip(heatmap, 0.0, 1.0) * 255.0))
    bgr = cv2.applyColorMap(levels, COLORMAPS[colormap])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    alpha: float = 0.5,
    colormap: str = "jet",
) -> np.ndarray:
    """Blend a heatmap onto an image, stronger where the heatmap is higher.

    Each pixel becomes ``(1 - a) * image + a * colour(heatmap)`` with ``a = alpha * heatmap``, so
    pixels where the heatmap is 0 (for example outside the lesion box the model saw) show the
    image unchanged.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) greyscale or (H, W, 3) RGB, float in [0, 1] or uint8.
    heatmap : numpy.ndarray
        float (H, W) in [0, 1], the same height and width as ``image``.
    alpha : float
        Opacity of the colour where the heatmap is 1, in [0, 1].
    colormap : str
        One of :data:`COLORMAPS`.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.

    Raises
    ------
    ValueError
        If the shapes differ, ``alpha`` is outside [0, 1] or the colormap is unknown.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = _to_rgb_float(image)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != rgb.shape[:2]:
        raise ValueError(
            f"heatmap shape {heatmap.shape} differs from image shape {rgb.shape[:2]}; "
            "map the heatmap to the original image first (mpmmu.preprocess.map_to_original)"
        )
    colours = colorize(heatmap, colormap).astype(np.float32) / 255.0
    weight = (alpha * np.clip(heatmap, 0.0, 1.0))[..., None]
    blended = (1.0 - weight) * rgb + weight * colours
    return np.uint8(np.round(np.clip(blended, 0.0, 1.0) * 255.0))


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W, 3) RGB image as PNG, creating the parent folder, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path, format="PNG")
    logger.info("saved overlay %s", path)
    return path
