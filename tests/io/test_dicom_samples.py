"""read_image on the real DICOM sample files, one test per pitfall they carry."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut, apply_modality_lut

from mpmmu.errors import ImageReadError, NoPixelDataError
from mpmmu.io import SUMMARY_KEYWORDS, apply_window, read_image, window_image


def test_read_image_mammogram_secondary_capture(dicom_samples_dir):
    record = read_image(dicom_samples_dir / "WG04_MG1_J2KI.dcm")

    assert record.shape == (4664, 3064)
    assert record.pixels.dtype == np.float32
    assert record.stored.dtype == np.float32
    assert record.bits_stored == 12
    assert record.modality == "RG"
    assert record.laterality == "L"  # from Laterality (0020,0060); the file has no ImageLaterality
    assert record.view == "MLO"
    assert record.header["SOPClass"] == "Secondary Capture Image Storage"
    assert any("not MG or US" in warning for warning in record.warnings)
    assert record.pixels.min() >= 0.0
    assert record.pixels.max() <= 1.0


def test_read_image_monochrome1_inverted_once(dicom_samples_dir):
    path = dicom_samples_dir / "RG3_J2KI.dcm"
    record = read_image(path)
    raw = pydicom.dcmread(path).pixel_array

    assert record.photometric_interpretation == "MONOCHROME1"
    # The collimated border received no exposure: lowest stored value, displayed white.
    assert raw[0, 0] == raw.min()
    assert record.pixels[0, 0] == pytest.approx(1.0)
    window = record.windows[record.window_index]
    np.testing.assert_allclose(record.pixels, 1.0 - window_image(record.stored, window.center, window.width), atol=1e-6)


def test_read_image_multi_valued_window_and_sign_mismatch(dicom_samples_dir):
    path = dicom_samples_dir / "J2K_pixelrep_mismatch.dcm"
    default = read_image(path)
    third = read_image(path, window_index=2)

    assert [(w.center, w.width) for w in default.windows] == [(40.0, 100.0), (40.0, 100.0), (40.0, 200.0)]
    assert default.window_index == 0
    np.testing.assert_allclose(third.pixels, apply_window(default, 40.0, 200.0), atol=1e-6)
    # The codestream is unsigned but PixelRepresentation is signed: CT air must stay near -1000 HU.
    assert default.stored.min() < -900
    assert default.stored.max() < 4096


def test_read_image_modality_lut_sequence(dicom_samples_dir):
    path = dicom_samples_dir / "mlut_18.dcm"
    record = read_image(path)
    dataset = pydicom.dcmread(path)
    expected = apply_modality_lut(dataset.pixel_array, dataset)

    np.testing.assert_array_equal(record.stored, expected.astype(np.float32))
    assert not np.array_equal(record.stored, dataset.pixel_array.astype(np.float32))


def test_read_image_ybr_cine_converted_once(dicom_samples_dir):
    path = dicom_samples_dir / "examples_ybr_color.dcm"
    record = read_image(path)

    assert record.frame_count == 30
    assert record.frame_index == 15
    assert record.pixels.shape == (240, 320, 3)
    # Ultrasound is mostly grey; a second YBR -> RGB conversion would tint every grey pixel.
    spread = record.pixels.max(axis=2) - record.pixels.min(axis=2)
    assert np.mean(spread < 0.05) > 0.9


def test_read_image_cine_any_frame(dicom_samples_dir):
    path = dicom_samples_dir / "examples_ybr_color.dcm"
    first = read_image(path, frame=0)
    last = read_image(path, frame=29)
    assert (first.frame_index, last.frame_index) == (0, 29)
    assert not np.array_equal(first.pixels, last.pixels)


def test_read_image_jpeg2000_ybr_rct_colour(dicom_samples_dir):
    record = read_image(dicom_samples_dir / "US1_J2KR.dcm")
    assert record.pixels.shape == (480, 640, 3)
    assert record.header["TransferSyntax"] == "JPEG 2000 Image Compression (Lossless Only)"
    # Colour Doppler: strongly red-orange pixels exist, which only a correct RGB conversion keeps.
    red = (record.pixels[..., 0] > 0.7) & (record.pixels[..., 2] < 0.3)
    assert red.sum() > 100


def test_read_image_palette_color(dicom_samples_dir):
    path = dicom_samples_dir / "examples_palette.dcm"
    record = read_image(path)
    dataset = pydicom.dcmread(path)
    expected = apply_color_lut(dataset.pixel_array, dataset) / 65535.0

    assert record.is_color
    np.testing.assert_allclose(record.pixels, expected, atol=1e-6)


def test_read_image_jpeg_lossless_ultrasound(dicom_samples_dir):
    record = read_image(dicom_samples_dir / "JPGLosslessP14SV1_1s_1f_8b.dcm")
    assert record.shape == (768, 1024)
    assert record.modality == "US"
    assert record.presentation_intent == "FOR PRESENTATION"
    assert record.warnings == ()


@pytest.mark.parametrize(
    ("name", "colour"),
    [("breast_us_rgb_toshiba_1.dcm", True), ("breast_us_mono2_2.dcm", False), ("breast_us_rgb_3.dcm", True)],
)
def test_read_image_breast_ultrasound_exports(dicom_samples_dir, name, colour):
    record = read_image(dicom_samples_dir / name)
    assert record.modality == "US"
    assert record.is_color == colour
    assert record.pixels.dtype == np.float32


def test_read_image_raises_truncated_pixel_data(dicom_samples_dir):
    with pytest.raises(ImageReadError, match=r"truncated: 8130 bytes.* need 8192"):
        read_image(dicom_samples_dir / "MR_truncated.dcm")


def test_read_image_raises_structured_report(dicom_samples_dir):
    with pytest.raises(NoPixelDataError, match=r"no Pixel Data \(7FE0,0010\).*Basic Text SR"):
        read_image(dicom_samples_dir / "reportsi.dcm")


def test_read_image_no_meta_policy(dicom_samples_dir):
    data = (dicom_samples_dir / "no_meta.dcm").read_bytes()
    # The file has a stray byte before its first element; the reader does not search for an offset.
    with pytest.raises(ImageReadError, match="neither a DICOM file nor a PNG, JPEG, TIFF, BMP or PGM image"):
        read_image(data)
    # The same dataset starting at its first element is read by the forced parse.
    record = read_image(data[1:])
    assert record.modality == "CT"
    assert record.shape == (128, 128)


def test_read_image_extensionless_bytes_and_filelike(dicom_samples_dir, tmp_path):
    source = dicom_samples_dir / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    renamed = tmp_path / "upload"
    shutil.copyfile(source, renamed)
    data = source.read_bytes()

    records = [read_image(renamed), read_image(data), read_image(io.BytesIO(data)), read_image(str(source))]

    assert len({record.sha256 for record in records}) == 1
    for record in records[1:]:
        np.testing.assert_array_equal(record.pixels, records[0].pixels)


def test_read_image_samples_header_has_no_phi(dicom_samples_dir):
    for path in sorted(dicom_samples_dir.glob("*.dcm")):
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        try:
            record = read_image(path)
        except ImageReadError:
            continue
        text = json.dumps(record.header, ensure_ascii=False)
        assert set(record.header) <= set(SUMMARY_KEYWORDS) | {"TransferSyntax", "SOPClass"}
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
            value = str(dataset.get(keyword, "") or "")
            if len(value) >= 3:
                assert value not in text, f"{keyword} of {path.name} leaked into the header summary"
