"""read_image on PNG, JPEG, TIFF, PGM and BMP input, and on input that is no image at all."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mpmmu.errors import ImageReadError, ImageTooLargeError, MpmmuError, UnsupportedImageError
from mpmmu.io import apply_window, read_image


def _encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A 1 x 1 greyscale PNG whose IHDR claims ``width`` x ``height`` (CRC fixed up)."""
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    ihdr_start = 8 + 8  # signature, then chunk length and type
    data[ihdr_start:ihdr_start + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:ihdr_start + 13]))
    data[ihdr_start + 13:ihdr_start + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_read_image_png_16bit_keeps_full_range():
    ramp = np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)
    record = read_image(_encode(Image.fromarray(ramp), "PNG"))

    assert record.source_format == "png"
    assert record.bits_stored == 16
    assert record.pixels.dtype == np.float32
    assert record.pixels.min() == 0.0
    assert record.pixels.max() == 1.0
    assert len(np.unique(record.pixels)) > 256  # not squeezed through 8 bits
    np.testing.assert_array_equal(record.stored, ramp.astype(np.float32))


def test_read_image_png_8bit():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    record = read_image(_encode(Image.fromarray(image), "PNG"))
    assert record.bits_stored == 8
    np.testing.assert_allclose(record.pixels, image / 255.0, atol=1e-7)
    assert record.photometric_interpretation == "MONOCHROME2"


def test_read_image_jpeg_exif_orientation():
    image = np.zeros((20, 40), dtype=np.uint8)  # 40 wide, 20 high
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # display needs a 90 degree clockwise turn
    record = read_image(_encode(Image.fromarray(image), "JPEG", exif=exif, quality=95))

    assert record.source_format == "jpeg"
    assert record.shape == (40, 20)
    assert record.header["ExifOrientation"] == 6
    # Turned clockwise, the left half becomes the top half.
    assert record.pixels[:15].mean() > 0.9
    assert record.pixels[25:].mean() < 0.1


def test_read_image_tiff_16bit_and_pages():
    pages = [Image.fromarray(np.full((8, 8), 1000 * (index + 1), dtype=np.uint16)) for index in range(3)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    data = buffer.getvalue()

    first = read_image(data)
    third = read_image(data, frame=2)

    assert first.source_format == "tiff"
    assert first.frame_count == 3
    assert np.all(first.stored == 1000)
    assert np.all(third.stored == 3000)
    with pytest.raises(UnsupportedImageError, match="frame 3 .* 3 frame"):
        read_image(data, frame=3)


def test_read_image_pgm_16bit():
    image = np.array([[0, 30000], [60000, 65535]], dtype=np.uint16)
    record = read_image(_encode(Image.fromarray(image), "PPM"))
    assert record.source_format == "pgm"
    assert record.bits_stored == 16
    np.testing.assert_allclose(record.pixels, image / 65535.0, atol=1e-6)


def test_read_image_bmp_rgb():
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    record = read_image(_encode(Image.fromarray(rgb), "BMP"))
    assert record.source_format == "bmp"
    assert record.is_color
    np.testing.assert_allclose(record.pixels[0, 0], [200 / 255, 0, 0], atol=1e-6)
    assert record.stored.shape == (4, 5)


def test_read_image_path_bytes_filelike_agree(tmp_path):
    data = _encode(Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)), "PNG")
    path = tmp_path / "scan.dat"  # the extension plays no part in detection
    path.write_bytes(data)

    records = [read_image(path), read_image(data), read_image(io.BytesIO(data)), read_image(bytearray(data))]

    assert len({record.sha256 for record in records}) == 1
    for record in records[1:]:
        np.testing.assert_array_equal(record.pixels, records[0].pixels)


def test_read_image_raises_decompression_bomb():
    bomb = _png_with_size(200_000, 200_000)  # 40 G pixels declared in a tiny file
    assert len(bomb) < 100
    with pytest.raises(ImageTooLargeError) as caught:
        read_image(bomb)
    message = str(caught.value)
    assert "declares 200000 x 200000 = 40000000000 pixels, above mpmmu's limit of 60000000 pixels" in message
    assert "downsample or crop" in message
    assert "decompression bomb DOS attack" not in message  # Pillow's own text stays out


def test_read_image_raises_oversized_image():
    data = _encode(Image.new("L", (100, 80)), "PNG")
    with pytest.raises(ImageTooLargeError, match="declares 100 x 80 = 8000 pixels, above mpmmu's limit of 5000 pixels, so the file was not decoded"):
        read_image(data, max_pixels=5000)


def test_read_image_raises_oversized_input(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_encode(Image.new("L", (100, 80)), "PNG"))
    with pytest.raises(ImageTooLargeError, match="big.png is .* bytes, above mpmmu's limit of 10 bytes"):
        read_image(path, max_bytes=10)


def test_read_image_raises_zero_size_png():
    with pytest.raises(ImageReadError, match="PNG signature but its header is invalid"):
        read_image(_png_with_size(0, 0))


def test_read_image_raises_truncated_png():
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)), "PNG")
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        read_image(data[: len(data) // 2])


def test_read_image_raises_unsupported_format():
    with pytest.raises(UnsupportedImageError, match="GIF images are not supported"):
        read_image(_encode(Image.new("L", (4, 4)), "GIF"))


def test_read_image_raises_window_index_on_raster():
    with pytest.raises(UnsupportedImageError, match="no VOI presets"):
        read_image(_encode(Image.new("L", (4, 4)), "PNG"), window_index=0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (np.random.default_rng(1).bytes(4096), "the input \\(4096 bytes\\) is neither a DICOM file nor a PNG"),
        (b"Patient report\nThis is a plain text file, not an image.\n" * 20, "neither a DICOM file nor a PNG"),
        (b"\x00" * 128 + b"DICM" + b"\xff" * 40, "DICOM"),
    ],
    ids=["empty", "random", "text", "dicm_garbage"],
)
def test_read_image_raises_not_an_image(data, message):
    with pytest.raises(ImageReadError, match=message):
        read_image(data)


def test_read_image_names_file_in_error(tmp_path):
    path = tmp_path / "scan.bin"
    path.write_bytes(b"not an image at all" * 10)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith("scan.bin (190 bytes) is neither a DICOM file nor a PNG, JPEG, TIFF, BMP or PGM image")
    assert str(tmp_path) not in message
    assert "DICM" not in message


def test_read_image_raises_missing_path(tmp_path):
    with pytest.raises(ImageReadError, match="no file at"):
        read_image(tmp_path / "absent.png")


def test_read_image_raises_text_mode_upload(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with path.open("r") as handle, pytest.raises(ImageReadError, match="binary mode"):
        read_image(handle)


def test_read_image_random_inputs_raise_only_mpmmu_errors():
    rng = np.random.default_rng(7)
    png = _encode(Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)), "PNG")
    for length in (1, 3, 16, 131, 200, 1000):
        for prefix in (b"", png[:16], b"\x00" * 128 + b"DICM"):
            data = prefix + rng.bytes(length)
            try:
                read_image(data)
            except MpmmuError:
                pass


def test_apply_window_raster_greyscale():
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    record = read_image(_encode(Image.fromarray(ramp), "PNG"))
    windowed = apply_window(record, 32768, 16384)
    assert windowed.min() == 0.0
    assert windowed.max() == 1.0
    assert 0.4 < windowed[8, 0] < 0.6


def test_read_image_bomb_above_pillow_limit():
    # A max_pixels above Pillow's own bound leaves Pillow's check in charge, so the error names it.
    pillow_limit = 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError, match=f"above Pillow's decompression-bomb limit of {pillow_limit} pixels"):
        read_image(_png_with_size(200_000, 200_000), max_pixels=10**12)
