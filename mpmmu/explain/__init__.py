"""Explanations of a branch's prediction: Grad-CAM, attention maps and image overlays."""

from __future__ import annotations

from mpmmu.explain.attention import (
    ChannelSummary,
    channel_attention_map,
    spatial_attention_map,
    summarize_channel_weights,
)
from mpmmu.explain.gradcam import MalignantLogitTarget, grad_cam
from mpmmu.explain.overlay import COLORMAPS, colorize, overlay, save_png

__all__ = [
    "COLORMAPS",
    "ChannelSummary",
    "MalignantLogitTarget",
    "channel_attention_map",
    "colorize",
    "grad_cam",
    "overlay",
    "save_png",
    "spatial_attention_map",
    "summarize_channel_weights",
]
