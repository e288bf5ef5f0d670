"""Layers check their own parameters and buffers before a kernel reads them.

A ``Parameter.data`` or a buffer may be replaced (loading does it, and the docs allow
it), so every parametrised layer compares each one's shape with what its configuration
says, and its dtype and device with the others', before calling an op: a wrong shape is
a ValueError naming the layer, the attribute, the expected and the actual shape, never
an out-of-bounds read, a NaN or a silently empty output.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import nn
from minidl.nn.module import Parameter
from tests.helpers import assert_same_snapshot, raises, snapshot

LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), (2, 2, 4, 4)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), (4, 3)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (4, 2, 3, 3)),
}


def input_for(name, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(LAYERS[name][1]).astype(dtype)


def set_state(layer, attr, array):
    """Replace a parameter's data or a buffer, as loading code would."""
    if attr in layer.buffer_names:
        setattr(layer, attr, array)
    else:
        getattr(layer, attr).data = array


@given(name=st.sampled_from(sorted(LAYERS)), data=st.data())
def test_a_parameter_or_buffer_of_another_shape_is_refused_before_any_kernel(name, data):
    layer = LAYERS[name][0]()
    attr = data.draw(st.sampled_from(sorted(layer.state_shapes())))
    expected = layer.state_shapes()[attr]
    shape = data.draw(st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple).filter(lambda s: s != expected))
    set_state(layer, attr, np.zeros(shape, np.float32))
    x = input_for(name)
    for mode in ("train", "eval"):
        getattr(layer, mode)()
        before = snapshot(layer)
        with raises(ValueError, f"{name}(", f"): {attr} has shape {shape}, expected {expected}"):
            layer(x)
        assert_same_snapshot(before, snapshot(layer))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_backward_checks_the_state_too(name):
    """Replaced between forward and backward: backward refuses it as well."""
    layer = LAYERS[name][0]()
    y = layer(input_for(name))
    layer.weight.data = np.zeros(layer.weight.shape[:-1] + (7,), np.float32)
    with raises(ValueError, "weight has shape"):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_mixed_dtypes_in_one_layer_are_refused(name):
    layer = LAYERS[name][0]()
    layer.bias.data = layer.bias.data.astype(np.float64)
    with raises(
        TypeError, f"{name}: bias has dtype float64, the layer's other state has float32", "layer.to(np.float32)"
    ):
        layer(input_for(name))


def test_the_reported_examples():
    """Linear(4, 3) with a bias of shape (1,), a running_var of the wrong length, a conv
    weight of the wrong shape: each an error (today: garbage, NaN, an empty output)."""
    linear = nn.Linear(4, 3)
    linear.bias.data = np.zeros(1, np.float32)
    with raises(ValueError, "Linear(in_features=4, out_features=3, bias=True): bias has shape (1,), expected (3,)"):
        linear(input_for("Linear"))
    bn = nn.BatchNorm1d(3).eval()
    bn.running_var = np.ones(2, np.float32)
    with raises(ValueError, "running_var has shape (2,), expected (3,)"):
        bn(input_for("BatchNorm1d"))
    conv = nn.Conv2d(2, 3, 3, padding=1)
    conv.weight.data = np.zeros((3, 2, 1, 1), np.float32)
    with raises(ValueError, "weight has shape (3, 2, 1, 1), expected (3, 2, 3, 3)"):
        conv(input_for("Conv2d"))


def test_a_plain_array_where_a_parameter_belongs_is_refused():
    linear = nn.Linear(4, 3)
    linear.bias = np.zeros(3, np.float32)
    with raises(TypeError, "Linear: bias must be a minidl Parameter (or None), got ndarray"):
        linear(input_for("Linear"))


@pytest.mark.parametrize(
    "value, error, message",
    [
        ([1.0, 2.0], TypeError, "Parameter.data: expected a numpy.ndarray or a CUDA device array, got list"),
        (np.zeros(3, np.int64), TypeError, "Parameter.data: expected float32 or float64 data, got int64"),
        (np.zeros(3, np.complex64), TypeError, "Parameter.data: expected float32 or float64 data, got complex64"),
    ],
)
def test_parameter_data_must_be_a_float_array(value, error, message):
    p = Parameter(np.zeros(3, np.float32))
    with raises(error, message):
        p.data = value
    assert p.data.dtype == np.float32


def test_parameter_grad_must_match_the_data():
    p = Parameter(np.zeros((2, 3), np.float32))
    with raises(ValueError, "Parameter.grad: expected shape (2, 3), dtype float32 on 'cpu'", "got shape (3,)"):
        p.grad = np.zeros(3, np.float32)
    p.grad = None  # PyTorch's way to drop a gradient: here it is zeros again
    assert p.grad.shape == (2, 3) and not p.grad.any()


def test_a_strided_or_read_only_array_is_copied_so_updates_are_never_lost():
    """A transposed view or a read-only array as data: the ops update ``data`` in place,
    so it is stored as a C-contiguous writeable copy, and a layer gives the same output
    as with the plain array."""
    linear = nn.Linear(3, 4)
    w = np.ascontiguousarray(linear.weight.data)
    x = input_for("Linear")[:, :3].copy()
    expected = linear(x)
    linear.weight.data = np.asfortranarray(w)
    read_only = w.copy()
    read_only.flags.writeable = False
    for value in (np.asfortranarray(w), read_only, w.T.copy().T):
        linear.weight.data = value
        assert linear.weight.data.flags.c_contiguous and linear.weight.data.flags.writeable
        np.testing.assert_array_equal(linear(x), expected)
