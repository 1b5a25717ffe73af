"""Attention modules, backbones and the per-modality branches of the MPM-MU model."""

from __future__ import annotations

from mpmmu.models.backbones import (
    BACKBONES,
    LITE0_IMAGENET_INPUT,
    STAGE_LAYOUTS,
    StageLayout,
    convert_lite0_state_dict,
    create_backbone,
    lite0_weights_path,
    load_lite0_imagenet,
)
from mpmmu.models.branch import (
    DEFAULT_ATTENTION_STAGES,
    MODALITY_ATTENTION,
    Branch,
    BranchOutput,
    build_branch,
)
from mpmmu.models.cbam import CBAM, ChannelAttention, SpatialAttention
from mpmmu.models.eca import ECA, eca_kernel_size

__all__ = [
    "BACKBONES",
    "CBAM",
    "DEFAULT_ATTENTION_STAGES",
    "ECA",
    "LITE0_IMAGENET_INPUT",
    "MODALITY_ATTENTION",
    "STAGE_LAYOUTS",
    "Branch",
    "BranchOutput",
    "ChannelAttention",
    "SpatialAttention",
    "StageLayout",
    "build_branch",
    "convert_lite0_state_dict",
    "create_backbone",
    "eca_kernel_size",
    "lite0_weights_path",
    "load_lite0_imagenet",
]
