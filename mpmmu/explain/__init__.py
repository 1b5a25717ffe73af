"""Explanations of a branch's prediction: Grad-CAM, attention maps and image overlays."""

from __future__ import annotations

from mpmmu.explain.attention import (
    ChannelSummary,
    channel_attention_map,
    deepest_attention_name,
    spatial_attention_map,
    summarize_channel_weights,
    weighted_channel_map,
)
from mpmmu.explain.gradcam import MalignantLogitTarget, grad_cam, grad_cam_with_module_input
from mpmmu.explain.overlay import COLORMAPS, colorize, overlay, save_png

__all__ = [
    "COLORMAPS",
    "ChannelSummary",
    "MalignantLogitTarget",
    "channel_attention_map",
    "colorize",
    "deepest_attention_name",
    "grad_cam",
    "grad_cam_with_module_input",
    "overlay",
    "save_png",
    "spatial_attention_map",
    "summarize_channel_weights",
    "weighted_channel_map",
]
