"""B-mode region detection and caliper-mark removal for breast ultrasound exports.

Scanner exports frame the B-mode image with burnt-in text, rulers, colour bars and logos on a
black or dark grey screen. The scan itself is a textured region (speckle), convex for linear,
curved and sector probes alike. It is found as the convex hull of the largest textured
component, after a morphological opening has removed thin text strokes and ruler ticks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

#: Colour pixels: max(R, G, B) - min(R, G, B) at least this, in [0, 1]. Toshiba B-mode is tinted
#: blue with a spread up to about 0.24, so the limit sits above that.
COLOR_SPREAD_MIN = 0.25
#: Below this many pixels on either side, region detection is skipped.
MIN_DETECTION_SIDE = 32
#: Local standard deviation (5 x 5 pixels, [0, 1] units) above which a pixel counts as scan.
#: UI bars and borders are flat (0), while even deep, dark, smoothed tissue varies by about 0.001
#: or more.
TEXTURE_STD_MIN = 0.0008
#: A detected scan region smaller than this fraction of the image is not trusted.
MIN_REGION_FRACTION = 0.10
#: Largest fraction of other bright candidates around a mark; more means speckle.
ISOLATION_MAX = 0.06
#: Rounds in which small bright parts next to a mark join it (letters along a word).
MARK_GROWTH_STEPS = 4
#: Colour pixels covering more than this fraction of the scan mean colour Doppler or elastography.
DOPPLER_FRACTION = 0.01


@dataclass(frozen=True)
class BModeRegion:
    """The B-mode scan found in an ultrasound export.

    Attributes
    ----------
    mask : numpy.ndarray or None
        bool (H, W): the scan region (convex), or None when it was not found.
    color_mask : numpy.ndarray
        bool (H, W): colour pixels (Doppler, colour bars, coloured marks).
    color_fraction : float
        Fraction of the scan region covered by colour pixels.
    warnings : tuple of str
    """

    mask: np.ndarray | None
    color_mask: np.ndarray
    color_fraction: float
    warnings: tuple[str, ...] = ()


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """Return float32 (H, W) luminance (ITU-R BT.601 weights) of a grey or RGB [0, 1] image."""
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels, dtype=np.float32)
    rgb = pixels[..., :3].astype(np.float32, copy=False)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.float32)


def color_pixels(pixels: np.ndarray) -> np.ndarray:
    """Return bool (H, W): pixels whose RGB channels spread by at least :data:`COLOR_SPREAD_MIN`."""
    if pixels.ndim == 2:
        return np.zeros(pixels.shape, dtype=bool)
    rgb = pixels[..., :3]
    return (rgb.max(axis=2) - rgb.min(axis=2)) >= COLOR_SPREAD_MIN


def _local_std(image: np.ndarray, size: int) -> np.ndarray:
    mean = cv2.blur(image, (size, size))
    mean_sq = cv2.blur(image * image, (size, size))
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def find_bmode_region(pixels: np.ndarray) -> BModeRegion:
    """Find the B-mode scan region of an ultrasound image.

    Parameters
    ----------
    pixels : numpy.ndarray
        float32 (H, W) or (H, W, 3) in [0, 1].

    Returns
    -------
    BModeRegion
        ``mask`` is None, with a warning, for a blank or tiny image or when no textured region
        of at least :data:`MIN_REGION_FRACTION` of the image is found.

    Notes
    -----
    A pixel counts as scan when it is not colour, is not black (above 0.02) and is not flat
    (local standard deviation over 5 x 5 pixels above :data:`TEXTURE_STD_MIN`). Flat grey UI
    bars and black borders fail this. Text and tick marks pass it but are too thin to survive
    an opening of about 3% of the image side. Anechoic areas (cysts, shadows) that fail the
    test are taken back by the convex hull.
    """
    grey = to_grey(pixels)
    color = color_pixels(pixels)
    height, width = grey.shape
    if min(height, width) < MIN_DETECTION_SIDE:
        message = (
            f"Ultrasound image of {width} x {height} pixels is too small to find the scan region "
            f"(needs >= {MIN_DETECTION_SIDE} per side); the whole image was used"
        )
        return BModeRegion(None, color, 0.0, (message,))

    textured = (grey > 0.02) & (_local_std(grey, 5) > TEXTURE_STD_MIN) & ~color
    # A small closing fills pinholes in the speckle. The opening then removes text and ticks,
    # and it cannot bridge the black gap between the scan and a UI bar beside it.
    closed = cv2.morphologyEx(textured.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    radius = max(2, int(round(0.015 * min(height, width))))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    opened = cv2.morphologyEx(closed, cv2.MORPH_OPEN, kernel)
    labels, count = ndimage.label(opened)
    if count == 0:
        message = "No B-mode scan region found (blank image?); the whole image was used"
        return BModeRegion(None, color, 0.0, (message,))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    # An anechoic cyst or a shadow as wide as the scan splits it into parts, so every part of
    # at least a tenth of the largest one joins the hull. Leftover text blocks are smaller.
    kept = np.flatnonzero(sizes >= 0.1 * sizes.max())
    parts = np.isin(labels, kept).astype(np.uint8)

    contours, _ = cv2.findContours(parts, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.vstack(contours))
    region = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(region, hull, 1)
    mask = region.astype(bool)

    fraction = float(mask.mean())
    if fraction < MIN_REGION_FRACTION:
        message = (
            f"The B-mode scan region found covers only {fraction:.1%} of the image; the whole "
            "image was used"
        )
        return BModeRegion(None, color, 0.0, (message,))

    color_fraction = float((color & mask).sum()) / float(mask.sum())
    warnings: list[str] = []
    if color_fraction > DOPPLER_FRACTION:
        warnings.append(
            f"Colour covers {color_fraction:.1%} of the scan (colour Doppler or elastography?); "
            "the model reads greyscale B-mode, so use a B-mode image of the lesion"
        )
    logger.debug("B-mode region: %.1f%% of the image, colour %.2f%%", 100 * fraction, 100 * color_fraction)
    return BModeRegion(mask, color, color_fraction, tuple(warnings))


def find_marks(pixels: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Find caliper crosses, coloured marks and annotation text burnt into an ultrasound scan.

    Parameters
    ----------
    pixels : numpy.ndarray
        float32 (H, W) or (H, W, 3) in [0, 1].
    region : numpy.ndarray or None
        bool (H, W) scan region; marks are looked for only inside it.

    Returns
    -------
    numpy.ndarray
        bool (H, W), slightly dilated so inpainting covers the marks' edges.

    Notes
    -----
    A grey mark is a small bright component brighter than its 7 x 7 surroundings (white
    top-hat above 0.2, mean top-hat at least 0.3, brightness above 0.55). Its box is 5 to
    about 6% of the image side, at most 2.5 times as long as wide, and at most 75% filled:
    crosses, "x" marks and letters are thin and compact, while tissue echoes are long or fill
    their box. A mark must also stand apart: at most :data:`ISOLATION_MAX` of the pixels
    around it may be other bright candidates, which rejects clusters in bright speckle. Small
    parts next to an accepted mark (caliper numbers, thin letters) then join it. A colour
    mark is a small component of colour pixels.

    NOTE: grey marks that are not brighter than 0.55 or sit on bright speckle are missed
    (several BUS-BRA "x" calipers and letters), and a few speckle clusters per bright image
    are still taken for marks. Both were judged by eye on BUS-BRA images, not measured.
    """
    grey = to_grey(pixels)
    height, width = grey.shape
    max_side = max(12, int(round(0.06 * min(height, width))))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))
    tophat = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, kernel)
    candidates = (tophat > 0.2) & (grey > 0.55)
    if region is not None:
        candidates &= region

    marks = np.zeros((height, width), dtype=bool)
    small_parts = np.zeros((height, width), dtype=bool)
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3)))
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        box_h = box[0].stop - box[0].start
        box_w = box[1].stop - box[1].start
        if max(box_h, box_w) > max_side:
            continue
        component = labels[box] == index
        if (
            min(box_h, box_w) < 5
            or max(box_h, box_w) < 7
            or max(box_h, box_w) > 2.5 * min(box_h, box_w)
            or component.sum() / float(box_h * box_w) > 0.75
            or tophat[box][component].mean() < 0.3
        ):
            small_parts[box] |= component
            continue
        marks[box] |= component

    # A caliper or a letter lies on tissue with few other bright specks around it, while a
    # speckle cluster that passed the shape tests lies among many. Shapes whose box, grown by
    # 6 pixels, contains more than ISOLATION_MAX of other candidates are rejected.
    others = candidates & ~marks
    shape_labels, _ = ndimage.label(marks, structure=np.ones((3, 3)))
    for index, box in enumerate(ndimage.find_objects(shape_labels), start=1):
        if box is None:
            continue
        grown = (
            slice(max(box[0].start - 6, 0), min(box[0].stop + 6, height)),
            slice(max(box[1].start - 6, 0), min(box[1].stop + 6, width)),
        )
        if others[grown].mean() > ISOLATION_MAX:
            marks[box] &= shape_labels[box] != index

    # Letters such as "I" or "-" and caliper numbers fail the shape tests on their own, so small
    # bright parts within 3 pixels of an accepted mark join it, letter by letter along a word.
    for _ in range(MARK_GROWTH_STEPS):
        near = cv2.dilate(marks.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        touching = np.unique(labels[near & small_parts])
        joined = np.isin(labels, touching[touching > 0]) & small_parts
        if not joined.any():
            break
        marks |= joined
        small_parts &= ~joined

    color = color_pixels(pixels)
    if region is not None:
        color &= region
    if color.any():
        labels, count = ndimage.label(color, structure=np.ones((3, 3)))
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None:
                continue
            if max(box[0].stop - box[0].start, box[1].stop - box[1].start) <= 2 * max_side:
                marks[box] |= labels[box] == index

    if marks.any():
        marks = cv2.dilate(marks.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return marks


def inpaint_marks(image: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Fill marked pixels of a float32 (H, W) [0, 1] image from their surroundings (Telea)."""
    if not marks.any():
        return image
    as_bytes = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    filled = cv2.inpaint(as_bytes, marks.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    result = image.copy()
    result[marks] = filled[marks].astype(np.float32) / 255.0
    return result
