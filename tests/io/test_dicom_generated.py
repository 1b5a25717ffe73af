"""read_image on tiny generated DICOM files, each named by the property it exercises."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset as write_bare_dataset

from mpmmu.errors import ImageReadError, ImageTooLargeError, UnsupportedImageError
from mpmmu.io import SUMMARY_KEYWORDS, apply_window, read_image, window_image

from dicom_builders import PHI_VALUES, make_dataset, write_dataset

GRADIENT_12BIT = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 16)  # 0 .. 4080


def test_read_image_mono1_12bit_l_cc(dicom_factory):
    path = dicom_factory(
        "MONO1_12BIT_L_CC", GRADIENT_12BIT, photometric="MONOCHROME1", bits_stored=12,
        ImageLaterality="L", ViewPosition="CC", WindowCenter=2048, WindowWidth=4096,
        PresentationIntentType="FOR PRESENTATION",
    )
    record = read_image(path)

    assert record.pixels.dtype == np.float32
    assert record.stored.dtype == np.float32
    assert record.photometric_interpretation == "MONOCHROME1"
    assert record.bits_stored == 12
    assert (record.laterality, record.view, record.modality) == ("L", "CC", "MG")
    assert record.warnings == ()
    # MONOCHROME1: the lowest stored value is displayed white.
    assert record.pixels[0, 0] == pytest.approx(1.0)
    assert record.pixels[-1, -1] < 0.01
    expected = 1.0 - window_image(record.stored, 2048, 4096, "LINEAR")
    np.testing.assert_allclose(record.pixels, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"ImageLaterality": "L", "Laterality": "R"}, "L"),
        ({"Laterality": "R"}, "R"),
        ({"ImageLaterality": "B"}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_read_image_laterality_order(dicom_factory, attributes, expected):
    path = dicom_factory("LATERALITY", GRADIENT_12BIT, bits_stored=12, **attributes)
    assert read_image(path).laterality == expected


def test_read_image_sigmoid_voi(dicom_factory):
    path = dicom_factory(
        "SIGMOID_VOI", GRADIENT_12BIT, bits_stored=12,
        WindowCenter=2000, WindowWidth=1000, VOILUTFunction="SIGMOID",
    )
    record = read_image(path)

    assert record.windows[0].function == "SIGMOID"
    expected = 1.0 / (1.0 + np.exp(-4.0 * (record.stored.astype(np.float64) - 2000.0) / 1000.0))
    np.testing.assert_allclose(record.pixels, expected, atol=1e-5)
    assert window_image(np.array([2000.0]), 2000, 1000, "SIGMOID")[0] == pytest.approx(0.5)


def test_read_image_linear_exact_voi(dicom_factory):
    path = dicom_factory(
        "LINEAR_EXACT_VOI", GRADIENT_12BIT, bits_stored=12,
        WindowCenter=1000, WindowWidth=2000, VOILUTFunction="LINEAR_EXACT",
    )
    record = read_image(path)
    expected = np.clip((record.stored - 1000.0) / 2000.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(record.pixels, expected, atol=1e-6)


def test_read_image_multi_window(dicom_factory):
    path = dicom_factory(
        "MULTI_WINDOW", GRADIENT_12BIT, bits_stored=12,
        WindowCenter=[1000, 3000], WindowWidth=[500, 2000],
        WindowCenterWidthExplanation=["SOFT", "DENSE"],
    )
    default = read_image(path)
    second = read_image(path, window_index=1)

    assert [w.explanation for w in default.windows] == ["SOFT", "DENSE"]
    assert default.window_index == 0
    np.testing.assert_allclose(default.pixels, window_image(default.stored, 1000, 500), atol=1e-6)
    assert second.window_index == 1
    np.testing.assert_allclose(second.pixels, window_image(second.stored, 3000, 2000), atol=1e-6)


def test_read_image_raises_window_index_out_of_range(dicom_factory):
    path = dicom_factory("MULTI_WINDOW", GRADIENT_12BIT, bits_stored=12, WindowCenter=[1000, 3000], WindowWidth=[500, 2000])
    with pytest.raises(UnsupportedImageError, match="window_index=5 .* 2 VOI preset"):
        read_image(path, window_index=5)


def _voi_lut_item(first_mapped: int, table: np.ndarray, bits: int) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [len(table), first_mapped, bits])  # LUT Descriptor
    item.LUTExplanation = "TEST LUT"
    item.add_new(0x00283006, "US", [int(value) for value in table])  # LUT Data
    return item


def test_read_image_voi_lut_sequence(dicom_factory):
    table = (np.arange(1024) * 4).astype(np.uint16)  # 0 .. 4092 over a 12-bit output
    path = dicom_factory("VOI_LUT_SEQUENCE", GRADIENT_12BIT, bits_stored=12, VOILUTSequence=[_voi_lut_item(1000, table, 12)])
    record = read_image(path)

    assert record.windows[0].function == "LUT"
    assert record.windows[0].explanation == "TEST LUT"
    index = np.clip(record.stored.astype(np.int64) - 1000, 0, len(table) - 1)
    np.testing.assert_allclose(record.pixels, table[index] / 4095.0, atol=1e-6)


def test_read_image_voi_lut_sequence_after_windows(dicom_factory):
    table = np.arange(256, dtype=np.uint16)
    path = dicom_factory(
        "WINDOW_AND_VOI_LUT", GRADIENT_12BIT, bits_stored=12,
        WindowCenter=2048, WindowWidth=4096, VOILUTSequence=[_voi_lut_item(0, table, 8)],
    )
    default = read_image(path)
    lut = read_image(path, window_index=1)

    assert [w.function for w in default.windows] == ["LINEAR", "LUT"]
    assert default.window_index == 0
    assert lut.window_index == 1
    assert lut.pixels[-1, -1] == pytest.approx(1.0)
    assert default.pixels[-1, -1] < 1.0


def test_read_image_rescale_slope(dicom_factory):
    path = dicom_factory(
        "RESCALE_SLOPE", GRADIENT_12BIT, bits_stored=12,
        RescaleSlope=2.5, RescaleIntercept=-1024, WindowCenter=0, WindowWidth=4000,
    )
    record = read_image(path)

    assert record.stored.dtype == np.float32
    np.testing.assert_allclose(record.stored, GRADIENT_12BIT * 2.5 - 1024)


def test_read_image_planar_config_1(dicom_factory):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    dataset = make_dataset(rgb, photometric="RGB", modality="US")
    dataset.PlanarConfiguration = 1
    dataset.PixelData = np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)

    record = read_image(buffer.getvalue())

    assert record.is_color
    np.testing.assert_allclose(record.pixels, rgb / 255.0, atol=1e-6)


def test_read_image_big_endian(tmp_path):
    dataset = make_dataset(GRADIENT_12BIT, bits_stored=12)
    dataset.PixelData = GRADIENT_12BIT.astype(">u2").tobytes()  # pydicom writes OW bytes unswapped
    path = write_dataset(dataset, tmp_path / "BIG_ENDIAN.dcm", big_endian=True)

    record = read_image(path)

    assert record.header["TransferSyntax"] == "Explicit VR Big Endian"
    np.testing.assert_array_equal(record.stored, GRADIENT_12BIT)


def test_read_image_for_processing_warns(dicom_factory):
    path = dicom_factory("FOR_PROCESSING", GRADIENT_12BIT, bits_stored=12, PresentationIntentType="FOR PROCESSING")
    record = read_image(path)
    assert record.presentation_intent == "FOR PROCESSING"
    assert any("FOR PROCESSING" in warning for warning in record.warnings)


@pytest.mark.parametrize("modality", ["RG", "CR", "OT"])
def test_read_image_other_modality_warns(dicom_factory, modality):
    record = read_image(dicom_factory(f"MODALITY_{modality}", GRADIENT_12BIT, bits_stored=12, modality=modality))
    assert record.modality == modality
    assert any("not MG or US" in warning for warning in record.warnings)


def test_read_image_header_has_no_phi(dicom_factory):
    path = dicom_factory(
        "PHI_PLANTED", GRADIENT_12BIT, bits_stored=12, ImageLaterality="R", ViewPosition="MLO",
        Manufacturer="ACME", PixelSpacing=[0.07, 0.07], StudyDate="20240101",
    )
    record = read_image(path)
    text = json.dumps(record.header)

    for keyword, value in PHI_VALUES.items():
        assert keyword not in record.header
        assert value not in text
    assert "20240101" not in text
    assert set(record.header) <= set(SUMMARY_KEYWORDS) | {"TransferSyntax", "SOPClass"}
    assert record.header["Manufacturer"] == "ACME"
    assert record.pixel_spacing == (0.07, 0.07)
    assert record.header["SOPClass"].startswith("Digital Mammography")


def test_read_image_multiframe_middle_default(dicom_factory):
    frames = np.stack([np.full((4, 6), 10 * index, dtype=np.uint8) for index in range(5)])
    path = dicom_factory("CINE_5_FRAMES", frames, modality="US")

    default = read_image(path)
    last = read_image(path, frame=4)

    assert default.frame_count == 5
    assert default.frame_index == 2
    assert np.all(default.stored == 20)
    assert last.frame_index == 4
    assert np.all(last.stored == 40)


def test_read_image_raises_frame_out_of_range(dicom_factory):
    frames = np.zeros((3, 4, 4), dtype=np.uint8)
    with pytest.raises(UnsupportedImageError, match="frame 3 .* 3 frame"):
        read_image(dicom_factory("CINE_3_FRAMES", frames, modality="US"), frame=3)


def test_read_image_no_voi_8bit_uses_nominal_range(dicom_factory):
    image = np.full((4, 4), 100, dtype=np.uint8)
    image[0, 0] = 120
    record = read_image(dicom_factory("NO_VOI_8BIT", image, modality="US"))
    assert record.window_index is None
    assert record.pixels[1, 1] == pytest.approx(100 / 255)


def test_read_image_no_voi_12bit_uses_frame_range(dicom_factory):
    record = read_image(dicom_factory("NO_VOI_12BIT", GRADIENT_12BIT, bits_stored=12))
    assert record.windows == ()
    assert record.pixels.min() == 0.0
    assert record.pixels.max() == 1.0


def test_read_image_raises_zero_rows(dicom_factory):
    dataset = make_dataset(GRADIENT_12BIT, bits_stored=12)
    dataset.Rows = 0
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"Rows \(0028,0010\).* 0 x 16"):
        read_image(buffer.getvalue())


def test_read_image_raises_too_many_pixels(dicom_factory):
    path = dicom_factory("LARGE", GRADIENT_12BIT, bits_stored=12)
    with pytest.raises(ImageTooLargeError, match="DICOM header declares .* = 256 pixels, above mpmmu's limit of 100 pixels"):
        read_image(path, max_pixels=100)


def test_read_image_bare_dataset_without_meta():
    dataset = make_dataset(GRADIENT_12BIT, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_bare_dataset(buffer, dataset)  # no preamble, no 'DICM', no File Meta Information
    data = buffer.getvalue()
    assert data[128:132] != b"DICM"

    record = read_image(data)

    assert record.source_format == "dicom"
    np.testing.assert_array_equal(record.stored, GRADIENT_12BIT)


def test_apply_window_matches_default_pixels(dicom_factory):
    path = dicom_factory("MONO1_WINDOW", GRADIENT_12BIT, photometric="MONOCHROME1", bits_stored=12, WindowCenter=1500, WindowWidth=800)
    record = read_image(path)
    np.testing.assert_allclose(apply_window(record, 1500, 800), record.pixels, atol=1e-6)
    narrower = apply_window(record, 1500, 100)
    assert narrower.dtype == np.float32
    assert narrower.min() >= 0.0
    assert narrower.max() <= 1.0


def test_apply_window_colour_per_channel(dicom_factory):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 128, 0)
    record = read_image(dicom_factory("RGB_SMALL", rgb, photometric="RGB", modality="US"))
    windowed = apply_window(record, 0.5, 0.5, "LINEAR_EXACT")
    assert windowed.shape == (2, 2, 3)
    np.testing.assert_allclose(windowed[0, 0], [1.0, 0.5 + (128 / 255 - 0.5) / 0.5, 0.0], atol=1e-5)


@pytest.mark.parametrize(("width", "function"), [(0, "LINEAR"), (0.5, "LINEAR"), (0, "SIGMOID"), (-3, "LINEAR_EXACT")])
def test_apply_window_raises_invalid_width(dicom_factory, width, function):
    record = read_image(dicom_factory("WINDOW", GRADIENT_12BIT, bits_stored=12))
    with pytest.raises(UnsupportedImageError, match=r"Window Width \(0028,1051\) must be"):
        apply_window(record, 100, width, function)


def test_apply_window_raises_for_lut_function(dicom_factory):
    record = read_image(dicom_factory("WINDOW", GRADIENT_12BIT, bits_stored=12))
    with pytest.raises(UnsupportedImageError, match="window_index"):
        apply_window(record, 100, 100, "LUT")
