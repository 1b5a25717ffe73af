"""VOI (value of interest) transforms: Window Center/Width, VOI LUT Function and VOI LUT Sequence.

Every function here works in float32 and in place where it can, so that a 4664 x 3064 mammogram
never needs a float64 copy. Outputs are display values in [0, 1]; MONOCHROME1 inversion happens
after the VOI transform, as the DICOM display pipeline orders it.

References
----------
DICOM PS3.3 C.11.2.1.2 "Window Center and Window Width" gives the LINEAR, LINEAR_EXACT and
SIGMOID formulas used below; C.11.2 "VOI LUT Module" the VOI LUT Sequence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np

from mpmmu.errors import UnsupportedImageError
from mpmmu.records import WindowPreset

if TYPE_CHECKING:
    from mpmmu.records import ImageRecord

logger = logging.getLogger(__name__)

WindowFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
WINDOW_FUNCTIONS: tuple[str, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def window_image(image: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Map stored values to [0, 1] through one window.

    Parameters
    ----------
    image : numpy.ndarray
        Values after the Modality LUT, any shape. It is not modified.
    center, width : float
        Window Center (0028,1050) and Window Width (0028,1051) in the units of ``image``.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function (0028,1056).

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape in [0, 1].

    Raises
    ------
    UnsupportedImageError
        If ``function`` is unknown or ``width`` is out of range for it (LINEAR needs >= 1, the
        others > 0).
    """
    function = str(function).upper()
    if function not in WINDOW_FUNCTIONS:
        raise UnsupportedImageError(
            f"VOI LUT Function (0028,1056) {function!r} is not supported; use one of {', '.join(WINDOW_FUNCTIONS)}"
        )
    center = float(center)
    width = float(width)
    minimum_width = 1.0 if function == "LINEAR" else 0.0
    if not np.isfinite(center) or not np.isfinite(width) or width < minimum_width or width <= 0:
        raise UnsupportedImageError(
            f"Window Width (0028,1051) must be {'>= 1' if function == 'LINEAR' else '> 0'} for {function} "
            f"and Window Center (0028,1050) finite, got center {center}, width {width}; choose another window"
        )

    output = np.asarray(image, dtype=np.float32).copy()
    if function == "LINEAR":
        # C.11.2.1.2.1: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped; w == 1 is a threshold at c - 0.5.
        if width == 1.0:
            return (output > center - 0.5).astype(np.float32)
        output -= np.float32(center - 0.5)
        output /= np.float32(width - 1.0)
        output += np.float32(0.5)
    elif function == "LINEAR_EXACT":
        output -= np.float32(center)
        output /= np.float32(width)
        output += np.float32(0.5)
    else:
        # C.11.2.1.3.1: y = 1 / (1 + exp(-4 (x - c) / w)); never leaves (0, 1), no clipping needed.
        output -= np.float32(center)
        output *= np.float32(-4.0 / width)
        np.clip(output, -80.0, 80.0, out=output)
        np.exp(output, out=output)
        output += np.float32(1.0)
        np.reciprocal(output, out=output)
        return output
    np.clip(output, 0.0, 1.0, out=output)
    return output


def lut_image(image: np.ndarray, first_mapped: int, lut: np.ndarray, bits: int) -> np.ndarray:
    """Map stored values to [0, 1] through a VOI LUT.

    Values below ``first_mapped`` take the first entry and values past the end take the last
    (PS3.3 C.11.2.1.1). Entries are scaled by ``2**bits - 1``. Some real files have a LUT
    Descriptor that understates the bit depth, so when the data exceed that, their own bit depth is used.

    Parameters
    ----------
    image : numpy.ndarray
        Values after the Modality LUT.
    first_mapped : int
        Second value of LUT Descriptor (0028,3002).
    lut : numpy.ndarray
        LUT Data (0028,3006) as integers.
    bits : int
        Third value of LUT Descriptor.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape in [0, 1].
    """
    lut = np.asarray(lut)
    scale = float(2**int(bits) - 1)
    largest = float(lut.max()) if lut.size else 0.0
    if largest > scale:
        scale = float(2 ** int(np.ceil(np.log2(largest + 1))) - 1)
    table = (lut.astype(np.float32) / np.float32(scale)).clip(0.0, 1.0)
    index = np.asarray(image, dtype=np.float32) - np.float32(first_mapped)
    np.clip(index, 0, len(table) - 1, out=index)
    return table[index.astype(np.int32)]


def range_image(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly to [0, 1], clipping outside; a flat image maps to 0."""
    output = np.asarray(image, dtype=np.float32).copy()
    output -= np.float32(low)
    if high > low:
        output /= np.float32(high - low)
    np.clip(output, 0.0, 1.0, out=output)
    return output


def apply_window(
    record: ImageRecord, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Window a decoded image again, for a viewer's window/level sliders.

    Greyscale records are windowed from ``record.stored`` (values after the Modality LUT, in the
    file's units) and inverted afterwards when the photometric interpretation is MONOCHROME1, so
    the result matches ``record.pixels`` for the same window. Colour records have no stored values
    to window; the window is applied to each channel of ``record.pixels``, in [0, 1] units.

    Parameters
    ----------
    record : ImageRecord
        A record from :func:`mpmmu.io.read_image`.
    center, width : float
        Window Center and Window Width; see :func:`window_image` for the allowed ranges.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function. A VOI LUT Sequence preset ("LUT") cannot be re-applied from a center and
        width; read the file again with ``read_image(..., window_index=i)`` for that.

    Returns
    -------
    numpy.ndarray
        float32 (H, W) or (H, W, 3) in [0, 1].

    Raises
    ------
    UnsupportedImageError
        If the function is unknown or the width out of range.
    """
    if str(function).upper() == "LUT":
        raise UnsupportedImageError(
            "a VOI LUT Sequence window cannot be rebuilt from a center and width; "
            "call read_image(source, window_index=i) to apply that preset"
        )
    if record.is_color:
        return window_image(record.pixels, center, width, function)
    display = window_image(record.stored, center, width, function)
    if record.photometric_interpretation == "MONOCHROME1":
        np.subtract(1.0, display, out=display)
    return display


def describe_window(preset: WindowPreset) -> str:
    """Return one line for logs and summaries, e.g. ``"LINEAR center 40 width 400 (BRAIN)"``."""
    text = f"{preset.function} center {preset.center:g} width {preset.width:g}"
    if preset.explanation:
        text += f" ({preset.explanation})"
    return text
