"""Test inputs for the app tests: the app path, PNG and DICOM bytes with a known patient name."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = str(REPO_ROOT / "app.py")

#: A name that must never reach the page or a report.
PATIENT_NAME = "Secretname^Jane"
PATIENT_ID = "ID-0042-SECRET"


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a float image in [0, 1] as 8-bit PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(np.round(np.clip(image, 0.0, 1.0) * 255.0))).save(buffer, format="PNG")
    return buffer.getvalue()


def dicom_bytes(image: np.ndarray, *, laterality: str = "L", view: str = "CC") -> bytes:
    """Encode a float image as a 12-bit MONOCHROME2 mammogram DICOM with a window preset and a name."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "MG"
    dataset.PatientName = PATIENT_NAME
    dataset.PatientID = PATIENT_ID
    dataset.ImageLaterality = laterality
    dataset.ViewPosition = view
    pixels = np.uint16(np.round(np.clip(image, 0.0, 1.0) * 4095.0))
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelRepresentation = 0
    dataset.WindowCenter = 2048
    dataset.WindowWidth = 4096
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()
