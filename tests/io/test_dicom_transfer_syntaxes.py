"""read_image across transfer syntaxes, on the test files bundled inside the pydicom wheel."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_builders import bundled_test_file

from mpmmu.errors import ImageReadError
from mpmmu.io import read_image


@pytest.mark.parametrize(
    ("name", "transfer_syntax"),
    [
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_bigendian.dcm", "Explicit VR Big Endian"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression"),
        ("MR_small_jp2klossless.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
        ("MR_small_implicit.dcm", "Implicit VR Little Endian"),
    ],
)
def test_read_image_lossless_syntaxes_match_uncompressed(name, transfer_syntax):
    reference = read_image(bundled_test_file("MR_small.dcm"))
    record = read_image(bundled_test_file(name))
    assert record.header["TransferSyntax"] == transfer_syntax
    np.testing.assert_array_equal(record.stored, reference.stored)


def test_read_image_jpeg_extended_12bit():
    record = read_image(bundled_test_file("JPGExtended.dcm"))
    assert record.header["TransferSyntax"] == "JPEG Extended (Process 2 and 4)"
    assert record.bits_stored == 12
    assert record.stored.max() > 255  # 12-bit samples survive decoding


def test_read_image_raises_corrupt_jpeg_extended():
    # JPEG-lossy.dcm has invalid scan parameters (pydicom ships JPGExtended.dcm as its fixed copy).
    with pytest.raises(ImageReadError, match="decoding the JPEG Extended .* failed"):
        read_image(bundled_test_file("JPEG-lossy.dcm"))


def test_read_image_jpeg_ls_near_lossless_16bit():
    record = read_image(bundled_test_file("JPEGLSNearLossless_16.dcm"))
    assert record.header["TransferSyntax"] == "JPEG-LS Lossy (Near-Lossless) Image Compression"
    assert record.bits_stored == 16


def test_read_image_deflated():
    record = read_image(bundled_test_file("image_dfl.dcm"))
    assert record.header["TransferSyntax"] == "Deflated Explicit VR Little Endian"
    assert record.shape == (512, 512)
    assert record.stored.max() > record.stored.min()


def test_read_image_big_endian_rgb_matches_little_endian():
    little = read_image(bundled_test_file("SC_rgb_small_odd.dcm"))
    big = read_image(bundled_test_file("SC_rgb_small_odd_big_endian.dcm"))
    np.testing.assert_array_equal(big.pixels, little.pixels)


def test_read_image_uncompressed_ybr_full_422():
    record = read_image(bundled_test_file("SC_ybr_full_422_uncompressed.dcm"))
    reference = read_image(bundled_test_file("SC_rgb_jpeg_gdcm.dcm"))  # the same test card as RGB
    assert record.pixels.shape == reference.pixels.shape == (100, 100, 3)
    assert np.abs(record.pixels - reference.pixels).mean() < 0.05
