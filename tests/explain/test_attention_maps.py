"""Attention maps: CBAM spatial gate mapped back through a known crop and flip, ECA summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mpmmu.explain import (
    channel_attention_map,
    spatial_attention_map,
    summarize_channel_weights,
    weighted_channel_map,
)
from mpmmu.models import build_branch
from mpmmu.records import ModelInput, Transform

# A 200 x 100 image, cropped to x 50..130, y 20..60, mirrored, scaled by 0.4 to 32 x 16 and
# padded by 8 rows above and below inside a 32 x 32 model input.
KNOWN = Transform(
    original_shape=(100, 200),
    crop_box=(50, 20, 80, 40),
    flipped=True,
    scale=0.4,
    pad_left=0,
    pad_top=8,
    output_size=32,
    roi_used=True,
)


def test_spatial_attention_map_undoes_crop_and_flip():
    gate = np.zeros((4, 4), np.float32)
    gate[1, 0] = 1.0  # model rows 8..16, columns 0..8: the crop's top rows, left edge

    mapped = spatial_attention_map(gate, KNOWN)

    assert mapped.shape == (100, 200)
    assert mapped[:20].max() == 0.0
    assert mapped[60:].max() == 0.0
    assert mapped[:, :50].max() == 0.0
    assert mapped[:, 130:].max() == 0.0
    row, column = np.unravel_index(np.argmax(mapped), mapped.shape)
    assert 20 <= row < 40
    # The flip puts the model's left edge on the crop's right half.
    assert 90 <= column < 130


def test_spatial_attention_map_keeps_gate_values():
    gate = torch.full((1, 4, 4), 0.25)

    mapped = spatial_attention_map(gate, KNOWN)

    np.testing.assert_allclose(mapped[20:60, 50:130], 0.25, atol=1e-6)


def test_spatial_attention_map_raises_wrong_rank():
    with pytest.raises(ValueError, match="spatial attention must be"):
        spatial_attention_map(np.zeros((2, 3, 4, 4)), KNOWN)


def test_summarize_channel_weights_orders_top_channels():
    weights = np.array([0.1, 0.9, 0.5, 0.7], np.float32)

    summary = summarize_channel_weights(weights, top_k=2)

    assert summary.top_channels == (1, 3)
    assert summary.top_weights == pytest.approx((0.9, 0.7))
    assert summary.mean_weight == pytest.approx(0.55)
    assert "1 (0.90)" in summary.describe()


def test_summarize_channel_weights_raises_empty():
    with pytest.raises(ValueError, match="empty"):
        summarize_channel_weights(np.array([]))


def test_channel_attention_map_in_unit_range_without_hooks():
    torch.manual_seed(0)
    branch = build_branch("ultrasound", pretrained=False).eval()
    rng = np.random.default_rng(1)
    tensor = rng.standard_normal((3, 32, 32)).astype(np.float32)
    model_input = ModelInput(tensor=tensor, display=tensor[0], transform=KNOWN, modality="ultrasound")

    channel_map = channel_attention_map(branch, model_input, top_k=8)

    assert channel_map.shape == (32, 32)
    assert channel_map.min() >= 0.0
    assert channel_map.max() <= 1.0 + 1e-6
    assert sum(len(module._forward_pre_hooks) for module in branch.modules()) == 0
def test_channel_map_from_grad_cam_matches_own_forward():
    from mpmmu.explain import deepest_attention_name, grad_cam, grad_cam_with_module_input, weighted_channel_map

    torch.manual_seed(0)
    branch = build_branch("ultrasound", pretrained=False).eval()
    rng = np.random.default_rng(2)
    tensor = rng.standard_normal((3, 32, 32)).astype(np.float32)
    model_input = ModelInput(tensor=tensor, display=tensor[0], transform=KNOWN, modality="ultrasound")
    with torch.inference_mode():
        weights = branch.forward_features(torch.from_numpy(tensor)[None]).channel_weights[0].numpy()

    heatmap, activation = grad_cam_with_module_input(branch, model_input, deepest_attention_name(branch))

    np.testing.assert_allclose(heatmap, grad_cam(branch, model_input), atol=1e-6)
    np.testing.assert_allclose(
        weighted_channel_map(activation, weights, 32), channel_attention_map(branch, model_input), atol=1e-5
    )


def test_weighted_channel_map_raises_channel_mismatch():
    with pytest.raises(ValueError, match="activation must be"):
        weighted_channel_map(np.zeros((4, 2, 2)), np.zeros(3), 8)
