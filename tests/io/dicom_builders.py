"""Builders of tiny DICOM datasets with named properties, for the io tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DigitalMammographyXRayImageStorageForPresentation,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)

#: Direct identifiers planted in every generated file; none may appear in a header summary.
PHI_VALUES = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0042-XYZ",
    "PatientBirthDate": "19610203",
    "AccessionNumber": "ACC-998877",
    "InstitutionName": "St Example Hospital",
}


def make_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    modality: str = "MG",
    **attributes: Any,
) -> Dataset:
    """Build a DICOM dataset around ``pixels`` (rows, columns[, 3]) or (frames, rows, columns[, 3])."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.Modality = modality
    for keyword, value in PHI_VALUES.items():
        setattr(dataset, keyword, value)
    if bits_stored is None:
        bits_stored = 8 if pixels.dtype.itemsize == 1 else 16
    dataset.set_pixel_data(pixels, photometric, bits_stored)
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return dataset


def write_dataset(dataset: Dataset, path: Path, *, big_endian: bool = False) -> Path:
    """Write ``dataset`` as a DICOM Part 10 file (with preamble and File Meta Information)."""
    if big_endian:
        dataset.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        dataset.save_as(path, implicit_vr=False, little_endian=False, enforce_file_format=True)
    else:
        dataset.save_as(path, enforce_file_format=True)
    return path


def bundled_test_file(name: str) -> Path:
    """Return a test file shipped inside the pydicom wheel; skip if absent, never download."""
    import pytest
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not bundled with the installed pydicom")
    return Path(path)
