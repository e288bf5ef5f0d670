"""The affine warp: exact copies at whole-number points (identity, shifts, flips, quarter
turns), the adjoint identity, backward by finite differences, and PyTorch's grid_sample
(bilinear, zeros outside, align_corners=True) as the oracle."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.data.transforms import RandomAffine
from minidl.ops import warp_affine
from tests.helpers import assert_gradient, randn, random_dy
from tests.strategies import seeds


def random_theta(N, H, W, seed):
    """Rotations up to 40 degrees, shifts up to 30 %, scales 0.7-1.3: RandomAffine's matrices."""
    return RandomAffine(40, translate=(0.3, 0.3), scale=(0.7, 1.3)).theta(N, H, W, np.random.default_rng(seed))


def theta_of(matrix, N):
    return np.repeat(np.asarray(matrix, dtype=np.float64)[None], N, axis=0)


shapes = st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 5), st.integers(1, 5))


def test_identity_and_whole_pixel_shift_copy_exactly():
    x = randn(2, 3, 4, 5)
    np.testing.assert_array_equal(warp_affine.forward(x, theta_of([[1, 0, 0], [0, 1, 0]], 2)), x)
    shifted = warp_affine.forward(x, theta_of([[1, 0, -2], [0, 1, 1]], 2))  # 2 right, 1 up
    expected = np.zeros_like(x)
    expected[:, :, :3, 2:] = x[:, :, 1:, :3]
    np.testing.assert_array_equal(shifted, expected)


def test_flip_and_quarter_turn():
    x = randn(1, 2, 4, 4)
    flipped = warp_affine.forward(x, theta_of([[-1, 0, 3], [0, 1, 0]], 1))  # column j reads W - 1 - j
    np.testing.assert_array_equal(flipped, x[..., ::-1])
    turned = RandomAffine(degrees=(90, 90)).theta(1, 4, 4, np.random.default_rng(0))
    np.testing.assert_allclose(warp_affine.forward(x, turned), np.rot90(x, axes=(2, 3)), atol=1e-12)


def test_a_half_pixel_shift_averages_neighbours():
    x = np.array([[[[0.0, 2.0, 4.0]]]])
    y = warp_affine.forward(x, theta_of([[1, 0, 0.5], [0, 1, 0]], 1))
    np.testing.assert_allclose(y[0, 0, 0], [1.0, 3.0, 2.0])  # the last one is half outside: (4 + 0) / 2


@given(shape=shapes, seed=seeds)
def test_adjoint_identity(shape, seed):
    """<A x, dy> = <x, A^T dy>: backward is the transpose of forward."""
    N, C, H, W = shape
    x, dy, theta = randn(*shape, seed=seed % 1000), random_dy(shape, seed=seed % 997), random_theta(N, H, W, seed)
    lhs = np.sum(warp_affine.forward(x, theta) * dy)
    rhs = np.sum(x * warp_affine.backward(dy, theta))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@given(shape=shapes, seed=seeds)
def test_backward_by_finite_differences(shape, seed):
    N, C, H, W = shape
    x, dy, theta = randn(*shape, seed=seed % 1000), random_dy(shape, seed=seed % 997), random_theta(N, H, W, seed)
    assert_gradient(warp_affine.backward(dy, theta), lambda x: np.sum(warp_affine.forward(x, theta) * dy), x)


def test_float32_follows_float64():
    theta = random_theta(2, 6, 7, 3)
    x = randn(2, 3, 6, 7)
    y32 = warp_affine.forward(x.astype(np.float32), theta.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, warp_affine.forward(x, theta), atol=1e-5)


def test_matches_torch_grid_sample():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for this test (pip install torch)")
    N, C, H, W = 3, 2, 7, 6
    x, theta, dy = randn(N, C, H, W), random_theta(N, H, W, 11), random_dy((N, C, H, W), seed=2)
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    u = theta[:, 0, 0, None, None] * cols + theta[:, 0, 1, None, None] * rows + theta[:, 0, 2, None, None]
    v = theta[:, 1, 0, None, None] * cols + theta[:, 1, 1, None, None] * rows + theta[:, 1, 2, None, None]
    grid = np.stack([2 * u / (W - 1) - 1, 2 * v / (H - 1) - 1], axis=-1)  # align_corners=True: -1, 1 = pixel centres
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.grid_sample(xt, torch.tensor(grid), "bilinear", "zeros", align_corners=True)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(warp_affine.forward(x, theta), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(warp_affine.backward(dy, theta), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
