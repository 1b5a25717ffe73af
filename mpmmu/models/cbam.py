"""Convolutional Block Attention Module (CBAM).

CBAM refines a feature map in two steps. Channel attention passes the average-pooled and the
max-pooled channel descriptors through one shared two-layer MLP, adds the two outputs and applies
a sigmoid, giving one weight per channel. Spatial attention then stacks the channel-average and
channel-max maps, convolves them with a single 7 x 7 kernel, batch-normalises the result (as
timm 1.0's ``CbamModule`` does) and applies a sigmoid, giving one weight per position. Both gates multiply the features, so the output keeps the input's shape.

References
----------
S. Woo, J. Park, J.-Y. Lee and I. S. Kweon, "CBAM: Convolutional Block Attention Module",
ECCV 2018, arXiv:1807.06521.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """CBAM channel gate: a shared MLP over average- and max-pooled channel descriptors.

    Parameters
    ----------
    channels : int
        Number of input channels C.
    rd_ratio : float
        Width of the MLP's hidden layer as a fraction of ``channels`` (at least 1 unit).
    """

    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not 0.0 < rd_ratio <= 1.0:
            raise ValueError(f"rd_ratio must be in (0, 1], got {rd_ratio}")
        hidden = max(1, round(channels * rd_ratio))
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the channel gate, shape (N, C, 1, 1), values in [0, 1]."""
        avg = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        peak = self.fc2(self.act(self.fc1(x.amax(dim=(2, 3), keepdim=True))))
        return torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM spatial gate: one convolution over the channel-average and channel-max maps.

    Parameters
    ----------
    kernel_size : int
        Odd side of the convolution kernel; the paper found 7 best.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size=kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the spatial gate, shape (N, 1, H, W), values in [0, 1]."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """Channel then spatial attention on a feature map (Woo et al., ECCV 2018).

    Parameters
    ----------
    channels : int
        Number of input channels C.
    rd_ratio : float
        Hidden width of the channel MLP as a fraction of ``channels``; 1/16 as in the paper.
    spatial_kernel_size : int
        Side of the spatial attention convolution; 7 as in the paper.

    Attributes
    ----------
    last_gate : torch.Tensor or None
        Spatial gate of the latest forward pass, detached, float32 (N, H, W) in [0, 1].
    last_channel_gate : torch.Tensor or None
        Channel gate of the latest forward pass, detached, float32 (N, C) in [0, 1].
    """

    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16, spatial_kernel_size: int = 7) -> None:
        super().__init__()
        self.channels = channels
        self.channel = ChannelAttention(channels, rd_ratio)
        self.spatial = SpatialAttention(spatial_kernel_size)
        self.last_gate: torch.Tensor | None = None
        self.last_channel_gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate ``x`` (N, C, H, W) by channel, then by position; the shape is kept."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"CBAM expects a (N, {self.channels}, H, W) tensor, got shape {tuple(x.shape)}")
        channel_gate = self.channel(x)
        x = x * channel_gate
        spatial_gate = self.spatial(x)
        self.last_channel_gate = channel_gate.detach().flatten(1).float()
        self.last_gate = spatial_gate.detach()[:, 0].float()
        return x * spatial_gate
