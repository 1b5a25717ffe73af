"""Decode one frame of a DICOM dataset into an :class:`~mpmmu.records.ImageRecord`.

The display pipeline follows DICOM PS3.4 N.2: stored values -> Modality LUT (Modality LUT
Sequence, or Rescale Slope/Intercept) -> VOI (window or VOI LUT Sequence) -> MONOCHROME1
inversion. It runs in float32 throughout, because pydicom's own ``apply_rescale`` and
``apply_voi_lut`` return float64, which for a 4664 x 3064 mammogram doubles the peak memory.

Policies
--------
- Default VOI: ``windows`` lists the Window Center/Width pairs (0028,1050)/(0028,1051) in file
  order, then the VOI LUT Sequence (0028,3010) items; index 0 is the default. So the first window
  pair wins when both kinds are present, because a window is what a viewer's sliders start from,
  and a file with only a VOI LUT Sequence uses its first LUT. Callers pick another with
  ``window_index``. A file with neither uses the nominal range for 8 bits stored or less without
  a Modality LUT, otherwise the frame's minimum and maximum.
- Multi-frame files: the middle frame (``NumberOfFrames // 2``) unless ``frame`` is given.
- Colour: pydicom 3 converts YBR_FULL and YBR_FULL_422 to RGB while decoding and reports the
  converted photometric interpretation. This module converts only when that report is still
  YBR, so the conversion happens exactly once. PALETTE COLOR goes through the palette LUTs.
- Modality other than MG or US, and PresentationIntentType FOR PROCESSING, are read with a
  warning in ``ImageRecord.warnings``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from mpmmu.errors import ImageReadError, ImageTooLargeError, NoPixelDataError, UnsupportedImageError
from mpmmu.io.deid import summarize_header
from mpmmu.io.voi import describe_window, lut_image, range_image, window_image
from mpmmu.records import ImageRecord, WindowPreset

logger = logging.getLogger(__name__)

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
EXPECTED_MODALITIES = ("MG", "US")
# Rec. 601 luma weights, the ones DICOM uses for YBR_FULL (PS3.3 C.7.6.3.1.2).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def decode_dicom(
    dataset: Dataset,
    *,
    sha256: str,
    frame: int | None,
    window_index: int | None,
    max_pixels: int,
) -> ImageRecord:
    """Decode one frame of ``dataset`` and build its record.

    Parameters
    ----------
    dataset : pydicom.dataset.Dataset
        A parsed file; a dataset without File Meta Information gets its transfer syntax from the
        encoding pydicom detected.
    sha256 : str
        Hash of the input bytes.
    frame : int or None
        0-based frame to decode; None picks the middle frame.
    window_index : int or None
        Index into the record's ``windows``; None picks the default (see the module notes).
    max_pixels : int
        Largest Rows x Columns accepted.

    Returns
    -------
    ImageRecord

    Raises
    ------
    NoPixelDataError
        The dataset has no Pixel Data, for example a Structured Report.
    ImageReadError
        Truncated or undecodable Pixel Data, or Rows/Columns missing or zero.
    ImageTooLargeError
        Rows x Columns above ``max_pixels``.
    UnsupportedImageError
        A frame or window index out of range, or a transfer syntax or photometric interpretation
        that the installed decoders cannot handle.
    """
    transfer_syntax = _transfer_syntax(dataset)
    sop_class = UID(str(dataset.get("SOPClassUID", ""))).name if dataset.get("SOPClassUID") else ""
    if not any(keyword in dataset for keyword in PIXEL_KEYWORDS):
        kind = f"a {sop_class} object" if sop_class else "a DICOM object"
        raise NoPixelDataError(
            f"the DICOM file has no Pixel Data (7FE0,0010): it is {kind}, not an image; "
            "export the image series itself from the PACS or modality"
        )

    rows = int(dataset.get("Rows") or 0)
    columns = int(dataset.get("Columns") or 0)
    if rows <= 0 or columns <= 0:
        raise ImageReadError(
            f"Rows (0028,0010) and Columns (0028,0011) must be positive, got {rows} x {columns}; "
            "the file's image header is invalid, export the image again"
        )
    if rows * columns > max_pixels:
        raise ImageTooLargeError(
            f"the DICOM header declares {columns} x {rows} = {rows * columns} pixels, above mpmmu's limit of "
            f"{max_pixels} pixels, so the file was not decoded; check that the right file was chosen, and "
            "downsample or crop a real image this large before upload (API callers can raise max_pixels)"
        )

    frame_count = int(dataset.get("NumberOfFrames") or 1)
    frame_index = _choose_frame(frame, frame_count)
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    samples_per_pixel = int(dataset.get("SamplesPerPixel") or 1)
    bits_stored = int(dataset.get("BitsStored") or dataset.get("BitsAllocated") or 8)

    _check_native_length(dataset, transfer_syntax, rows, columns, samples_per_pixel, frame_count)
    array, decoded_photometric = _decode_frame(dataset, transfer_syntax, frame_index)

    warnings = _warnings(dataset)
    if photometric in ("MONOCHROME1", "MONOCHROME2") and samples_per_pixel == 1:
        stored, has_modality_lut = _modality_lut(dataset, array)
        del array  # the integer frame is no longer needed; free it before the VOI copy
        pixels, windows, chosen = _greyscale(
            dataset, stored, has_modality_lut, photometric, bits_stored, window_index
        )
    else:
        pixels, stored = _colour(dataset, array, photometric, decoded_photometric, bits_stored)
        if window_index is not None:
            raise UnsupportedImageError(
                f"window_index={window_index} was requested but the image is {photometric} colour, "
                "which has no VOI windows; leave window_index unset"
            )
        windows, chosen = (), None

    return ImageRecord(
        pixels=pixels,
        stored=stored,
        photometric_interpretation=photometric,
        bits_stored=bits_stored,
        modality=str(dataset.get("Modality", "")).strip().upper(),
        laterality=_laterality(dataset),
        view=_view(dataset),
        presentation_intent=str(dataset.get("PresentationIntentType", "")).strip().upper(),
        pixel_spacing=_pixel_spacing(dataset),
        frame_count=frame_count,
        frame_index=frame_index,
        windows=windows,
        window_index=chosen,
        header=summarize_header(dataset, transfer_syntax),
        source_format="dicom",
        sha256=sha256,
        warnings=tuple(warnings),
    )


def _transfer_syntax(dataset: Dataset) -> UID:
    """Return the transfer syntax, adding File Meta Information to a dataset that has none."""
    file_meta = getattr(dataset, "file_meta", None)
    uid = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if uid:
        return UID(str(uid))

    pixel = next((dataset[keyword] for keyword in PIXEL_KEYWORDS if keyword in dataset), None)
    if pixel is not None and pixel.is_undefined_length:
        raise UnsupportedImageError(
            "the file has no File Meta Information, so the compression of its encapsulated "
            "Pixel Data is unknown; export it again as a DICOM Part 10 file"
        )
    implicit_vr, little_endian = getattr(dataset, "original_encoding", (False, True))
    if not little_endian:
        uid = ExplicitVRBigEndian
    elif implicit_vr:
        uid = ImplicitVRLittleEndian
    else:
        uid = ExplicitVRLittleEndian
    if file_meta is None:
        dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = uid
    logger.info("no File Meta Information; decoding with the detected encoding, %s", uid.name)
    return uid


def _choose_frame(frame: int | None, frame_count: int) -> int:
    if frame is None:
        return frame_count // 2
    if not 0 <= int(frame) < frame_count:
        raise UnsupportedImageError(
            f"frame {frame} was requested but the file has {frame_count} frame(s); "
            f"choose a frame from 0 to {frame_count - 1}"
        )
    return int(frame)


def _check_native_length(
    dataset: Dataset, transfer_syntax: UID, rows: int, columns: int, samples: int, frames: int
) -> None:
    """Reject uncompressed Pixel Data shorter than Rows, Columns and Bits Allocated require."""
    if transfer_syntax.is_compressed or "PixelData" not in dataset:
        return
    bits_allocated = int(dataset.get("BitsAllocated") or 8)
    photometric = str(dataset.get("PhotometricInterpretation", "")).upper()
    values = rows * columns * samples * frames
    if photometric == "YBR_FULL_422":
        values = values * 2 // 3
    expected = (values * bits_allocated + 7) // 8
    actual = len(dataset.PixelData)
    if actual < expected:
        raise ImageReadError(
            f"Pixel Data (7FE0,0010) is truncated: {actual} bytes, but {frames} frame(s) of "
            f"{columns} x {rows} x {samples} sample(s) at {bits_allocated} bits need {expected}; "
            "the file was cut short, copy or upload it again"
        )


def _decode_frame(dataset: Dataset, transfer_syntax: UID, frame_index: int) -> tuple[np.ndarray, str]:
    """Decode one frame; return the array and the photometric interpretation after decoding."""
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as error:
        raise UnsupportedImageError(
            f"no pixel data decoder exists for the transfer syntax {transfer_syntax.name} "
            f"({transfer_syntax}); convert the file to an uncompressed transfer syntax"
        ) from error
    if not decoder.is_available:
        missing = "; ".join(f"{name}: {', '.join(deps)}" for name, deps in decoder.missing_dependencies.items())
        raise UnsupportedImageError(
            f"decoding {transfer_syntax.name} needs a plugin that is not installed ({missing}); "
            "install mpmmu with its pydicom decoder dependencies"
        )
    try:
        array, meta = decoder.as_array(dataset, index=frame_index)
    except MemoryError:
        raise
    # Decoders for a dozen codecs raise ValueError, RuntimeError, OSError, KeyError and others on
    # corrupt streams, and each of them means the same thing to the caller.
    except Exception as error:
        # pydicom puts each plugin's own reason on the lines after a generic first line.
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        if "less than expected" in reason or "truncat" in reason.lower():
            raise ImageReadError(
                f"Pixel Data (7FE0,0010) is truncated ({reason}); the file was cut short, copy or upload it again"
            ) from error
        raise ImageReadError(
            f"decoding the {transfer_syntax.name} Pixel Data failed: {reason}; "
            "the file is corrupt or uses an encoding the installed decoders cannot read"
        ) from error
    decoded = str(meta.get("photometric_interpretation", dataset.get("PhotometricInterpretation", ""))).upper()
    return array, decoded


def _greyscale(
    dataset: Dataset,
    stored: np.ndarray,
    has_modality_lut: bool,
    photometric: str,
    bits_stored: int,
    window_index: int | None,
) -> tuple[np.ndarray, tuple[WindowPreset, ...], int | None]:
    """Apply the chosen VOI and MONOCHROME1 inversion to values after the Modality LUT."""
    windows, luts = _window_presets(dataset)
    all_windows = windows + tuple(preset for preset, _ in luts)

    if window_index is not None and not 0 <= window_index < len(all_windows):
        raise UnsupportedImageError(
            f"window_index={window_index} was requested but the file has {len(all_windows)} VOI "
            f"preset(s); choose 0 to {len(all_windows) - 1}" if all_windows else
            f"window_index={window_index} was requested but the file has no VOI presets "
            "(no Window Center/Width, no VOI LUT Sequence); leave window_index unset"
        )
    if window_index is not None:
        chosen: int | None = window_index
    elif all_windows:
        chosen = 0
    else:
        chosen = None

    if chosen is None:
        if not has_modality_lut and bits_stored <= 8:
            signed = int(dataset.get("PixelRepresentation") or 0) == 1
            low = -(2 ** (bits_stored - 1)) if signed else 0
            high = 2 ** (bits_stored - 1) - 1 if signed else 2**bits_stored - 1
            logger.info("VOI: none in the file; nominal %d-bit range %d..%d", bits_stored, low, high)
        else:
            low, high = float(stored.min()), float(stored.max())
            logger.info("VOI: none in the file; frame minimum..maximum %g..%g", low, high)
        pixels = range_image(stored, low, high)
    elif chosen < len(windows):
        preset = windows[chosen]
        logger.info(
            "VOI: Window Center/Width preset %d of %d, %s", chosen, len(all_windows), describe_window(preset)
        )
        pixels = window_image(stored, preset.center, preset.width, preset.function)
    else:
        preset, (first_mapped, table, bits) = luts[chosen - len(windows)]
        logger.info(
            "VOI: VOI LUT Sequence item %d (%d entries), preset %d of %d",
            chosen - len(windows), len(table), chosen, len(all_windows),
        )
        pixels = lut_image(stored, first_mapped, table, bits)

    if photometric == "MONOCHROME1":
        # pydicom returns MONOCHROME1 as stored (minimum = white); invert after VOI (PS3.4 N.2.1.1).
        np.subtract(1.0, pixels, out=pixels)
    return pixels, all_windows, chosen


def _modality_lut(dataset: Dataset, array: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return float32 values after the Modality LUT and whether one changed the values."""
    if "ModalityLUTSequence" in dataset:
        logger.info("Modality LUT: Modality LUT Sequence (0028,3000)")
        return np.asarray(apply_modality_lut(array, dataset), dtype=np.float32), True

    slope = float(dataset.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(dataset.get("RescaleIntercept", 0.0) or 0.0)
    stored = array.astype(np.float32)
    if slope == 1.0 and intercept == 0.0:
        return stored, False
    logger.info("Modality LUT: Rescale Slope %g, Rescale Intercept %g", slope, intercept)
    stored *= np.float32(slope)
    stored += np.float32(intercept)
    return stored, True


def _window_presets(
    dataset: Dataset,
) -> tuple[tuple[WindowPreset, ...], list[tuple[WindowPreset, tuple[int, np.ndarray, int]]]]:
    """Collect the valid Window Center/Width pairs and the VOI LUT Sequence items."""
    function = str(dataset.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        logger.warning("VOI LUT Function (0028,1056) %r is not defined by DICOM; using LINEAR", function)
        function = "LINEAR"

    centers = _as_list(dataset.get("WindowCenter"))
    widths = _as_list(dataset.get("WindowWidth"))
    explanations = [str(item) for item in _as_list(dataset.get("WindowCenterWidthExplanation"))]
    windows: list[WindowPreset] = []
    for position, (center, width) in enumerate(zip(centers, widths)):
        center, width = float(center), float(width)
        minimum = 1.0 if function == "LINEAR" else 0.0
        if not (np.isfinite(center) and np.isfinite(width)) or width < minimum or width <= 0:
            logger.warning(
                "Window Center/Width pair %d (%g, %g) is invalid for %s and was skipped",
                position, center, width, function,
            )
            continue
        explanation = explanations[position] if position < len(explanations) else ""
        windows.append(WindowPreset(center, width, explanation, function))

    luts: list[tuple[WindowPreset, tuple[int, np.ndarray, int]]] = []
    for item in dataset.get("VOILUTSequence", []):
        descriptor = _as_list(item.get("LUTDescriptor"))
        if len(descriptor) != 3 or "LUTData" not in item:
            logger.warning("a VOI LUT Sequence item lacks LUT Descriptor or LUT Data and was skipped")
            continue
        entries = int(descriptor[0]) or 65536
        first_mapped, bits = int(descriptor[1]), int(descriptor[2])
        table = _lut_data(item["LUTData"].value, bits)[:entries]
        preset = WindowPreset(
            center=first_mapped + len(table) / 2.0,
            width=float(len(table)),
            explanation=str(item.get("LUTExplanation", "") or ""),
            function="LUT",
        )
        luts.append((preset, (first_mapped, table, bits)))
    return tuple(windows), luts


def _lut_data(value: Any, bits: int) -> np.ndarray:
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(value, dtype=np.uint8 if bits <= 8 else "<u2")
    return np.asarray(_as_list(value), dtype=np.int64)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def _colour(
    dataset: Dataset, array: np.ndarray, photometric: str, decoded_photometric: str, bits_stored: int
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a colour frame into RGB float32 in [0, 1] and its luminance."""
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(array, dataset)
        except (ValueError, KeyError, AttributeError) as error:
            raise ImageReadError(
                f"the PALETTE COLOR lookup tables are missing or invalid ({error}); the file is corrupt"
            ) from error
        scale = float(np.iinfo(rgb.dtype).max) if rgb.dtype.kind in "ui" else 1.0
        logger.info("colour: PALETTE COLOR through the palette LUTs (%s)", rgb.dtype)
    else:
        rgb = array
        if decoded_photometric.startswith("YBR_FULL"):
            rgb = convert_color_space(rgb, decoded_photometric, "RGB")
            logger.info("colour: converted %s to RGB", decoded_photometric)
        elif decoded_photometric != "RGB":
            raise UnsupportedImageError(
                f"Photometric Interpretation (0028,0004) {photometric} decoded as {decoded_photometric} "
                "cannot be converted to RGB; export the image as RGB or MONOCHROME2"
            )
        else:
            logger.info("colour: %s decoded as RGB by pydicom, no further conversion", photometric)
        scale = float(2**bits_stored - 1)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise UnsupportedImageError(
            f"expected a (rows, columns, 3) colour frame for {photometric}, got shape {rgb.shape}; "
            "the Samples per Pixel (0028,0002) and Photometric Interpretation disagree"
        )
    pixels = rgb.astype(np.float32)
    pixels /= np.float32(scale)
    np.clip(pixels, 0.0, 1.0, out=pixels)
    stored = pixels @ LUMA_WEIGHTS
    return pixels, stored.astype(np.float32, copy=False)


def _warnings(dataset: Dataset) -> list[str]:
    messages = []
    modality = str(dataset.get("Modality", "")).strip().upper()
    if modality not in EXPECTED_MODALITIES:
        messages.append(
            f"Modality (0008,0060) is {modality or 'empty'}, not MG or US; mammograms often arrive as "
            "RG, CR or Secondary Capture, so the image was read, but check it is a mammogram or ultrasound"
        )
    intent = str(dataset.get("PresentationIntentType", "")).strip().upper()
    if intent == "FOR PROCESSING":
        messages.append(
            "Presentation Intent Type (0008,0068) is FOR PROCESSING: raw detector data not meant for "
            "display or for the model, which was trained on FOR PRESENTATION images; request the "
            "FOR PRESENTATION version"
        )
    for message in messages:
        logger.warning(message)
    return messages


def _laterality(dataset: Dataset) -> str:
    candidates = [dataset.get("ImageLaterality"), dataset.get("Laterality")]
    for group in dataset.get("SharedFunctionalGroupsSequence", []):
        for anatomy in group.get("FrameAnatomySequence", []):
            candidates.append(anatomy.get("FrameLaterality"))
    for value in candidates:
        text = str(value or "").strip().upper()
        if text in ("L", "R"):
            return text
    return "unknown"


def _view(dataset: Dataset) -> str:
    view = str(dataset.get("ViewPosition", "") or "").strip().upper()
    if view:
        return view
    meanings = {"cranio-caudal": "CC", "medio-lateral oblique": "MLO", "medio-lateral": "ML",
                "latero-medial": "LM"}
    for item in dataset.get("ViewCodeSequence", []):
        meaning = str(item.get("CodeMeaning", "")).strip().lower()
        if meaning in meanings:
            return meanings[meaning]
    return ""


def _pixel_spacing(dataset: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _as_list(dataset.get(keyword))
        if len(values) == 2:
            try:
                row, column = float(values[0]), float(values[1])
            except (TypeError, ValueError):
                continue
            if row > 0 and column > 0:
                return row, column
    return None
