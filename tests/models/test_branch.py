"""Branch: shapes for both modalities and backbones, gates, freezing and configuration round trip."""

from __future__ import annotations

import pytest
import torch

from mpmmu.errors import ModelWeightsError
from mpmmu.models import CBAM, ECA, Branch, build_branch

SIZE = 64


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("modality", "backbone", "feature_dim", "channel_count"),
    [
        ("mammography", "efficientnet_lite0", 1280, 1280),
        ("ultrasound", "efficientnet_lite0", 1280, 1280),
        ("mammography", "resnet18", 512, 512),
        ("ultrasound", "resnet18", 512, 512),
    ],
)
def test_branch_output_shapes(modality: str, backbone: str, feature_dim: int, channel_count: int) -> None:
    branch = build_branch(modality, backbone=backbone, pretrained=False).eval()
    batch = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        output = branch.forward_features(batch)
        logit = branch(batch)
    assert branch.feature_dim == feature_dim
    assert output.features.shape == (2, feature_dim)
    assert output.logit.shape == (2,)
    torch.testing.assert_close(logit, output.logit)
    assert output.channel_weights.shape == (2, channel_count)
    assert output.channel_weights.min() >= 0.0
    assert output.channel_weights.max() <= 1.0
    if modality == "mammography":
        assert output.spatial_attention.shape == (2, SIZE // 32, SIZE // 32)
        assert output.spatial_attention.min() >= 0.0
        assert output.spatial_attention.max() <= 1.0
    else:
        assert output.spatial_attention is None


def test_build_branch_picks_modality_attention() -> None:
    mammography = build_branch("mammography", pretrained=False)
    ultrasound = build_branch("ultrasound", pretrained=False)
    assert isinstance(mammography.attention["head"], CBAM)
    assert isinstance(ultrasound.attention["head"], ECA)


def test_branch_pretrained_loads_lite0_weights() -> None:
    branch = build_branch("ultrasound")
    assert branch.weights_provenance is not None
    assert branch.weights_provenance["tensors"] == 296


def test_branch_attention_after_block_stages() -> None:
    branch = build_branch("mammography", attention_stages=(6, 2, "head"), pretrained=False).eval()
    assert branch.attention_stages == (2, 6, "head")
    assert branch.attention["2"].channels == 40
    assert branch.attention["6"].channels == 320
    output = branch.forward_features(torch.randn(1, 3, SIZE, SIZE))
    assert branch.attention["2"].last_gate.shape == (1, SIZE // 8, SIZE // 8)
    assert output.spatial_attention.shape == (1, SIZE // 32, SIZE // 32)


def test_branch_without_attention_has_no_gates() -> None:
    branch = build_branch("ultrasound", attention="none", pretrained=False).eval()
    output = branch.forward_features(torch.randn(1, 3, SIZE, SIZE))
    assert len(branch.attention) == 0
    assert output.spatial_attention is None
    assert output.channel_weights is None


def test_branch_gradients_reach_attention_and_backbone() -> None:
    branch = build_branch("mammography", attention_stages=(4, "head"), pretrained=False).train()
    branch(torch.randn(2, 3, SIZE, SIZE)).sum().backward()
    for name in ("attention.4.spatial.conv.weight", "attention.head.channel.fc1.weight", "backbone.conv_stem.weight", "classifier.weight"):
        parameter = dict(branch.named_parameters())[name]
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_branch_target_layer_is_last_conv() -> None:
    lite0 = build_branch("ultrasound", pretrained=False)
    resnet = build_branch("ultrasound", backbone="resnet18", pretrained=False)
    assert lite0.target_layer is lite0.backbone.conv_head
    assert resnet.target_layer is resnet.backbone.layer4[1]


def test_branch_freeze_stages_stops_gradients() -> None:
    branch = build_branch("ultrasound", pretrained=False)
    branch.freeze_stages(3)
    branch.train()
    assert not branch.backbone.conv_stem.weight.requires_grad
    assert not any(p.requires_grad for p in branch.backbone.blocks[2].parameters())
    assert all(p.requires_grad for p in branch.backbone.blocks[3].parameters())
    assert not branch.backbone.bn1.training
    assert not branch.backbone.blocks[2].training
    assert branch.backbone.blocks[3].training
    running_mean = branch.backbone.blocks[0][0].bn1.running_mean.clone()
    branch(torch.randn(2, 3, SIZE, SIZE)).sum().backward()
    torch.testing.assert_close(branch.backbone.blocks[0][0].bn1.running_mean, running_mean)
    assert branch.backbone.blocks[2][0].conv_pw.weight.grad is None

    branch.freeze_stages(0)
    assert all(p.requires_grad for p in branch.parameters())
    assert branch.backbone.bn1.training


def test_branch_config_round_trip() -> None:
    branch = build_branch("mammography", attention_stages=(5, "head"), dropout=0.3, pretrained=False)
    branch.freeze_stages(2)
    rebuilt = Branch.from_config(branch.config())
    assert rebuilt.config() == branch.config()
    rebuilt.load_state_dict(branch.state_dict())
    batch = torch.randn(1, 3, SIZE, SIZE)
    torch.testing.assert_close(rebuilt.eval()(batch), branch.eval()(batch))


def test_branch_config_is_json_serialisable() -> None:
    import json

    config = build_branch("ultrasound", pretrained=False).config()
    assert json.loads(json.dumps(config)) == config


def test_branch_raises_resnet18_pretrained() -> None:
    with pytest.raises(ModelWeightsError, match="pretrained=False"):
        build_branch("ultrasound", backbone="resnet18", pretrained=True)


@pytest.mark.parametrize("stages", [(7,), ("neck",), (-1,)])
def test_branch_raises_invalid_attention_stage(stages: tuple) -> None:
    with pytest.raises(ValueError, match="attention_stages entries must be 'head' or a stage index 0..6"):
        build_branch("ultrasound", attention_stages=stages, pretrained=False)


def test_branch_raises_duplicate_resnet_position() -> None:
    with pytest.raises(ValueError, match="names the same place twice"):
        build_branch("ultrasound", backbone="resnet18", attention_stages=(3, "head"), pretrained=False)


def test_branch_raises_unknown_modality() -> None:
    with pytest.raises(ValueError, match="modality must be one of"):
        build_branch("mri", pretrained=False)


def test_branch_raises_wrong_input_channels() -> None:
    branch = build_branch("ultrasound", pretrained=False)
    with pytest.raises(ValueError, match=r"batch must have shape \(N, 3, S, S\)"):
        branch(torch.randn(1, 1, SIZE, SIZE))


def test_freeze_stages_raises_out_of_range() -> None:
    branch = build_branch("ultrasound", pretrained=False)
    with pytest.raises(ValueError, match=r"n must be in 0..7"):
        branch.freeze_stages(8)
