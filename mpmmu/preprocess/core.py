"""Turn an :class:`~mpmmu.records.ImageRecord` into a branch's :class:`~mpmmu.records.ModelInput`.

Steps, each recorded in ``Transform.steps``:

1. Mammogram: segment the breast and set everything outside it (film labels, markers, film
   edges) to 0. Ultrasound: find the B-mode scan region and set everything outside it (text,
   rulers, colour bars) to 0, then inpaint caliper marks and annotation text inside it.
2. Crop to the lesion ROI enlarged for context (``roi`` given) or to the breast / scan region.
3. Mammogram: mirror it left-right to ``config.canonical_laterality``.
4. Resize keeping the aspect ratio, pad to a square of ``config.size`` with 0.
5. Replicate grey to 3 channels and normalise with ``config.mean`` and ``config.std``.
"""

from __future__ import annotations

import logging
import warnings as warnings_module
from typing import Sequence

import numpy as np

from mpmmu.errors import PreprocessError
from mpmmu.preprocess.config import PreprocessConfig
from mpmmu.preprocess.geometry import Box, bounding_box, clip_box, context_box, resize_pad
from mpmmu.preprocess.mammography import segment_breast
from mpmmu.preprocess.ultrasound import find_bmode_region, find_marks, inpaint_marks, to_grey
from mpmmu.records import ImageRecord, Modality, ModelInput, Transform

logger = logging.getLogger(__name__)

MODALITIES = ("mammography", "ultrasound")


#: The mammogram ROI warning fires when the ROI centre lies outside the breast mask or when less
#: than this fraction of the context crop does. A correct box around a large lesion near the
#: skin can leave half of the crop outside the breast (mini-MIAS mdb001: 47%).
MIN_ROI_BREAST_OVERLAP = 0.2


def _warn(message: str, collected: list[str], *, python_warning: bool = True) -> None:
    """Log a preprocessing warning and keep it for ``ModelInput.warnings``.

    ``python_warning=False`` skips :func:`warnings.warn`, for a per-case message that callers
    already show from ``ModelInput.warnings``.
    """
    logger.warning(message)
    if python_warning:
        warnings_module.warn(message, UserWarning, stacklevel=3)
    collected.append(message)


def _checked_grey(record: ImageRecord, collected: list[str]) -> np.ndarray:
    pixels = np.asarray(record.pixels)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise PreprocessError(
            f"Image pixels must be (H, W) grey or (H, W, 3) RGB, got shape {pixels.shape}; "
            "read the file with mpmmu.io.read_image"
        )
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise PreprocessError(f"Image is empty (shape {pixels.shape}); nothing to preprocess")
    grey = to_grey(pixels)
    if not np.isfinite(grey).all():
        _warn("Image holds NaN or infinite pixels; they were set to 0", collected)
        grey = np.nan_to_num(grey, nan=0.0, posinf=1.0, neginf=0.0)
    if grey.min() < 0.0 or grey.max() > 1.0:
        _warn(
            f"Image pixels range over [{grey.min():.3g}, {grey.max():.3g}] instead of [0, 1]; they were clipped",
            collected,
        )
        grey = np.clip(grey, 0.0, 1.0)
    return grey


def _crop_box(
    roi: Sequence[int] | None, region: np.ndarray | None, shape: tuple[int, int], context: float,
    config: PreprocessConfig, collected: list[str], margin: int,
) -> tuple[Box, bool]:
    height, width = shape
    if roi is not None:
        if len(roi) != 4:
            raise PreprocessError(f"ROI must be (x, y, width, height), got {tuple(roi)}")
        box = tuple(int(v) for v in roi)
        clipped = clip_box(box, shape)
        if clipped != box:
            _warn(f"ROI {box} extends past the image of {width} x {height} pixels; it was clipped to {clipped}", collected)
        return context_box(clipped, shape, context, config.min_roi_side), True
    if region is not None:
        found = bounding_box(region, margin=margin)
        if found is not None:
            return found, False
    return (0, 0, width, height), False


def _finish(
    crop: np.ndarray, box: Box, flipped: bool, roi_used: bool, steps: list[str], shape: tuple[int, int],
    modality: str, config: PreprocessConfig, mask: np.ndarray | None, marks: np.ndarray | None,
    collected: list[str],
) -> ModelInput:
    square, scale, pad_left, pad_top = resize_pad(crop, config.size, config.interpolation)
    method = "area" if scale < 1.0 and config.interpolation == "area" else "bicubic"
    steps.append(f"resize x{scale:.4f} ({method}) keeping the aspect ratio")
    steps.append(f"pad to {config.size} x {config.size} with 0 (left {pad_left}, top {pad_top})")

    mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)
    tensor = (np.broadcast_to(square, (3, config.size, config.size)) - mean) / std
    steps.append(f"grey to 3 channels, normalise with mean {tuple(config.mean)} and std {tuple(config.std)}")

    transform = Transform(
        original_shape=shape,
        crop_box=box,
        flipped=flipped,
        scale=scale,
        pad_left=pad_left,
        pad_top=pad_top,
        output_size=config.size,
        roi_used=roi_used,
        steps=tuple(steps),
    )
    return ModelInput(
        tensor=np.ascontiguousarray(tensor, dtype=np.float32),
        display=square,
        transform=transform,
        modality=modality,  # type: ignore[arg-type]
        mask=mask,
        warnings=tuple(collected),
        marks=marks,
    )


def _preprocess_mammogram(
    record: ImageRecord, roi: Sequence[int] | None, config: PreprocessConfig, collected: list[str]
) -> ModelInput:
    grey = _checked_grey(record, collected)
    shape = grey.shape
    steps: list[str] = []

    region = segment_breast(grey, config.segmentation_max_side)
    for message in region.warnings:
        _warn(message, collected)
    if region.mask is not None:
        steps.append(f"segment the breast (Otsu threshold {region.threshold:.3f}, largest component, holes filled)")

    if record.laterality in ("L", "R"):
        side = record.laterality
        if region.inferred_laterality not in (side, "unknown"):
            _warn(
                f"Laterality {side} from the header, but the image looks like a {region.inferred_laterality} "
                "breast (chest wall on the other side); the header was followed",
                collected,
            )
        source = "header"
    elif region.inferred_laterality != "unknown":
        side = region.inferred_laterality
        source = "image"
    else:
        side = config.canonical_laterality
        source = "default"
        _warn("Laterality unknown and not clear from the image; the mammogram was not flipped", collected)
    flipped = side != config.canonical_laterality

    margin = max(2, round(0.01 * max(shape)))
    box, roi_used = _crop_box(roi, region.mask, shape, config.roi_context_mammography, config, collected, margin)
    x, y, w, h = box
    crop = grey[y : y + h, x : x + w].copy()
    steps.append(f"crop to {'ROI' if roi_used else 'breast region' if region.mask is not None else 'whole image'} {box}")
    if region.mask is not None:
        inside = region.mask[y : y + h, x : x + w]
        if roi_used:
            _check_roi_in_breast(roi, region.mask, box, inside, collected)
        crop[~inside] = 0.0
        steps.append("set pixels outside the breast to 0 (film labels, markers, film edges)")
    if flipped:
        crop = crop[:, ::-1]
        steps.append(f"flip left-right (laterality {side} from {source} -> {config.canonical_laterality})")
    return _finish(crop, box, flipped, roi_used, steps, shape, "mammography", config, region.mask, None, collected)


def _check_roi_in_breast(
    roi: Sequence[int], mask: np.ndarray, box: Box, inside: np.ndarray, collected: list[str]
) -> None:
    """Warn when the ROI centre lies outside the breast mask or the crop barely overlaps it."""
    height, width = mask.shape
    roi_x, roi_y, roi_width, roi_height = (int(v) for v in roi)
    centre_x = min(max(roi_x + roi_width // 2, 0), width - 1)
    centre_y = min(max(roi_y + roi_height // 2, 0), height - 1)
    overlap = float(inside.mean())
    if mask[centre_y, centre_x] and overlap >= MIN_ROI_BREAST_OVERLAP:
        return
    if not mask[centre_y, centre_x]:
        where = f"The ROI centre ({centre_x}, {centre_y}) lies outside the breast region found"
    else:
        where = f"Only {overlap:.0%} of the ROI crop {box} lies inside the breast region found"
    _warn(
        f"{where}; check that the ROI box is in original-image pixels with y measured from the top",
        collected,
        python_warning=False,
    )


def _preprocess_ultrasound(
    record: ImageRecord, roi: Sequence[int] | None, config: PreprocessConfig, collected: list[str]
) -> ModelInput:
    grey = _checked_grey(record, collected)
    shape = grey.shape
    pixels = np.asarray(record.pixels, dtype=np.float32)
    if pixels.ndim == 3 and not np.isfinite(pixels).all():
        pixels = np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)
    steps: list[str] = []
    if pixels.ndim == 3:
        steps.append("RGB to grey (BT.601 luminance)")

    region = find_bmode_region(pixels)
    for message in region.warnings:
        _warn(message, collected)
    if region.mask is not None:
        steps.append("find the B-mode scan region (textured, text opened away, convex hull)")

    box, roi_used = _crop_box(roi, region.mask, shape, config.roi_context, config, collected, margin=0)
    x, y, w, h = box
    crop = grey[y : y + h, x : x + w].copy()
    steps.append(f"crop to {'ROI' if roi_used else 'B-mode region' if region.mask is not None else 'whole image'} {box}")

    marks_full: np.ndarray | None = None
    if config.inpaint_marks:
        # Marks are sized against the whole image, so search it whole and keep the crop's part.
        marks_full = find_marks(pixels, region.mask)
        marks_full[:y] = False
        marks_full[y + h :] = False
        marks_full[:, :x] = False
        marks_full[:, x + w :] = False
        marks = marks_full[y : y + h, x : x + w]
        if marks.any():
            crop = inpaint_marks(crop, marks)
            steps.append(f"inpaint caliper marks and annotation text ({int(marks.sum())} pixels)")
        else:
            marks_full = None
    if region.mask is not None:
        crop[~region.mask[y : y + h, x : x + w]] = 0.0
        steps.append("set pixels outside the scan region to 0 (text, rulers, colour bars)")
    return _finish(crop, box, False, roi_used, steps, shape, "ultrasound", config, region.mask, marks_full, collected)


def preprocess(
    record: ImageRecord,
    modality: Modality,
    roi: Sequence[int] | None = None,
    config: PreprocessConfig | None = None,
) -> ModelInput:
    """Prepare one image for its branch, recording every step so it can be undone.

    Parameters
    ----------
    record : ImageRecord
        The decoded image; ``pixels`` is used (grey or RGB in [0, 1]).
    modality : {"mammography", "ultrasound"}
    roi : tuple of int or None
        Lesion box (x, y, width, height) in original pixels. It is enlarged by
        ``config.roi_context`` (ultrasound) or ``config.roi_context_mammography``, grown to
        ``config.min_roi_side``, made square where the image allows, and fitted inside the image.
        None crops to the breast or B-mode scan region instead.
    config : PreprocessConfig or None
        Defaults to ``PreprocessConfig()``.

    Returns
    -------
    ModelInput
        ``tensor`` is float32 (3, S, S), normalised, and ``display`` float32 (S, S) in [0, 1].
        ``transform`` contains the crop box, flip, scale, padding and steps. ``mask`` is the breast
        or scan region in original pixels (None when not found), ``marks`` the inpainted
        ultrasound marks, and ``warnings`` lists every fallback taken.

    Raises
    ------
    PreprocessError
        If the modality is unknown, the pixels are not an image, or the ROI is empty or lies
        outside the image. A blank or tiny image is not an error: it falls back to the whole
        image with a warning.
    """
    if modality not in MODALITIES:
        raise PreprocessError(f"Modality must be one of {MODALITIES}, got {modality!r}")
    config = config or PreprocessConfig()
    collected: list[str] = []
    if modality == "mammography":
        return _preprocess_mammogram(record, roi, config, collected)
    return _preprocess_ultrasound(record, roi, config, collected)
