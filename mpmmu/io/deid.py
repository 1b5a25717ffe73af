"""De-identified header summary of a DICOM dataset, built from an allow-list.

Only the attributes named in :data:`SUMMARY_KEYWORDS` are copied, so a header summary can never
carry PatientName, PatientID, PatientBirthDate, AccessionNumber or any other attribute that the
list does not name, including private tags. Sequences are never copied as a whole.
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pydicom.valuerep import DSfloat, IS

logger = logging.getLogger(__name__)

#: Attributes that describe the image and the acquisition device, never the patient or the visit.
SUMMARY_KEYWORDS: tuple[str, ...] = (
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "ViewPosition",
    "ImageLaterality",
    "Laterality",
    "PresentationIntentType",
    "ImageType",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "PresentationLUTShape",
    "LossyImageCompression",
    "BurnedInAnnotation",
    "DetectorType",
    "KVP",
    "Exposure",
    "CompressionForce",
    "BodyPartThickness",
)


def _plain_value(value: Any) -> Any:
    """Convert a pydicom value to str, int, float or a list of them, for JSON output."""
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain_value(item) for item in value]
    if isinstance(value, UID):
        return str(value)
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, (DSfloat, float)):
        return float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes):
        return None
    return str(value)


def summarize_header(dataset: Dataset, transfer_syntax: UID | None) -> dict[str, Any]:
    """Build the de-identified header summary of ``dataset``.

    Parameters
    ----------
    dataset : pydicom.dataset.Dataset
        The parsed file.
    transfer_syntax : pydicom.uid.UID or None
        The transfer syntax the pixels were decoded with; None when the file had none.

    Returns
    -------
    dict of str to Any
        Allow-listed keywords that are present and non-empty, plus ``TransferSyntax`` and
        ``SOPClass`` as names ("JPEG 2000 Image Compression", "Digital Mammography X-Ray Image
        Storage - For Presentation"), never as the instance's own UIDs.
    """
    summary: dict[str, Any] = {}
    for keyword in SUMMARY_KEYWORDS:
        element = dataset.get(keyword)
        if element is None or element == "":
            continue
        plain = _plain_value(element)
        if plain is None or plain == "" or plain == []:
            continue
        summary[keyword] = plain

    if transfer_syntax is not None:
        summary["TransferSyntax"] = transfer_syntax.name
    sop_class = dataset.get("SOPClassUID")
    if sop_class:
        summary["SOPClass"] = UID(str(sop_class)).name
    return summary
