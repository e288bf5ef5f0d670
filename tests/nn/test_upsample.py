"""``nn.Upsample``: the gradient checker, what the layer adds to its op (argument
normalisation, shapes, dtypes, repr, use inside a model) and every bad input."""

import numpy as np
import pytest

from minidl import nn
from minidl.gradcheck import check_layer
from tests.helpers import raises, randn


@pytest.mark.parametrize("scale_factor", [1, 2, (2, 3), (3, 1)])
def test_upsample_passes_the_gradient_checker(scale_factor):
    report = check_layer(nn.Upsample(scale_factor), randn(2, 3, 3, 2))
    assert report.ok, report


def test_upsample_inside_a_model_passes_the_gradient_checker():
    model = nn.Sequential(nn.Upsample(2), nn.Tanh(), nn.Upsample((1, 2)), nn.Flatten(), nn.Linear(2 * 4 * 8, 3))
    report = check_layer(model, randn(2, 2, 2, 2))
    assert report.ok, report


@pytest.mark.parametrize("scale_factor, pair", [(2, (2, 2)), ((2, 3), (2, 3)), ([1, 4], (1, 4)), (np.int64(3), (3, 3))])
def test_scale_factor_becomes_a_pair(scale_factor, pair):
    layer = nn.Upsample(scale_factor)
    assert layer.scale_factor == pair and layer.mode == "nearest"
    assert layer(randn(1, 2, 3, 5)).shape == (1, 2, 3 * pair[0], 5 * pair[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_and_backward_sums_blocks(dtype):
    layer = nn.Upsample(2)
    x = randn(2, 3, 4, 5, dtype=dtype)
    y = layer(x)
    assert y.dtype == dtype and y.shape == (2, 3, 8, 10)
    np.testing.assert_array_equal(y[:, :, ::2, ::2], x)
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(dx, 4)


def test_upsample_has_no_parameters_and_no_state():
    layer = nn.Upsample(2)
    assert layer.parameters() == [] and layer.state_dict() == {}


def test_repr_shows_the_constructor_arguments():
    assert repr(nn.Upsample(2)) == "Upsample(scale_factor=2, mode='nearest')"
    assert repr(nn.Upsample((2, 3))) == "Upsample(scale_factor=(2, 3), mode='nearest')"
    assert repr(nn.Upsample((2, 2), mode="nearest")) == "Upsample(scale_factor=2, mode='nearest')"


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "Nearest", None])
def test_only_nearest_mode_is_available(mode):
    with raises(ValueError, "Upsample: mode must be 'nearest' (the only mode minidl implements)", f"got {mode!r}"):
        nn.Upsample(2, mode=mode)


@pytest.mark.parametrize("scale_factor", [2.0, 1.5, True, "2", (2,), (2, 2, 2), (2, 1.5), None])
def test_scale_factor_must_be_ints(scale_factor):
    with raises(TypeError, "Upsample: scale_factor must be an int or a pair of ints", f"got {scale_factor!r}"):
        nn.Upsample(scale_factor)


@pytest.mark.parametrize("scale_factor", [0, -2, (2, 0), (-1, 3)])
def test_scale_factor_must_be_at_least_one(scale_factor):
    with raises(ValueError, f"Upsample: scale_factor must be at least 1, got {scale_factor!r}"):
        nn.Upsample(scale_factor)


@pytest.mark.parametrize("shape", [(4,), (2, 4), (1, 2, 4), (1, 1, 2, 2, 2)])
def test_input_must_be_4d(shape):
    with raises(ValueError, "Upsample: expected a 4-D input (N, C, H, W)", f"got shape {shape}"):
        nn.Upsample(2)(randn(*shape))


def test_input_must_be_a_float_array():
    with raises(TypeError, "Upsample: expected the input to have dtype float32 or float64, got int64"):
        nn.Upsample(2)(np.ones((1, 1, 2, 2), dtype=np.int64))
    with raises(TypeError, "Upsample: expected the input to be a numpy.ndarray, got list"):
        nn.Upsample(2)([[[[1.0]]]])


def test_backward_checks_its_upstream_gradient():
    layer = nn.Upsample((2, 3))
    with raises(RuntimeError, "Upsample: backward() called before forward()"):
        layer.backward(randn(1, 1, 4, 6))
    layer(randn(1, 2, 2, 2))
    with raises(ValueError, "Upsample: expected the upstream gradient dy of shape (1, 2, 4, 6)", "got (1, 2, 4, 4)"):
        layer.backward(randn(1, 2, 4, 4))
    with raises(TypeError, "Upsample: expected the upstream gradient dy to have dtype float32 or float64, got int64"):
        layer.backward(np.ones((1, 2, 4, 6), dtype=np.int64))


def test_errors_inside_a_sequential_name_the_position():
    with raises(ValueError, "Sequential[1] > Upsample: expected a 4-D input (N, C, H, W), got shape (3, 8)"):
        nn.Sequential(nn.Flatten(), nn.Upsample(2))(randn(3, 2, 2, 2))
