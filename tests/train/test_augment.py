"""Augmentation: shapes, value range, reproducibility and the identity case."""

from __future__ import annotations

import pytest
import torch

from mpmmu.train.augment import MAMMOGRAPHY_AUGMENT, ULTRASOUND_AUGMENT, AugmentPolicy, augment_image

IDENTITY = AugmentPolicy(
    hflip=0.0,
    vflip=0.0,
    rot90=False,
    rotation_degrees=0.0,
    zoom_range=(1.0, 1.0),
    translate=0.0,
    gamma_range=(1.0, 1.0),
    contrast_range=(1.0, 1.0),
    brightness=0.0,
)


@pytest.mark.parametrize("policy", [ULTRASOUND_AUGMENT, MAMMOGRAPHY_AUGMENT], ids=["ultrasound", "mammography"])
def test_augment_image_shape_and_range(policy: AugmentPolicy) -> None:
    image = torch.rand(1, 73, 73)
    out = augment_image(image, 64, policy, torch.Generator().manual_seed(3))
    assert out.shape == (1, 64, 64)
    assert out.dtype == torch.float32
    assert out.min() >= 0.0
    assert out.max() <= 1.0


def test_augment_image_reproducible_with_seed() -> None:
    image = torch.rand(3, 40, 40)
    first = augment_image(image, 32, MAMMOGRAPHY_AUGMENT, torch.Generator().manual_seed(7))
    second = augment_image(image, 32, MAMMOGRAPHY_AUGMENT, torch.Generator().manual_seed(7))
    third = augment_image(image, 32, MAMMOGRAPHY_AUGMENT, torch.Generator().manual_seed(8))
    torch.testing.assert_close(first, second)
    assert not torch.equal(first, third)


def test_augment_image_identity_policy_keeps_pixels() -> None:
    image = torch.rand(1, 32, 32)
    out = augment_image(image, 32, IDENTITY, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, image)


def test_augment_image_hflip_mirrors() -> None:
    image = torch.rand(1, 32, 32)
    policy = AugmentPolicy(**{**IDENTITY.__dict__, "hflip": 1.0})
    out = augment_image(image, 32, policy, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, image.flip(-1))


def test_augment_image_vflip_mirrors() -> None:
    image = torch.rand(1, 32, 32)
    policy = AugmentPolicy(**{**IDENTITY.__dict__, "vflip": 1.0})
    out = augment_image(image, 32, policy, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, image.flip(-2))


def test_ultrasound_policy_keeps_depth_axis() -> None:
    assert ULTRASOUND_AUGMENT.vflip == 0.0
    assert not ULTRASOUND_AUGMENT.rot90
    assert ULTRASOUND_AUGMENT.speckle_std > 0


def test_augment_image_raises_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"image must have shape \(C, H, W\)"):
        augment_image(torch.rand(32, 32), 32, IDENTITY, torch.Generator())
