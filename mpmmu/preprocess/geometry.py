"""Lesion boxes, aspect-keeping resize and the mapping between original and model pixels.

Boxes are ``(x, y, width, height)`` in pixels, x along columns and y along rows, with the origin
at the top-left corner of the original image. A :class:`~mpmmu.records.Transform` describes
crop, then left-right flip, then scale, then padding; the functions here apply it and undo it.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np

from mpmmu.errors import PreprocessError
from mpmmu.records import Transform

Box = tuple[int, int, int, int]


def parse_roi(text: str) -> Box:
    """Parse a lesion box written as ``"x,y,w,h"`` in original pixels.

    Raises
    ------
    PreprocessError
        If the text does not hold four integers or the width or height is not positive.
    """
    parts = [p.strip() for p in re.split(r"[,\s]+", text.strip()) if p.strip()]
    if len(parts) != 4:
        raise PreprocessError(
            f"ROI must be four integers 'x,y,w,h' in original pixels, got {text!r} ({len(parts)} values)"
        )
    values = []
    for name, part in zip(("x", "y", "w", "h"), parts):
        try:
            values.append(int(part))
        except ValueError:
            raise PreprocessError(
                f"ROI {name} must be an integer number of pixels, got {part!r} in {text!r}"
            ) from None
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise PreprocessError(f"ROI width and height must be > 0, got w={w}, h={h} in {text!r}")
    return x, y, w, h


def roi_from_circle(
    x_center: float, y_center: float, radius: float, image_shape: tuple[int, ...], min_side: int = 128
) -> Box:
    """Return a square box of side ``max(3 * radius, min_side)`` centred on a finding.

    Parameters
    ----------
    x_center, y_center : float
        Centre in array coordinates (column, row from the top-left corner). mini-MIAS measures y
        from the bottom, so convert it with ``height - y`` first.
    radius : float
        Radius of the finding in pixels.
    image_shape : tuple of int
        (H, W) or (H, W, C) of the image; the box is shifted, then clipped, to fit inside it.
    min_side : int
        Smallest side in pixels.

    Raises
    ------
    PreprocessError
        If the radius is negative or the centre lies outside the image.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    if not radius >= 0:
        raise PreprocessError(f"Finding radius must be >= 0 pixels, got {radius}")
    if not (0 <= x_center < width and 0 <= y_center < height):
        raise PreprocessError(
            f"Finding centre ({x_center}, {y_center}) lies outside the image of {width} x {height} "
            "pixels; check whether y is measured from the bottom (mini-MIAS) or the top"
        )
    side = int(round(max(3.0 * radius, float(min_side))))
    x0 = int(round(x_center - side / 2))
    y0 = int(round(y_center - side / 2))
    return _fit_box((x0, y0, side, side), width, height)


def _fit_box(box: Box, width: int, height: int) -> Box:
    """Shift a box into the image where it fits, else clip it to the image."""
    x, y, w, h = box
    w = min(w, width)
    h = min(h, height)
    x = min(max(x, 0), width - w)
    y = min(max(y, 0), height - h)
    return x, y, w, h


def clip_box(box: Box, image_shape: tuple[int, ...]) -> Box:
    """Intersect a box with the image.

    Raises
    ------
    PreprocessError
        If the box is empty or lies wholly outside the image.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    x, y, w, h = (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise PreprocessError(
            f"ROI {box} is empty (width and height must be > 0); draw a box around the lesion"
        )
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        raise PreprocessError(
            f"ROI {box} lies outside the image of {width} x {height} pixels; give x, y, width, "
            "height in the original image's pixels, with x from the left and y from the top"
        )
    return x0, y0, x1 - x0, y1 - y0


def context_box(box: Box, image_shape: tuple[int, ...], context: float, min_side: int) -> Box:
    """Enlarge a lesion box about its centre, make it square and fit it into the image.

    The box grows by ``context`` per side, then to at least ``min_side``, then its shorter side
    grows to the longer one so that resizing keeps the lesion's aspect. The square is shifted to
    stay inside the image; only an image narrower than the square makes it non-square.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    x, y, w, h = clip_box(box, image_shape)
    cx, cy = x + w / 2.0, y + h / 2.0
    side = max(w * context, h * context, float(min_side))
    side_int = int(math.ceil(side))
    x0 = int(math.floor(cx - side_int / 2.0))
    y0 = int(math.floor(cy - side_int / 2.0))
    return _fit_box((x0, y0, side_int, side_int), width, height)


def bounding_box(mask: np.ndarray, margin: int = 0) -> Box | None:
    """Return the box around the True pixels of a (H, W) mask, grown by ``margin``, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    y0 = max(int(rows[0]) - margin, 0)
    y1 = min(int(rows[-1]) + 1 + margin, height)
    x0 = max(int(cols[0]) - margin, 0)
    x1 = min(int(cols[-1]) + 1 + margin, width)
    return x0, y0, x1 - x0, y1 - y0


def resize_pad(image: np.ndarray, size: int, interpolation: str = "area") -> tuple[np.ndarray, float, int, int]:
    """Resize a (h, w) float image to fit a square of ``size`` keeping its aspect, padding with 0.

    Returns
    -------
    square : numpy.ndarray
        float32 (size, size) in [0, 1].
    scale : float
        Output pixels per input pixel.
    pad_left, pad_top : int
        Where the resized image starts inside the square.
    """
    h, w = image.shape[:2]
    scale = size / max(h, w)
    new_w = min(size, max(1, int(round(w * scale))))
    new_h = min(size, max(1, int(round(h * scale))))
    if scale < 1.0 and interpolation == "area":
        flag = cv2.INTER_AREA
    else:
        flag = cv2.INTER_CUBIC
    resized = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (new_w, new_h), interpolation=flag)
    if scale < 1.0 and flag == cv2.INTER_CUBIC:
        # Bicubic shrinking aliases, so blur first at the scale of the step (antialias).
        sigma = max((1.0 / scale - 1.0) / 2.0, 0.0)
        blurred = cv2.GaussianBlur(np.ascontiguousarray(image, dtype=np.float32), (0, 0), sigma)
        resized = cv2.resize(blurred, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
    np.clip(resized, 0.0, 1.0, out=resized)

    pad_left = (size - new_w) // 2
    pad_top = (size - new_h) // 2
    square = np.zeros((size, size), dtype=np.float32)
    square[pad_top : pad_top + new_h, pad_left : pad_left + new_w] = resized
    return square, float(scale), pad_left, pad_top


def _resized_shape(transform: Transform) -> tuple[int, int]:
    _, _, w, h = transform.crop_box
    size = transform.output_size
    new_w = min(size, max(1, int(round(w * transform.scale))))
    new_h = min(size, max(1, int(round(h * transform.scale))))
    return new_w, new_h


def map_to_original(heatmap: np.ndarray, transform: Transform) -> np.ndarray:
    """Map a square model-space map back onto the original image.

    Parameters
    ----------
    heatmap : numpy.ndarray
        (S, S) map over the model input; a map of another square size (a coarse Grad-CAM
        layer) is first resized to ``transform.output_size``.
    transform : Transform
        The transform of the :class:`~mpmmu.records.ModelInput` the map was computed on.

    Returns
    -------
    numpy.ndarray
        float32 (H, W) in original pixels: padding removed, scale, flip and crop undone, and
        zero outside the crop box.
    """
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2 or heatmap.shape[0] != heatmap.shape[1]:
        raise PreprocessError(f"Heatmap must be a square (S, S) array, got shape {heatmap.shape}")
    size = transform.output_size
    if heatmap.shape[0] != size:
        heatmap = cv2.resize(heatmap, (size, size), interpolation=cv2.INTER_LINEAR)

    new_w, new_h = _resized_shape(transform)
    inner = heatmap[transform.pad_top : transform.pad_top + new_h, transform.pad_left : transform.pad_left + new_w]
    x, y, w, h = transform.crop_box
    crop = cv2.resize(np.ascontiguousarray(inner), (w, h), interpolation=cv2.INTER_LINEAR)
    if transform.flipped:
        crop = crop[:, ::-1]

    original = np.zeros(transform.original_shape, dtype=np.float32)
    original[y : y + h, x : x + w] = crop
    return original


def point_to_model(x: float, y: float, transform: Transform) -> tuple[float, float]:
    """Map a point in original pixel coordinates to model-input coordinates.

    Coordinates are continuous, with pixel centres at integer + 0.5 (so a pixel's index i
    covers [i, i + 1)).
    """
    cx, cy, w, h = transform.crop_box
    u = x - cx
    v = y - cy
    if transform.flipped:
        u = w - u
    new_w, new_h = _resized_shape(transform)
    return u * new_w / w + transform.pad_left, v * new_h / h + transform.pad_top


def point_to_original(u: float, v: float, transform: Transform) -> tuple[float, float]:
    """Map a point in model-input coordinates back to original pixel coordinates (inverse of :func:`point_to_model`)."""
    cx, cy, w, h = transform.crop_box
    new_w, new_h = _resized_shape(transform)
    x = (u - transform.pad_left) * w / new_w
    y = (v - transform.pad_top) * h / new_h
    if transform.flipped:
        x = w - x
    return x + cx, y + cy


def box_to_model(box: Box, transform: Transform) -> tuple[float, float, float, float]:
    """Map an (x, y, w, h) box in original pixels to model-input coordinates."""
    x, y, w, h = box
    u0, v0 = point_to_model(x, y, transform)
    u1, v1 = point_to_model(x + w, y + h, transform)
    return min(u0, u1), min(v0, v1), abs(u1 - u0), abs(v1 - v0)
