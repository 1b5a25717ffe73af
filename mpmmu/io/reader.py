"""Read an image from a path, bytes or an upload, detecting DICOM by content, never by extension.

Detection policy, in order:

1. ``DICM`` at byte 128 (a DICOM Part 10 file): parsed as DICOM; a parse failure is an error.
2. A signature Pillow recognises (PNG, JPEG, TIFF, PGM/PPM, BMP): read as a raster image.
3. Anything else is parsed with pydicom's ``force=True``, which reads a bare dataset without
   preamble or File Meta Information. The result is accepted only when it contains SOP Class UID
   (0008,0016), Modality (0008,0060), Rows (0028,0010) or Pixel Data (7FE0,0010). Otherwise the
   input is rejected as neither DICOM nor a supported image. The reader does not search for a
   dataset that starts at another offset, so a bare dataset preceded by stray bytes is rejected.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset

from mpmmu.errors import ImageReadError, ImageTooLargeError
from mpmmu.io.dicom import decode_dicom
from mpmmu.io.raster import open_raster, read_raster
from mpmmu.records import ImageRecord

logger = logging.getLogger(__name__)

#: Largest rows x columns decoded: a 4664 x 3064 mammogram is 14.3 M pixels, so this leaves
#: room for larger detectors while stopping decompression bombs long before memory runs out.
DEFAULT_MAX_PIXELS = 60_000_000
#: Largest input accepted, in bytes.
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
DICOM_MARKER_OFFSET = 128
BARE_DATASET_KEYWORDS = ("SOPClassUID", "Modality", "Rows", "PixelData")

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


def read_image(
    source: ImageSource,
    *,
    frame: int | None = None,
    window_index: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ImageRecord:
    """Read one image (one frame of a multi-frame file) and summarise its header without PHI.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file-like
        A path, the file's bytes, or an open binary file such as a Streamlit upload.
    frame : int, optional
        0-based frame of a multi-frame file; the default is the middle frame for DICOM
        (``NumberOfFrames // 2``) and the first page for TIFF.
    window_index : int, optional
        Index into the record's ``windows`` (DICOM greyscale only). The default is 0, which is
        the first Window Center/Width pair, else the first VOI LUT Sequence item.
    max_pixels : int
        Largest rows x columns accepted.
    max_bytes : int
        Largest input size accepted, in bytes.

    Returns
    -------
    ImageRecord
        float32 display pixels in [0, 1], stored values for re-windowing, and the de-identified
        header summary.

    Raises
    ------
    ImageReadError
        Empty, unreadable, corrupt or truncated input, or input that is neither DICOM nor a
        supported raster image.
    NoPixelDataError
        A DICOM object without Pixel Data, such as a Structured Report.
    ImageTooLargeError
        An input above ``max_bytes`` or an image above ``max_pixels``.
    UnsupportedImageError
        A format, transfer syntax or photometric interpretation mpmmu cannot use, or a frame or
        window index out of range.
    TypeError
        If ``source`` is not a path, bytes or a binary file object.
    """
    # Messages name a file by its basename; callers with bytes can prepend their own name.
    subject = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "the input"
    data = _read_bytes(source, max_bytes, subject)
    if not data:
        raise ImageReadError(f"{subject} is empty (0 bytes); choose the image file again")
    sha256 = hashlib.sha256(data).hexdigest()
    options = {"sha256": sha256, "frame": frame, "window_index": window_index, "max_pixels": max_pixels}

    if data[DICOM_MARKER_OFFSET:DICOM_MARKER_OFFSET + 4] == b"DICM":
        return decode_dicom(_parse_dicom(data, subject), **options)

    image = open_raster(data, max_pixels)
    if image is not None:
        with image:
            return read_raster(image, **options)

    dataset = _parse_bare_dataset(data)
    if dataset is None:
        logger.debug(
            "%d bytes: no 'DICM' marker at byte %d, no raster signature, and no bare DICOM dataset",
            len(data), DICOM_MARKER_OFFSET,
        )
        raise ImageReadError(
            f"{subject} ({len(data)} bytes) is neither a DICOM file nor a PNG, JPEG, TIFF, BMP or "
            "PGM image; check that the right file was chosen"
        )
    logger.info("no 'DICM' marker; read as a bare DICOM dataset without File Meta Information")
    return decode_dicom(dataset, **options)


def _read_bytes(source: ImageSource, max_bytes: int, subject: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            size = os.path.getsize(path)
            if size > max_bytes:
                raise ImageTooLargeError(
                    f"{subject} is {size} bytes, above mpmmu's limit of {max_bytes} bytes, so it was not "
                    "read; check that the right file was chosen (API callers can raise max_bytes)"
                )
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError as error:
            raise ImageReadError(f"no file at {path!r}; check the path") from error
        except IsADirectoryError as error:
            raise ImageReadError(f"{path!r} is a folder, not an image file; pass a file") from error
        except OSError as error:
            raise ImageReadError(f"reading {path!r} failed: {error.strerror or error}") from error
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass  # a non-seekable stream is read from its current position
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            raise ImageReadError("the upload was opened in text mode; open the file in binary mode ('rb')")
        data = bytes(data or b"")
    else:
        raise TypeError(
            f"read_image expects a path, bytes or a binary file-like object, got {type(source).__name__}"
        )
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{subject} is more than {max_bytes} bytes, above mpmmu's limit, so it was not read; "
            "check that the right file was chosen (API callers can raise max_bytes)"
        )
    return data


def _parse_dicom(data: bytes, subject: str) -> Dataset:
    try:
        return dcmread(io.BytesIO(data))
    # pydicom raises InvalidDicomError for a bad header but struct.error, ValueError, KeyError,
    # EOFError and others from deeper in the element parser when the bytes are corrupt.
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        logger.debug("DICOM header parse failed: %s", reason)
        raise ImageReadError(
            f"{subject} starts like a DICOM file but its header could not be read, so the file is "
            "corrupt or truncated; export it again"
        ) from error


def _parse_bare_dataset(data: bytes) -> Dataset | None:
    """Parse ``data`` as a dataset without preamble; None when it does not look like one."""
    try:
        dataset = dcmread(io.BytesIO(data), force=True)
        if any(keyword in dataset for keyword in BARE_DATASET_KEYWORDS):
            # Touch the values now, so that a garbage parse fails here rather than mid-decode.
            for keyword in BARE_DATASET_KEYWORDS:
                dataset.get(keyword)
            return dataset
    # Forced parsing of arbitrary bytes can fail with almost any exception type, and every failure
    # means that the bytes are not a DICOM dataset.
    except Exception as error:
        logger.debug("forced DICOM parse failed: %s", type(error).__name__)
    return None
