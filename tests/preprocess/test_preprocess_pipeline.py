"""preprocess() end to end: output contract, heatmap round trip, laterality, degenerate inputs."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from preprocess_helpers import make_record, synthetic_mammogram

from mpmmu.errors import PreprocessError
from mpmmu.preprocess import PreprocessConfig, map_to_original, preprocess


def _synthetic_ultrasound(height: int = 300, width: int = 360) -> np.ndarray:
    """Speckle scan inside a black frame, with a text-like bar above it."""
    rng = np.random.default_rng(1)
    image = np.zeros((height, width), dtype=np.float32)
    image[40:280, 30:330] = np.clip(0.35 + 0.12 * rng.standard_normal((240, 300)), 0, 1)
    image[8:20, 40:200:6] = 0.9
    return image


def _draw_blob(image: np.ndarray, x: int, y: int, radius: int = 12) -> np.ndarray:
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    out = image.copy()
    out[(rows - y) ** 2 + (cols - x) ** 2 <= radius**2] = 1.0
    return out


def _blob_centre(image: np.ndarray, level: float) -> tuple[float, float]:
    rows, cols = np.nonzero(image > level)
    return float(cols.mean()), float(rows.mean())


CASES = [
    ("mammography", "left", None),
    ("mammography", "right", None),
    ("mammography", "right", (60, 100, 40, 40)),
    ("ultrasound", None, None),
    ("ultrasound", None, (180, 120, 50, 40)),
]


@pytest.mark.parametrize(("modality", "chest_wall", "roi"), CASES)
def test_heatmap_round_trip_returns_blob_to_origin(modality, chest_wall, roi):
    if modality == "mammography":
        image = synthetic_mammogram(256, 200, chest_wall)
        blob_x = 40 if chest_wall == "left" else 80
        blob_y = 120
        image = np.where(image > 0.1, 0.45, image).astype(np.float32)
    else:
        image = _synthetic_ultrasound()
        blob_x, blob_y = 200, 140
    image = _draw_blob(image, blob_x, blob_y)

    result = preprocess(make_record(image), modality, roi=roi)
    heatmap = (result.display > 0.8).astype(np.float32)
    original = map_to_original(heatmap, result.transform)

    assert result.transform.roi_used is (roi is not None)
    assert result.transform.flipped is (chest_wall == "right")
    found_x, found_y = _blob_centre(original, 0.5)
    tolerance = 1.5 / result.transform.scale
    assert abs(found_x - blob_x) < tolerance
    assert abs(found_y - blob_y) < tolerance


@pytest.mark.parametrize("modality", ["mammography", "ultrasound"])
def test_preprocess_output_contract(modality):
    image = synthetic_mammogram() if modality == "mammography" else _synthetic_ultrasound()
    result = preprocess(make_record(image), modality, config=PreprocessConfig(size=96))

    assert result.tensor.shape == (3, 96, 96)
    assert result.tensor.dtype == np.float32
    assert result.display.shape == (96, 96)
    assert result.display.min() >= 0.0
    assert result.display.max() <= 1.0
    assert result.tensor.min() >= -1.0 - 1e-6
    assert result.tensor.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(result.tensor[0], result.display * 2.0 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(result.tensor[0], result.tensor[2])
    assert result.mask is not None
    assert result.mask.shape == image.shape
    assert result.modality == modality
    assert any(step.startswith("crop to") for step in result.transform.steps)
    assert any(step.startswith("resize") for step in result.transform.steps)


def test_preprocess_keeps_aspect_ratio_with_padding():
    result = preprocess(make_record(synthetic_mammogram(256, 200, "left")), "mammography")
    _, _, w, h = result.transform.crop_box
    assert h > w
    assert result.transform.pad_left > 0
    assert result.transform.pad_top == 0
    assert result.display[:, : result.transform.pad_left].max() == 0.0


@pytest.mark.parametrize(
    ("laterality", "chest_wall", "flipped"),
    [("unknown", "left", False), ("unknown", "right", True), ("R", "right", True), ("L", "left", False)],
)
def test_mammogram_flipped_to_canonical_laterality(laterality, chest_wall, flipped):
    result = preprocess(make_record(synthetic_mammogram(256, 200, chest_wall), laterality), "mammography")
    assert result.transform.flipped is flipped
    assert any("flip" in step for step in result.transform.steps) is flipped


def test_mammogram_warns_when_header_laterality_disagrees():
    record = make_record(synthetic_mammogram(256, 200, "right"), "L")
    with pytest.warns(UserWarning, match="Laterality L from the header"):
        result = preprocess(record, "mammography")
    assert result.transform.flipped is False


def test_canonical_laterality_r_flips_left_breast():
    config = PreprocessConfig(canonical_laterality="R")
    result = preprocess(make_record(synthetic_mammogram(256, 200, "left")), "mammography", config=config)
    assert result.transform.flipped is True


def test_mammogram_removes_label_outside_breast():
    image = synthetic_mammogram(256, 200, "left")
    result = preprocess(make_record(image), "mammography")
    assert result.mask is not None
    assert not result.mask[12:36, 170:188].any()
    x, _, w, _ = result.transform.crop_box
    assert x + w < 170


@pytest.mark.parametrize("modality", ["mammography", "ultrasound"])
def test_blank_image_falls_back_with_warning(modality):
    with pytest.warns(UserWarning, match="whole image"):
        result = preprocess(make_record(np.zeros((300, 240), np.float32)), modality)
    assert result.transform.crop_box == (0, 0, 240, 300)
    assert result.mask is None
    assert result.warnings
    assert np.all(result.tensor == -1.0)


@pytest.mark.parametrize("modality", ["mammography", "ultrasound"])
def test_tiny_image_falls_back_with_warning(modality):
    image = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    with pytest.warns(UserWarning, match="too small"):
        result = preprocess(make_record(image), modality)
    assert result.tensor.shape == (3, 224, 224)
    assert result.transform.crop_box == (0, 0, 8, 8)


def test_nan_pixels_are_zeroed_with_warning():
    image = synthetic_mammogram()
    image[0, 0] = np.nan
    with pytest.warns(UserWarning, match="NaN"):
        result = preprocess(make_record(image), "mammography")
    assert np.isfinite(result.tensor).all()


def test_preprocess_raises_on_unknown_modality():
    with pytest.raises(PreprocessError, match="Modality must be one of.*'mri'"):
        preprocess(make_record(synthetic_mammogram()), "mri")


def test_preprocess_raises_on_roi_outside_image():
    with pytest.raises(PreprocessError, match=r"ROI \(500, 10, 20, 20\) lies outside the image of 200 x 256"):
        preprocess(make_record(synthetic_mammogram()), "mammography", roi=(500, 10, 20, 20))


def test_preprocess_raises_on_empty_roi():
    with pytest.raises(PreprocessError, match="is empty"):
        preprocess(make_record(_synthetic_ultrasound()), "ultrasound", roi=(10, 10, 0, 5))


def test_preprocess_clips_partly_outside_roi_with_warning():
    with pytest.warns(UserWarning, match="extends past the image"):
        result = preprocess(make_record(_synthetic_ultrasound()), "ultrasound", roi=(340, 100, 60, 40))
    x, y, w, h = result.transform.crop_box
    assert x + w <= 360
    assert w == h


def test_ultrasound_roi_enlarged_by_context():
    result = preprocess(make_record(_synthetic_ultrasound()), "ultrasound", roi=(150, 100, 80, 40))
    assert result.transform.crop_box == (140, 70, 100, 100)


def test_preprocess_raises_on_bad_pixel_shape():
    with pytest.raises(PreprocessError, match="must be \\(H, W\\) grey"):
        preprocess(make_record(np.zeros((4, 4, 4, 4), np.float32)), "ultrasound")


def test_mammogram_warns_on_roi_outside_breast(caplog):
    # The synthetic breast spans columns 0-119 from the left; the box lies in the background.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the ROI message goes to the logger and the record only
        with caplog.at_level(logging.WARNING, logger="mpmmu.preprocess.core"):
            result = preprocess(make_record(synthetic_mammogram(256, 200, "left")), "mammography", roi=(150, 180, 40, 40))
    assert result.transform.roi_used
    roi_warnings = [message for message in result.warnings if "ROI centre (170, 200) lies outside" in message]
    assert len(roi_warnings) == 1
    assert "original-image pixels with y measured from the top" in roi_warnings[0]
    logged = [record for record in caplog.records if "ROI centre" in record.getMessage()]
    assert len(logged) == 1
