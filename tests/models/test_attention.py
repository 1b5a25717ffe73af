"""CBAM and ECA: shapes kept, gates in [0, 1], gradients reach the input and the parameters."""

from __future__ import annotations

import pytest
import torch

from mpmmu.models import CBAM, ECA, eca_kernel_size


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (1, 1280, 7, 7), (3, 16, 13, 9)])
def test_cbam_keeps_shape(shape: tuple[int, int, int, int]) -> None:
    module = CBAM(shape[1])
    x = torch.randn(shape)
    assert module(x).shape == x.shape


@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (1, 1280, 7, 7), (3, 16, 13, 9)])
def test_eca_keeps_shape(shape: tuple[int, int, int, int]) -> None:
    module = ECA(shape[1])
    x = torch.randn(shape)
    assert module(x).shape == x.shape


def test_cbam_gates_in_unit_interval() -> None:
    module = CBAM(64)
    x = torch.randn(4, 64, 8, 8) * 10
    module(x)
    assert module.last_gate.shape == (4, 8, 8)
    assert module.last_channel_gate.shape == (4, 64)
    for gate in (module.last_gate, module.last_channel_gate):
        assert gate.min() >= 0.0
        assert gate.max() <= 1.0
        assert not gate.requires_grad


def test_eca_gates_in_unit_interval() -> None:
    module = ECA(64)
    module(torch.randn(4, 64, 8, 8) * 10)
    assert module.last_gate.shape == (4, 64)
    assert module.last_gate.min() >= 0.0
    assert module.last_gate.max() <= 1.0
    assert not module.last_gate.requires_grad


def test_cbam_output_is_gated_input() -> None:
    module = CBAM(16).eval()
    x = torch.randn(2, 16, 5, 5)
    y = module(x)
    expected = x * module.last_channel_gate[:, :, None, None] * module.last_gate[:, None]
    torch.testing.assert_close(y, expected)


def test_eca_output_is_gated_input() -> None:
    module = ECA(16)
    x = torch.randn(2, 16, 5, 5)
    y = module(x)
    torch.testing.assert_close(y, x * module.last_gate[:, :, None, None])


@pytest.mark.parametrize("factory", [lambda: CBAM(32), lambda: ECA(32)], ids=["cbam", "eca"])
def test_attention_gradients_flow(factory) -> None:
    module = factory()
    x = torch.randn(2, 32, 6, 6, requires_grad=True)
    module(x).square().sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("channels", "kernel_size"),
    [(16, 3), (64, 3), (256, 5), (512, 5), (1280, 5), (2048, 7), (2, 1)],
)
def test_eca_kernel_size_follows_channels(channels: int, kernel_size: int) -> None:
    assert eca_kernel_size(channels) == kernel_size
    assert ECA(channels).conv.kernel_size == (kernel_size,)


def test_eca_has_kernel_size_parameters() -> None:
    assert sum(p.numel() for p in ECA(1280).parameters()) == 5


def test_cbam_raises_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match=r"CBAM expects a \(N, 32, H, W\) tensor"):
        CBAM(32)(torch.randn(1, 16, 4, 4))


def test_eca_raises_even_kernel_size() -> None:
    with pytest.raises(ValueError, match="kernel_size must be a positive odd number, got 4"):
        ECA(32, kernel_size=4)
