"""Lesion boxes, context boxes and the model <-> original mapping."""

from __future__ import annotations

import numpy as np
import pytest

from mpmmu.errors import PreprocessError
from mpmmu.preprocess import (
    PreprocessConfig,
    box_to_model,
    context_box,
    map_to_original,
    parse_roi,
    point_to_model,
    point_to_original,
    roi_from_circle,
)
from mpmmu.records import Transform


def test_parse_roi_reads_four_integers():
    assert parse_roi("10, 20,30,40") == (10, 20, 30, 40)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("10,20,30", "four integers"),
        ("10,20,abc,40", "ROI w must be an integer.*'abc'"),
        ("10,20,0,40", "width and height must be > 0.*w=0"),
        ("10,20,30,-4", "h=-4"),
    ],
)
def test_parse_roi_raises_on_invalid_text(text, match):
    with pytest.raises(PreprocessError, match=match):
        parse_roi(text)


def test_roi_from_circle_makes_square_of_three_radii():
    assert roi_from_circle(500, 400, 60, (1024, 1024)) == (410, 310, 180, 180)


def test_roi_from_circle_min_side():
    assert roi_from_circle(500, 400, 10, (1024, 1024), min_side=128) == (436, 336, 128, 128)


def test_roi_from_circle_shifts_box_inside_image():
    x, y, w, h = roi_from_circle(5, 1020, 20, (1024, 1024))
    assert (w, h) == (128, 128)
    assert x == 0
    assert y + h == 1024


def test_roi_from_circle_raises_on_centre_outside_image():
    with pytest.raises(PreprocessError, match="outside the image of 1024 x 1024"):
        roi_from_circle(500, 1100, 20, (1024, 1024))


def test_context_box_enlarges_and_squares():
    x, y, w, h = context_box((100, 100, 40, 20), (400, 400), 1.25, 8)
    assert (w, h) == (50, 50)
    assert x <= 100
    assert x + w >= 140
    assert y <= 100
    assert y + h >= 120


def test_context_box_clamps_to_image_edge():
    x, y, w, h = context_box((0, 0, 40, 40), (100, 300), 1.25, 8)
    assert (x, y) == (0, 0)
    assert (w, h) == (50, 50)


def test_context_box_narrow_image():
    # The 50-pixel-wide image cannot hold the 63-pixel square, so only the height keeps 63.
    assert context_box((0, 10, 50, 20), (200, 50), 1.25, 8) == (0, 0, 50, 63)


def test_context_box_raises_on_roi_outside_image():
    with pytest.raises(PreprocessError, match="lies outside the image of 100 x 50"):
        context_box((200, 10, 20, 20), (50, 100), 1.25, 8)


def test_context_box_raises_on_empty_roi():
    with pytest.raises(PreprocessError, match="is empty"):
        context_box((10, 10, 0, 20), (50, 100), 1.25, 8)


def _transform(flipped: bool) -> Transform:
    # A 300 x 150 crop at (40, 30) of a 400 x 500 image, scaled to 224 wide and padded top.
    scale = 224 / 300
    return Transform(
        original_shape=(400, 500),
        crop_box=(40, 30, 300, 150),
        flipped=flipped,
        scale=scale,
        pad_left=0,
        pad_top=(224 - round(150 * scale)) // 2,
        output_size=224,
        roi_used=False,
    )


@pytest.mark.parametrize("flipped", [False, True])
def test_point_mapping_round_trips(flipped):
    transform = _transform(flipped)
    for x, y in [(40.0, 30.0), (100.5, 90.25), (339.0, 179.0)]:
        u, v = point_to_model(x, y, transform)
        back = point_to_original(u, v, transform)
        assert back == pytest.approx((x, y), abs=1e-6)


def test_point_to_model_mirrors_when_flipped():
    u_plain, _ = point_to_model(50.0, 60.0, _transform(False))
    u_flipped, _ = point_to_model(50.0, 60.0, _transform(True))
    assert u_plain + u_flipped == pytest.approx(224.0, abs=1e-6)


def test_box_to_model_scales_box():
    u, v, w, h = box_to_model((40, 30, 300, 150), _transform(True))
    assert (u, w) == pytest.approx((0.0, 224.0))
    assert h == pytest.approx(112.0)


def test_map_to_original_is_zero_outside_crop():
    heatmap = np.ones((224, 224), dtype=np.float32)
    original = map_to_original(heatmap, _transform(False))
    assert original.shape == (400, 500)
    assert original.dtype == np.float32
    assert original[30:180, 40:340].min() == pytest.approx(1.0)
    assert original[:30].max() == 0.0
    assert original[:, 340:].max() == 0.0


def test_map_to_original_accepts_coarse_map():
    original = map_to_original(np.ones((7, 7), dtype=np.float32), _transform(False))
    assert original[100, 100] == pytest.approx(1.0)


def test_map_to_original_raises_on_non_square_map():
    with pytest.raises(PreprocessError, match="square"):
        map_to_original(np.ones((10, 12)), _transform(False))


def test_config_round_trips_through_dict():
    config = PreprocessConfig(size=320, roi_context=1.5, canonical_laterality="R")
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert isinstance(config.to_dict()["mean"], list)


def test_config_raises_on_unknown_key():
    with pytest.raises(PreprocessError, match="Unknown preprocessing settings.*'gamma'"):
        PreprocessConfig.from_dict({"size": 224, "gamma": 2.0})


def test_config_raises_on_small_context():
    with pytest.raises(PreprocessError, match="roi_context must be >= 1.0, got 0.5"):
        PreprocessConfig(roi_context=0.5)
