"""Random augmentation of preprocessed images for stage-1 training.

Each image arrives as the cached display pixels, float in [0, 1], with the same framing as the
model input but at a somewhat higher resolution. One affine resampling (flips, rotations by 90
degrees, a small rotation, zoom and shift) produces the model-size image. Intensity changes
(gamma, contrast, brightness, speckle-like multiplicative noise, additive noise) follow. All
randomness comes from the ``torch.Generator`` passed in, so a run is reproducible.

Ultrasound keeps its depth axis (skin at the top), so it is only mirrored left-right and rotated
slightly. Mammography ROIs have no preferred orientation after cropping and only about a hundred
training images exist, so they get every flip, rotations by 90 degrees and stronger changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentPolicy:
    """Ranges of the random changes; each value is drawn uniformly from its range.

    Attributes
    ----------
    hflip, vflip : float
        Probabilities of mirroring left-right and top-bottom.
    rot90 : bool
        Rotate by a random multiple of 90 degrees.
    rotation_degrees : float
        Largest absolute extra rotation.
    zoom_range : tuple of float
        Zoom factors; above 1 crops into the image, below 1 shrinks it inside a black border.
    translate : float
        Largest shift as a fraction of the image side.
    gamma_range, contrast_range : tuple of float
        Gamma exponent and contrast factor about the image mean.
    brightness : float
        Largest absolute brightness offset, in display units.
    speckle_std : float
        Largest standard deviation of multiplicative noise drawn at half resolution, which
        imitates ultrasound speckle.
    noise_std : float
        Largest standard deviation of additive Gaussian noise.
    """

    hflip: float = 0.5
    vflip: float = 0.0
    rot90: bool = False
    rotation_degrees: float = 10.0
    zoom_range: tuple[float, float] = (0.9, 1.15)
    translate: float = 0.05
    gamma_range: tuple[float, float] = (0.8, 1.25)
    contrast_range: tuple[float, float] = (0.85, 1.15)
    brightness: float = 0.05
    speckle_std: float = 0.0
    noise_std: float = 0.0


ULTRASOUND_AUGMENT = AugmentPolicy(
    hflip=0.5,
    vflip=0.0,
    rot90=False,
    rotation_degrees=10.0,
    zoom_range=(0.9, 1.15),
    translate=0.05,
    gamma_range=(0.8, 1.25),
    contrast_range=(0.85, 1.15),
    brightness=0.05,
    speckle_std=0.15,
    noise_std=0.01,
)

MAMMOGRAPHY_AUGMENT = AugmentPolicy(
    hflip=0.5,
    vflip=0.5,
    rot90=True,
    rotation_degrees=15.0,
    zoom_range=(0.85, 1.25),
    translate=0.08,
    gamma_range=(0.7, 1.4),
    contrast_range=(0.75, 1.3),
    brightness=0.08,
    speckle_std=0.0,
    noise_std=0.02,
)

AUGMENT_POLICIES: dict[str, AugmentPolicy] = {
    "ultrasound": ULTRASOUND_AUGMENT,
    "mammography": MAMMOGRAPHY_AUGMENT,
}


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _affine_matrix(policy: AugmentPolicy, generator: torch.Generator) -> torch.Tensor:
    """Draw the (2, 3) matrix that maps output coordinates in [-1, 1] to input coordinates."""
    angle = math.radians(_uniform(-policy.rotation_degrees, policy.rotation_degrees, generator))
    if policy.rot90:
        angle += math.pi / 2 * int(torch.randint(0, 4, (), generator=generator))
    zoom = _uniform(*policy.zoom_range, generator)
    flip_x = -1.0 if float(torch.rand((), generator=generator)) < policy.hflip else 1.0
    flip_y = -1.0 if float(torch.rand((), generator=generator)) < policy.vflip else 1.0
    shift_x = _uniform(-policy.translate, policy.translate, generator) * 2
    shift_y = _uniform(-policy.translate, policy.translate, generator) * 2

    cos, sin = math.cos(angle), math.sin(angle)
    # Input = R @ diag(flip) @ output / zoom + shift: zoom > 1 samples a smaller input region.
    return torch.tensor(
        [
            [cos * flip_x / zoom, -sin * flip_y / zoom, shift_x],
            [sin * flip_x / zoom, cos * flip_y / zoom, shift_y],
        ],
        dtype=torch.float32,
    )


def augment_image(
    image: torch.Tensor, size: int, policy: AugmentPolicy, generator: torch.Generator
) -> torch.Tensor:
    """Apply one random draw of ``policy`` to ``image`` and resample it to ``size``.

    Parameters
    ----------
    image : torch.Tensor
        float (C, H, W) display pixels in [0, 1] with the model input's framing.
    size : int
        Side of the output.
    policy : AugmentPolicy
    generator : torch.Generator
        Source of every random draw.

    Returns
    -------
    torch.Tensor
        float32 (C, size, size) in [0, 1].
    """
    if image.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
    image = image.float()
    channels = image.shape[0]

    theta = _affine_matrix(policy, generator)[None]
    grid = F.affine_grid(theta, [1, channels, size, size], align_corners=False)
    out = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    gamma = _uniform(*policy.gamma_range, generator)
    out = out.clamp(0.0, 1.0).pow(gamma)
    contrast = _uniform(*policy.contrast_range, generator)
    brightness = _uniform(-policy.brightness, policy.brightness, generator)
    mean = out.mean()
    out = (out - mean) * contrast + mean + brightness

    if policy.speckle_std > 0:
        strength = _uniform(0.0, policy.speckle_std, generator)
        half = max(1, size // 2)
        speckle = torch.randn((1, 1, half, half), generator=generator)
        speckle = F.interpolate(speckle, size=(size, size), mode="bilinear", align_corners=False)[0]
        out = out * (1.0 + strength * speckle)
    if policy.noise_std > 0:
        strength = _uniform(0.0, policy.noise_std, generator)
        out = out + strength * torch.randn((1, size, size), generator=generator)
    return out.clamp(0.0, 1.0)
