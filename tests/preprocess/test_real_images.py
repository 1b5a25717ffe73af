"""Breast and B-mode region detection on real mini-MIAS, BUS-BRA and DICOM images."""

from __future__ import annotations

import numpy as np
import pytest
from preprocess_helpers import load_dicom_pixels, load_png, make_record
from scipy import ndimage

from mpmmu.preprocess import map_to_original, preprocess

# Bright boxes (rows, columns) of film labels burnt into mini-MIAS images, read off the images.
MINI_MIAS_LABELS = {
    "mdb003": (slice(1, 70), slice(211, 309)),
    "mdb005": (slice(0, 101), slice(188, 341)),
}


@pytest.mark.parametrize("name", sorted(MINI_MIAS_LABELS))
def test_mini_mias_label_removed(mini_mias_dir, name):
    image = load_png(mini_mias_dir / "images" / f"{name}.png")
    rows, cols = MINI_MIAS_LABELS[name]
    assert image[rows, cols].max() > 0.9

    result = preprocess(make_record(image), "mammography")

    assert result.mask is not None
    assert not result.mask[rows, cols].any()
    # Draw the model input back onto the original: nothing bright may remain off the breast.
    processed = map_to_original(result.display, result.transform)
    margin = int(np.ceil(3 / result.transform.scale))
    near_breast = ndimage.binary_dilation(result.mask, iterations=margin)
    assert processed[~near_breast].max() < 0.05


@pytest.mark.parametrize(("name", "flipped"), [("mdb001", True), ("mdb002", False), ("mdb011", True), ("mdb012", False), ("mdb151", True), ("mdb152", False)])
def test_mini_mias_laterality_inferred(mini_mias_dir, name, flipped):
    result = preprocess(make_record(load_png(mini_mias_dir / "images" / f"{name}.png")), "mammography")
    assert result.transform.flipped is flipped


def test_mini_mias_breast_crop_keeps_finding(mini_mias_dir):
    # mdb028: malignant circumscribed mass, centre (338, 314) from the bottom, radius 56.
    image = load_png(mini_mias_dir / "images" / "mdb028.png")
    result = preprocess(make_record(image), "mammography")
    x, y, w, h = result.transform.crop_box
    row = 1024 - 314
    assert x <= 338 < x + w
    assert y <= row < y + h
    assert result.mask[row, 338]


def test_wg04_mammogram_label_and_marker_removed(dicom_samples_dir):
    pixels = load_dicom_pixels(dicom_samples_dir / "WG04_MG1_J2KI.dcm")
    result = preprocess(make_record(pixels, "L"), "mammography")

    assert result.transform.flipped is False
    assert result.mask is not None
    # The "L MLO" film label sits at the top right and a black marker lower right. Both lie
    # well right of the breast, so the crop must end before them.
    x, _, w, _ = result.transform.crop_box
    assert x + w < 2300
    assert not result.mask[200:750, 2300:2850].any()
    assert not any("looks like" in message for message in result.warnings)


# Expected scan boxes (x0, y0, x1, y1), read off the images. The crop must lie within a few
# pixels of them, so that text above and rulers beside the scan are cut away.
DICOM_SCANS = {
    "breast_us_mono2_2.dcm": (0, 27, 604, 602),
    "breast_us_rgb_3.dcm": (22, 20, 453, 402),
    "breast_us_rgb_toshiba_1.dcm": (18, 18, 555, 398),
}


@pytest.mark.parametrize("name", sorted(DICOM_SCANS))
def test_dicom_ultrasound_cropped_to_scan(dicom_samples_dir, name):
    pixels = load_dicom_pixels(dicom_samples_dir / name)
    result = preprocess(make_record(pixels), "ultrasound")

    x, y, w, h = result.transform.crop_box
    x0, y0, x1, y1 = DICOM_SCANS[name]
    assert x >= x0 - 3
    assert y >= y0 - 3
    assert x + w <= x1 + 3
    assert y + h <= y1 + 3
    # At least 75% of the expected scan width and height are kept.
    assert w >= 0.75 * (x1 - x0)
    assert h >= 0.75 * (y1 - y0)
    assert not result.warnings


def test_dicom_colour_doppler_warned(dicom_samples_dir):
    pixels = load_dicom_pixels(dicom_samples_dir / "US1_J2KR.dcm")
    with pytest.warns(UserWarning, match="colour Doppler"):
        result = preprocess(make_record(pixels), "ultrasound")
    x, y, w, h = result.transform.crop_box
    # The scan lies between the header text (above row 100) and the "LYMPH NODE" caption.
    assert y >= 95
    assert y + h <= 350


# Four scanners, plus images with an anechoic cyst as wide as the scan (bus_0878-s), a flat
# dark area below the tissue (bus_1001-l, bus_0910-l) and grey UI below a sector (bus_0785-s).
BUS_BRA_IMAGES = [
    "bus_0001-l",
    "bus_0358-l",
    "bus_0848-r",
    "bus_0993-l",
    "bus_0994-l",
    "bus_0359-l",
    "bus_0878-s",
    "bus_1001-l",
    "bus_0910-l",
    "bus_0785-s",
]


@pytest.mark.parametrize("name", BUS_BRA_IMAGES)
def test_bus_bra_crop_keeps_nearly_whole_image(bus_bra_dir, name):
    image = load_png(bus_bra_dir / "images" / f"{name}.png")
    result = preprocess(make_record(image), "ultrasound")
    _, _, w, h = result.transform.crop_box
    assert w * h > 0.9 * image.size
    assert result.mask is not None
    assert result.mask.mean() > 0.75


def test_bus_bra_calipers_inpainted(bus_bra_dir):
    # bus_0001-l has "+" calipers around the lesion, e.g. centred near (154, 21) and (90, 57).
    image = load_png(bus_bra_dir / "images" / "bus_0001-l.png")
    result = preprocess(make_record(image), "ultrasound")
    assert result.marks is not None
    assert result.marks[17:26, 150:159].sum() >= 10
    assert result.marks[53:62, 86:95].sum() >= 10
    assert result.marks.mean() < 0.05


def test_bus_bra_text_inpainted_inside_roi(bus_bra_dir):
    # bus_0358-l: "MAMA DIREITA QSE" burnt in at rows 176-192, columns 145-320; its lesion box
    # (BBOX in bus_data.csv) is [56, 40, 172, 87], and the enlarged square reaches the text.
    image = load_png(bus_bra_dir / "images" / "bus_0358-l.png")
    result = preprocess(make_record(image), "ultrasound", roi=(56, 40, 172, 87))
    x, y, w, h = result.transform.crop_box
    assert y + h > 192
    assert result.marks is not None
    assert result.marks[176:192, 147:230].sum() > 100


def test_inverted_mammogram_warned(mini_mias_dir):
    inverted = 1.0 - load_png(mini_mias_dir / "images" / "mdb001.png")
    with pytest.warns(UserWarning, match="background looks bright.*MONOCHROME1"):
        preprocess(make_record(inverted), "mammography")


def test_mini_mias_large_lesion_roi_not_warned(mini_mias_dir):
    # mdb001: centre (535, 425) from the bottom-left, radius 197. The box of 3 radii, with y
    # from the top, extends past the skin line, so under half of its crop lies inside the breast.
    image = load_png(mini_mias_dir / "images" / "mdb001.png")
    centre_x, centre_y, radius = 535, image.shape[0] - 425, 197
    roi = (centre_x - 3 * radius // 2, centre_y - 3 * radius // 2, 3 * radius, 3 * radius)
    assert roi == (240, 304, 591, 591)
    result = preprocess(make_record(image), "mammography", roi=roi)
    assert result.transform.roi_used
    assert not [message for message in result.warnings if "breast region" in message]


@pytest.mark.parametrize("name", ["mdb131", "mdb151", "mdb274"])
def test_grey_border_or_large_breast_not_warned(mini_mias_dir, name):
    result = preprocess(make_record(load_png(mini_mias_dir / "images" / f"{name}.png")), "mammography")
    assert not result.warnings


@pytest.mark.parametrize("name", ["bus_0805-s", "bus_0399-l"])
def test_bus_bra_bright_speckle_mostly_not_marked(bus_bra_dir, name):
    # Bright, coarse speckle once passed the mark shape tests by the hundred (over 5% of pixels).
    image = load_png(bus_bra_dir / "images" / f"{name}.png")
    result = preprocess(make_record(image), "ultrasound")
    assert result.marks is not None
    assert result.marks.mean() < 0.035
