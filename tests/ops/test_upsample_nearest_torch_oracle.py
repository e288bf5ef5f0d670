"""Nearest-neighbour upsampling against torch.nn.functional.interpolate(mode="nearest"),
in float64: the op's values and gradients, and the ``nn.Upsample`` layer."""

import numpy as np
import pytest
from hypothesis import given

from minidl import nn
from minidl.ops import upsample_nearest
from tests.helpers import random_dy
from tests.ops.test_upsample_nearest import geometries, seeds

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for these tests (pip install torch)")
F = torch.nn.functional

RTOL = 1e-7


@given(geometry=geometries(), seed=seeds)
def test_op_values_and_gradients(geometry, seed):
    shape, scale = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.interpolate(xt, scale_factor=scale, mode="nearest")
    y = upsample_nearest.forward(x, scale)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL)
    dy = random_dy(y.shape, seed + 1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(upsample_nearest.backward(dy, scale), xt.grad.numpy(), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("scale_factor", [2, (3, 1), (1, 2)])
def test_layer_matches_torch_upsample(scale_factor):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = nn.Upsample(scale_factor)
    torch_layer = torch.nn.Upsample(scale_factor=scale_factor, mode="nearest")
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_layer(xt)
    np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=RTOL)
    dy = random_dy(tuple(yt.shape), 1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=RTOL, atol=1e-12)
