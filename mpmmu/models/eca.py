"""Efficient Channel Attention (ECA).

ECA weights channels without the dimensionality reduction of squeeze-and-excitation: the
average-pooled channel descriptor is convolved by a 1-D kernel across neighbouring channels and
passed through a sigmoid. The kernel size grows with the channel count C as
k = |log2(C) / gamma + b / gamma|, rounded to the nearest odd number, with gamma = 2 and b = 1
(for C = 1280 this gives k = 5). The layer adds only k parameters.

References
----------
Q. Wang, B. Wu, P. Zhu, P. Li, W. Zuo and Q. Hu, "ECA-Net: Efficient Channel Attention for Deep
Convolutional Neural Networks", CVPR 2020, arXiv:1910.03151.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def eca_kernel_size(channels: int, gamma: float = 2.0, beta: float = 1.0) -> int:
    """Return the ECA kernel size for ``channels``: |log2(C)/gamma + beta/gamma| made odd.

    The value is truncated to an integer t and an even t becomes t + 1, which picks the odd
    number nearest to the unrounded value; the result is at least 1.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    t = int(abs(math.log2(channels) / gamma + beta / gamma))
    return t if t % 2 == 1 else t + 1


class ECA(nn.Module):
    """Channel attention from a 1-D convolution across channels (Wang et al., CVPR 2020).

    Parameters
    ----------
    channels : int
        Number of input channels C.
    kernel_size : int or None
        Odd size of the 1-D kernel; None derives it from ``channels`` with :func:`eca_kernel_size`.

    Attributes
    ----------
    last_gate : torch.Tensor or None
        Channel weights of the latest forward pass, detached, float32 (N, C) in [0, 1].
    """

    def __init__(self, channels: int, kernel_size: int | None = None) -> None:
        super().__init__()
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=kernel_size // 2, bias=False)
        self.last_gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate ``x`` (N, C, H, W) by channel; the shape is kept."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"ECA expects a (N, {self.channels}, H, W) tensor, got shape {tuple(x.shape)}")
        descriptor = x.mean(dim=(2, 3)).unsqueeze(1)
        gate = torch.sigmoid(self.conv(descriptor)).squeeze(1)
        self.last_gate = gate.detach().float()
        return x * gate[:, :, None, None]
