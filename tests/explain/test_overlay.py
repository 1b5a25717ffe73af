"""Heatmap overlays: RGB uint8 output, untouched pixels where the heatmap is 0, PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mpmmu.explain import colorize, overlay, save_png


def test_overlay_returns_rgb_uint8_of_image_shape():
    image = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
    heatmap = np.zeros((20, 30), np.float32)
    heatmap[5:10, 5:10] = 1.0

    result = overlay(image, heatmap, alpha=0.5)

    assert result.shape == (20, 30, 3)
    assert result.dtype == np.uint8


def test_overlay_keeps_pixels_where_heatmap_zero():
    image = np.full((10, 10), 0.5, np.float32)
    heatmap = np.zeros((10, 10), np.float32)
    heatmap[0, 0] = 1.0

    result = overlay(image, heatmap, alpha=0.6)

    assert (result[5, 5] == 128).all()
    assert not (result[0, 0] == 128).all()


def test_overlay_with_full_alpha_shows_colormap():
    image = np.zeros((4, 4, 3), np.uint8)
    heatmap = np.ones((4, 4), np.float32)

    result = overlay(image, heatmap, alpha=1.0, colormap="jet")

    np.testing.assert_array_equal(result, colorize(heatmap, "jet"))


def test_overlay_raises_shape_mismatch():
    with pytest.raises(ValueError, match="map the heatmap to the original image"):
        overlay(np.zeros((10, 10)), np.zeros((5, 5)))


def test_overlay_raises_alpha_out_of_range():
    with pytest.raises(ValueError, match="alpha must be in"):
        overlay(np.zeros((4, 4)), np.zeros((4, 4)), alpha=1.5)


def test_colorize_raises_unknown_colormap():
    with pytest.raises(ValueError, match="unknown colormap"):
        colorize(np.zeros((4, 4)), "rainbow-ish")


def test_save_png_writes_readable_rgb(tmp_path):
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., 0] = 200

    path = save_png(rgb, tmp_path / "sub" / "overlay.png")

    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert image.size == (12, 8)
        np.testing.assert_array_equal(np.asarray(image), rgb)
