"""Attention maps of the branches, brought onto the original image.

Mammography branch (CBAM): the spatial gate of the deepest CBAM is one weight in [0, 1] per
position of the last feature map (7 x 7 at 224 px). :func:`spatial_attention_map` upsamples it
to the model input and undoes the preprocessing, so it lies over the original mammogram.

Ultrasound branch (ECA): ECA has no spatial map, only one weight in [0, 1] per channel.
A radiologist cannot read 1280 numbers, so :func:`summarize_channel_weights` reports the channels
with the highest weights and how far the gate departs from uniform, and
:func:`channel_attention_map` shows where those top channels fire: the sum over the ``top_k``
most-weighted channels of weight times the activation entering the ECA module, rectified,
scaled to [0, 1] and mapped onto the original image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import nn

from mpmmu.explain.gradcam import _copy_sharing_tensors, input_batch

if TYPE_CHECKING:
    from mpmmu.records import ModelInput, Transform

logger = logging.getLogger(__name__)


def spatial_attention_map(attention: np.ndarray | torch.Tensor, transform: Transform) -> np.ndarray:
    """Bring a CBAM spatial gate onto the original image.

    Parameters
    ----------
    attention : numpy.ndarray or torch.Tensor
        float (h, w) or (1, h, w) gate in [0, 1] over the last feature map.
    transform : Transform
        The transform of the model input the gate was computed on.

    Returns
    -------
    numpy.ndarray
        float32 (H, W) in original pixels. Gate values are kept as they are (not rescaled), so
        maps of different cases compare; pixels outside the crop are 0.
    """
    from mpmmu.preprocess import map_to_original

    if isinstance(attention, torch.Tensor):
        attention = attention.detach().float().cpu().numpy()
    attention = np.asarray(attention, dtype=np.float32)
    if attention.ndim == 3 and attention.shape[0] == 1:
        attention = attention[0]
    if attention.ndim != 2:
        raise ValueError(f"spatial attention must be (h, w), got shape {attention.shape}")
    size = transform.output_size
    upsampled = cv2.resize(attention, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(map_to_original(upsampled, transform), 0.0, 1.0)


@dataclass(frozen=True)
class ChannelSummary:
    """The ECA gate of one image, summarised.

    Attributes
    ----------
    top_channels : tuple of int
        Indices of the ``top_k`` channels with the highest weight, highest first.
    top_weights : tuple of float
        Their weights in [0, 1].
    mean_weight : float
        Mean weight over all channels.
    spread : float
        Standard deviation of the weights; near 0 means ECA weights every channel alike and
        its channel map adds little to plain activations.
    """

    top_channels: tuple[int, ...]
    top_weights: tuple[float, ...]
    mean_weight: float
    spread: float

    def describe(self) -> str:
        """Return one plain sentence about the gate for a report."""
        listed = ", ".join(f"{c} ({w:.2f})" for c, w in zip(self.top_channels, self.top_weights))
        return (
            f"Channel attention weights average {self.mean_weight:.2f} (sd {self.spread:.2f}); "
            f"the most emphasised feature channels are {listed}."
        )


def summarize_channel_weights(weights: np.ndarray | torch.Tensor, top_k: int = 5) -> ChannelSummary:
    """Summarise one image's ECA channel weights.

    Parameters
    ----------
    weights : numpy.ndarray or torch.Tensor
        float (C,) or (1, C) gate values in [0, 1].
    top_k : int
        How many of the highest-weighted channels to report.
    """
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    weights = np.asarray(weights, dtype=np.float32).reshape(-1)
    if weights.size == 0:
        raise ValueError("channel weights are empty")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    order = np.argsort(-weights, kind="stable")[: min(top_k, weights.size)]
    return ChannelSummary(
        top_channels=tuple(int(i) for i in order),
        top_weights=tuple(float(weights[i]) for i in order),
        mean_weight=float(weights.mean()),
        spread=float(weights.std()),
    )


def deepest_attention_name(branch: nn.Module) -> str:
    """Return the dotted name of the branch's deepest attention module, e.g. "attention.head"."""
    stages = getattr(branch, "attention_stages", ())
    if not stages:
        raise ValueError("the branch has no attention module; build it with attention='eca' or 'cbam'")
    return f"attention.{stages[-1]}"


def weighted_channel_map(activation: np.ndarray, weights: np.ndarray, size: int, top_k: int = 16) -> np.ndarray:
    """Sum the ``top_k`` most-weighted channels of an activation, weighted, rectified and scaled.

    Parameters
    ----------
    activation : numpy.ndarray
        float (C, h, w), the input of the attention module.
    weights : numpy.ndarray
        float (C,) channel weights in [0, 1].
    size : int
        Side of the returned map (the model input's).
    top_k : int
        Number of highest-weighted channels summed.

    Returns
    -------
    numpy.ndarray
        float32 (size, size) in [0, 1]; all zero when none of those channels fires.
    """
    activation = np.asarray(activation, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32).reshape(-1)
    if activation.ndim != 3 or activation.shape[0] != weights.size:
        raise ValueError(
            f"activation must be (C, h, w) with C = {weights.size} channels, got shape {activation.shape}"
        )
    order = np.argsort(-weights, kind="stable")[: min(top_k, weights.size)]
    weighted = np.maximum(np.tensordot(weights[order], activation[order], axes=1), 0.0)
    peak = float(weighted.max())
    if peak > 0:
        weighted = weighted / peak
    return cv2.resize(weighted.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def channel_attention_map(branch: nn.Module, model_input: ModelInput, top_k: int = 16) -> np.ndarray:
    """Show where the channels that the deepest attention module weights most are active.

    Runs one forward pass of its own; :func:`mpmmu.explain.gradcam.grad_cam_with_module_input`
    captures the same activation during Grad-CAM instead.

    Parameters
    ----------
    branch : mpmmu.models.Branch
        A branch with ECA (or CBAM) attention, in eval mode. It is not modified: the activations
        are captured on a per-call copy of the module tree that shares its tensors.
    model_input : ModelInput
        The preprocessed image.
    top_k : int
        Number of highest-weighted channels summed.

    Returns
    -------
    numpy.ndarray
        float32 (S, S) in [0, 1] over the model input (see :func:`weighted_channel_map`); map it
        with :func:`mpmmu.preprocess.map_to_original`.
    """
    name = deepest_attention_name(branch)
    model_copy = _copy_sharing_tensors(branch)
    captured: dict[str, torch.Tensor] = {}

    def keep_input(module: nn.Module, args: tuple) -> None:
        captured["activation"] = args[0].detach()

    handle = model_copy.get_submodule(name).register_forward_pre_hook(keep_input)
    try:
        device = next(branch.parameters()).device
        with torch.inference_mode():
            output = model_copy.forward_features(input_batch(model_input, device))
    finally:
        handle.remove()

    activation = captured["activation"][0].float().cpu().numpy()
    weights = output.channel_weights[0].float().cpu().numpy()
    return weighted_channel_map(activation, weights, model_input.transform.output_size, top_k)
