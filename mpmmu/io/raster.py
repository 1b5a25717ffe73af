"""Read PNG, JPEG, TIFF, PGM/PPM and BMP files with Pillow.

8-bit images are scaled by 255 and 16-bit images by 65535, never converted to 8 bits first, so a
16-bit PNG keeps its full range. JPEG EXIF orientation is applied. The image size is checked from
the header before any pixel is decoded, which is the guard against decompression bombs.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mpmmu.errors import ImageReadError, ImageTooLargeError, UnsupportedImageError
from mpmmu.records import ImageRecord

logger = logging.getLogger(__name__)

#: Pillow format name -> ``ImageRecord.source_format``.
SUPPORTED_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "TIFF": "tiff", "BMP": "bmp", "PPM": "pgm"}
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
EXIF_ORIENTATION_TAG = 0x0112
RASTER_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"P5", "PGM"),
    (b"P2", "PGM"),
    (b"P6", "PPM"),
    (b"P3", "PPM"),
)


def open_raster(data: bytes, max_pixels: int) -> Image.Image | None:
    """Open ``data`` with Pillow without decoding pixels; None when Pillow does not recognise it.

    Parameters
    ----------
    data : bytes
        The whole file.
    max_pixels : int
        mpmmu's limit on width x height, named in the error when Pillow's own
        decompression-bomb check trips.

    Raises
    ------
    ImageTooLargeError
        If Pillow's own decompression-bomb check trips while reading the header.
    """
    with warnings.catch_warnings():
        # Our own max_pixels check in read_raster decides; Pillow's warning would only add noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except UnidentifiedImageError as error:
            kind = _signature_format(data)
            if kind is None:
                return None
            raise ImageReadError(
                f"the file starts with a {kind} signature but its header is invalid (for example a "
                "zero width or height); the file is corrupt, export it again"
            ) from error
        except Image.DecompressionBombError as error:
            logger.debug("Pillow rejected the image header: %s", error)
            raise ImageTooLargeError(_bomb_message(data, max_pixels)) from error
        # A recognised signature with a broken header: Pillow raises these from its plugins.
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageReadError(
                f"the image header is corrupt ({error}); the file cannot be read, export it again"
            ) from error


def _bomb_message(data: bytes, max_pixels: int) -> str:
    """Describe an image that Pillow's decompression-bomb check rejected, with its declared size."""
    size = _declared_size(data)
    declared = f"{size[0]} x {size[1]} = {size[0] * size[1]} pixels" if size else "more pixels than Pillow allows"
    if size is None or size[0] * size[1] > max_pixels:
        limit = f"mpmmu's limit of {max_pixels} pixels"
    else:
        # max_pixels was raised above Pillow's own bound, which then decides.
        limit = f"Pillow's decompression-bomb limit of {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels"
    return (
        f"the image header declares {declared}, above {limit}, so the file was not decoded; "
        "check that the right file was chosen, and downsample or crop a real image this large before upload"
    )


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Read (width, height) from the header with the format's Pillow plugin, which skips the bomb check."""
    name = _signature_format(data)
    pillow_format = {"PGM": "PPM"}.get(name or "", name)
    if pillow_format not in Image.OPEN:
        return None
    factory, _ = Image.OPEN[pillow_format]
    try:
        with factory(io.BytesIO(data), "") as image:
            return image.size
    # The header already parsed once inside Image.open; any failure here only loses the size.
    except Exception as error:
        logger.debug("re-reading the image size failed: %s", type(error).__name__)
        return None


def _signature_format(data: bytes) -> str | None:
    """Name the raster format whose magic bytes start ``data``, or None."""
    for signature, name in RASTER_SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def read_raster(
    image: Image.Image, *, sha256: str, frame: int | None, window_index: int | None, max_pixels: int
) -> ImageRecord:
    """Decode a Pillow image into an :class:`~mpmmu.records.ImageRecord`.

    Parameters
    ----------
    image : PIL.Image.Image
        An image from :func:`open_raster`, not yet loaded.
    sha256 : str
        Hash of the input bytes.
    frame : int or None
        Page of a multi-page TIFF (0-based); None is the first page.
    window_index : int or None
        Must be None: raster files carry no VOI presets.
    max_pixels : int
        Largest width x height accepted.

    Raises
    ------
    ImageReadError
        Zero-size, truncated or corrupt image data.
    ImageTooLargeError
        Width x height above ``max_pixels``.
    UnsupportedImageError
        A format other than PNG, JPEG, TIFF, PGM/PPM and BMP, a bad frame or a window request.
    """
    image_format = image.format or ""
    if image_format not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(
            f"{image_format or 'this'} images are not supported; use DICOM, PNG, JPEG, TIFF, PGM or BMP"
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"the image is {width} x {height} pixels, which is empty; export it again")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image header declares {width} x {height} = {width * height} pixels, above mpmmu's limit of "
            f"{max_pixels} pixels, so the file was not decoded; check that the right file was chosen, and "
            "downsample or crop a real image this large before upload (API callers can raise max_pixels)"
        )
    if window_index is not None:
        raise UnsupportedImageError(
            f"window_index={window_index} was requested but {image_format} files have no VOI presets; "
            "leave window_index unset and use apply_window"
        )

    frame_count = int(getattr(image, "n_frames", 1) or 1)
    frame_index = 0 if frame is None else int(frame)
    if not 0 <= frame_index < frame_count:
        raise UnsupportedImageError(
            f"frame {frame} was requested but the file has {frame_count} frame(s); "
            f"choose a frame from 0 to {frame_count - 1}"
        )

    orientation = 1
    try:
        if frame_index:
            image.seek(frame_index)
        image.load()
        orientation = int(image.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
        image = ImageOps.exif_transpose(image)
    # Pillow reports truncated or corrupt pixel data through these, depending on the codec.
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageReadError(
            f"the {image_format} pixel data is truncated or corrupt ({error}); copy or upload the file again"
        ) from error

    array, bits_stored, is_colour = _to_array(image)
    if is_colour:
        pixels = array.astype(np.float32) / np.float32(2**bits_stored - 1)
        stored = (pixels @ LUMA_WEIGHTS).astype(np.float32, copy=False)
        photometric = "RGB"
    else:
        stored = array.astype(np.float32)
        if bits_stored > 16:
            low, high = float(stored.min()), float(stored.max())
            pixels = (stored - low) / np.float32(high - low if high > low else 1.0)
        else:
            pixels = stored / np.float32(2**bits_stored - 1)
        photometric = "MONOCHROME2"
    np.clip(pixels, 0.0, 1.0, out=pixels)

    source_format = SUPPORTED_FORMATS[image_format]
    if source_format == "pgm" and is_colour:
        source_format = "ppm"
    header = {
        "Format": image_format,
        "Mode": image.mode,
        "Rows": int(array.shape[0]),
        "Columns": int(array.shape[1]),
        "BitsStored": bits_stored,
        "NumberOfFrames": frame_count,
        "ExifOrientation": orientation,
    }
    logger.info("raster: %s %s %d x %d, %d bits, EXIF orientation %d", image_format, image.mode,
                array.shape[1], array.shape[0], bits_stored, orientation)
    return ImageRecord(
        pixels=pixels.astype(np.float32, copy=False),
        stored=stored,
        photometric_interpretation=photometric,
        bits_stored=bits_stored,
        modality="",
        laterality="unknown",
        view="",
        presentation_intent="",
        pixel_spacing=None,
        frame_count=frame_count,
        frame_index=frame_index,
        windows=(),
        window_index=None,
        header=header,
        source_format=source_format,
        sha256=sha256,
    )


def _to_array(image: Image.Image) -> tuple[np.ndarray, int, bool]:
    """Return the pixel array, its bit depth and whether it is colour, without losing bits."""
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16), 16, False
    if mode == "I":
        array = np.asarray(image)
        if array.size and array.min() >= 0 and array.max() <= 65535:
            return array.astype(np.uint16), 16, False
        return array, 32, False
    if mode == "F":
        return np.asarray(image, dtype=np.float32), 32, False
    if mode in ("1", "L", "LA", "La"):
        return np.asarray(image.convert("L")), 8, False
    if mode in ("P", "PA"):
        rgb = np.asarray(image.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return rgb[..., 0].copy(), 8, False
        return rgb, 8, True
    return np.asarray(image.convert("RGB")), 8, True
