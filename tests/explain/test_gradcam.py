"""Grad-CAM of the malignant logit: value range, shape, no hooks left, same map as plain Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM

from mpmmu.explain import MalignantLogitTarget, grad_cam
from mpmmu.models import build_branch
from mpmmu.records import ModelInput, Transform

SIZE = 64


def _hook_count(model: torch.nn.Module) -> int:
    return sum(
        len(module._forward_hooks) + len(module._forward_pre_hooks) + len(module._backward_hooks)
        for module in model.modules()
    )


@pytest.fixture(scope="module")
def branch() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_branch("ultrasound", pretrained=False).eval()


@pytest.fixture(scope="module")
def model_input() -> ModelInput:
    rng = np.random.default_rng(0)
    tensor = rng.standard_normal((3, SIZE, SIZE)).astype(np.float32)
    transform = Transform((SIZE, SIZE), (0, 0, SIZE, SIZE), False, 1.0, 0, 0, SIZE, True)
    return ModelInput(tensor=tensor, display=(tensor[0] + 1) / 2, transform=transform, modality="ultrasound")


def test_grad_cam_map_range_and_shape(branch, model_input):
    heatmap = grad_cam(branch, model_input)

    assert heatmap.shape == (SIZE, SIZE)
    assert heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0
    assert heatmap.max() <= 1.0


def test_grad_cam_leaves_model_unchanged(branch, model_input):
    before = [parameter.requires_grad for parameter in branch.parameters()]

    grad_cam(branch, model_input)

    assert _hook_count(branch) == 0
    assert [parameter.requires_grad for parameter in branch.parameters()] == before
    assert all(parameter.grad is None for parameter in branch.parameters())


def test_grad_cam_leaves_no_hooks_after_failure(branch, model_input):
    wrong = ModelInput(
        tensor=np.zeros((1, SIZE, SIZE), np.float32),
        display=model_input.display,
        transform=model_input.transform,
        modality="ultrasound",
    )

    with pytest.raises(ValueError, match="batch must have shape"):
        grad_cam(branch, wrong)

    assert _hook_count(branch) == 0
    assert all(parameter.requires_grad for parameter in branch.parameters())


def test_grad_cam_matches_plain_grad_cam(branch, model_input):
    batch = torch.from_numpy(model_input.tensor)[None]
    with GradCAM(model=branch, target_layers=[branch.target_layer]) as cam:
        expected = cam(input_tensor=batch, targets=[MalignantLogitTarget()])[0]

    heatmap = grad_cam(branch, model_input)

    np.testing.assert_allclose(heatmap, expected, atol=1e-5)


def test_grad_cam_raises_foreign_target_layer(branch, model_input):
    with pytest.raises(ValueError, match="not a submodule"):
        grad_cam(branch, model_input, target_layer=torch.nn.Conv2d(1, 1, 1))


@pytest.mark.parametrize("shape", [(), (1,)])
def test_malignant_logit_target_returns_scalar(shape):
    output = torch.full(shape, 2.5, requires_grad=True)

    score = MalignantLogitTarget()(output)

    assert score.shape == ()
    score.backward()
    assert float(output.grad.sum()) == 1.0
