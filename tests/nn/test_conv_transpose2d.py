"""nn.ConvTranspose2d: the gradient checker on drawn shapes and hyper-parameters, what the
layer adds to its op (parameter shapes, PyTorch's initialisation, arguments, the worked
example, gradient accumulation, dtypes, repr), a Conv2d/ConvTranspose2d round trip of
sizes, PyTorch's nn.ConvTranspose2d as the oracle (float64, output_padding included), and
every bad input with its message. The op's own math is tested in tests/ops/."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl import nn
from tests.helpers import assert_bias_grad_and_accumulation, check_layer, one_or_pair, raises, randn
from tests.ops.test_conv_transpose2d import WORKED_KERNEL, WORKED_X, WORKED_Y
from tests.strategies import seeds, transposed_windows

RTOL, ATOL = 1e-7, 1e-10  # against PyTorch; atol for entries that are zero up to round-off


# --- the gradient checker -------------------------------------------------------------------


@given(
    geometry=transposed_windows(),
    N=st.integers(1, 2),
    C_in=st.integers(1, 2),
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_conv_transpose2d_passes_the_gradient_checker(geometry, N, C_in, C_out, bias, seed):
    H, W, (KH, KW), (sh, sw), (ph, pw), (oph, opw) = geometry
    minidl.seed(seed)
    layer = nn.ConvTranspose2d(
        C_in,
        C_out,
        one_or_pair(KH, KW),
        stride=one_or_pair(sh, sw),
        padding=one_or_pair(ph, pw),
        output_padding=one_or_pair(oph, opw),
        bias=bias,
    )
    x = randn(N, C_in, H, W, seed=seed)
    OH, OW = (H - 1) * sh - 2 * ph + KH + oph, (W - 1) * sw - 2 * pw + KW + opw
    assert layer(x.astype(np.float32)).shape == (N, C_out, OH, OW)
    report = check_layer(layer, x, seed=seed)
    assert report.ok, report
    assert set(report.errors) == ({"input", "weight", "bias"} if bias else {"input", "weight"})


CASES = {
    "3x3-stride2-pad1-outpad1 (doubling)": (dict(kernel_size=3, stride=2, padding=1, output_padding=1), (2, 2, 3, 3)),
    "4x4-stride2-pad1-no-bias": (dict(kernel_size=4, stride=2, padding=1, bias=False), (1, 2, 3, 2)),
    "3x3-stride2-outpad1 (bias-only rows)": (dict(kernel_size=3, stride=2, output_padding=1), (2, 1, 2, 3)),
    "2x3-stride(3,2)-pad(1,0)-outpad(2,1)": (
        dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 0), output_padding=(2, 1)),
        (1, 2, 3, 3),
    ),
    "1x1": (dict(kernel_size=1), (2, 2, 3, 3)),
}


@pytest.mark.parametrize("name", CASES)
def test_decoder_geometries_pass_the_gradient_checker(name):
    """Fixed cases on top of hypothesis's draws: the usual upsampling layers, a non-square
    kernel with per-axis stride, padding and output padding, bias on and off."""
    kwargs, shape = CASES[name]
    minidl.seed(1)
    report = check_layer(nn.ConvTranspose2d(shape[1], 3, **kwargs), randn(*shape))
    assert report.ok, report


# --- what the layer adds --------------------------------------------------------------------


def test_parameters_shapes_initialisation_and_order():
    minidl.seed(0)
    layer = nn.ConvTranspose2d(4, 8, (3, 5))
    assert layer.weight.shape == (4, 8, 3, 5) and layer.bias.shape == (8,)  # (C_in, C_out, KH, KW), as PyTorch
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    bound = 1 / np.sqrt(8 * 3 * 5)  # Kaiming-uniform (a = sqrt(5)), PyTorch's fan_in = weight.shape[1] * KH * KW
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert layer.parameters() == [layer.weight, layer.bias]
    assert [k for k, _ in layer.named_parameters()] == ["weight", "bias"]
    no_bias = nn.ConvTranspose2d(4, 8, 3, bias=False)
    assert no_bias.bias is None and no_bias.parameters() == [no_bias.weight]
    assert list(no_bias.state_dict()) == ["weight"]


def test_int_arguments_become_pairs_and_repr_shows_them():
    layer = nn.ConvTranspose2d(1, 2, 3, stride=2, padding=1, output_padding=1)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.output_padding) == ((3, 3), (2, 2), (1, 1), (1, 1))
    layer = nn.ConvTranspose2d(1, 2, (3, 1), stride=(1, 3), padding=(0, 1), output_padding=(0, 2), bias=False)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.output_padding) == ((3, 1), (1, 3), (0, 1), (0, 2))
    assert repr(layer) == (
        "ConvTranspose2d(1, 2, kernel_size=(3, 1), stride=(1, 3), padding=(0, 1), output_padding=(0, 2), bias=False)"
    )


def test_the_worked_example_through_the_layer():
    """kernel [[1,4,1],[1,4,3],[3,3,1]], input [[2,1],[4,4]], stride 1, no padding."""
    layer = nn.ConvTranspose2d(1, 1, 3, bias=False)
    layer.weight.data = WORKED_KERNEL[None, None].astype(np.float32)
    np.testing.assert_array_equal(layer(WORKED_X[None, None].astype(np.float32))[0, 0], WORKED_Y)


def test_bias_adds_per_output_channel_and_gradients_accumulate():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1).to(np.float64)
    x = randn(2, 2, 3, 3)
    without = nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1, bias=False).to(np.float64)
    without.weight.data = layer.weight.data
    y = layer(x)
    assert y.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(y, without(x) + layer.bias.data[None, :, None, None], rtol=1e-13)
    np.testing.assert_array_equal(y[:, :, 7, 7], np.broadcast_to(layer.bias.data, (2, 3)))  # output_padding: bias only
    dy = randn(*y.shape, seed=1)
    assert_bias_grad_and_accumulation(layer, x, dy)


def test_reads_the_parameter_data_at_every_call():
    layer = nn.ConvTranspose2d(1, 1, 1)
    layer.weight.data = np.full((1, 1, 1, 1), 2.0, dtype=np.float32)
    layer.bias.data = np.zeros(1, dtype=np.float32)
    np.testing.assert_array_equal(layer(np.ones((1, 1, 2, 2), np.float32)), np.full((1, 1, 2, 2), 2.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    layer = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).to(dtype)
    y = layer(randn(2, 3, 4, 4, dtype=dtype))
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype == dtype


def test_it_undoes_the_size_change_of_the_matching_conv2d():
    """Conv2d(k, s, p) maps H to (H + 2p - k) // s + 1; ConvTranspose2d(k, s, p,
    output_padding) maps it back, and output_padding picks which of the s sizes."""
    minidl.seed(0)
    for H in (8, 9):  # stride 2: both give 4x4 (or 5x5) after the convolution
        down = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        up = nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=(H + 1) % 2)
        model = nn.Sequential(down, nn.ReLU(), up)
        x = randn(2, 1, H, H, dtype=np.float32)
        assert model(x).shape == x.shape
        assert model.backward(np.ones_like(x)).shape == x.shape


# --- PyTorch as the oracle ------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    """PyTorch, or a skip: only these tests need it (the rest of the file runs without it)."""
    return pytest.importorskip("torch", reason="PyTorch is the oracle for these tests (pip install torch)")


@given(
    geometry=transposed_windows(max_size=5, max_kernel=4),
    N=st.integers(1, 3),
    C_in=st.integers(1, 3),
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_matches_torch_nn_conv_transpose2d(torch, geometry, N, C_in, C_out, bias, seed):
    H, W, kernel, stride, padding, output_padding = geometry
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, output_padding=output_padding, bias=bias)
    ours = nn.ConvTranspose2d(C_in, C_out, **kwargs).to(np.float64)
    theirs = torch.nn.ConvTranspose2d(C_in, C_out, **kwargs).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = randn(N, C_in, H, W, seed=seed)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    dy = randn(*y.shape, seed=seed + 1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=RTOL, atol=ATOL)
    if bias:
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_same_parameter_shapes_keys_and_initialisation_bound_as_torch(torch):
    ours, theirs = nn.ConvTranspose2d(6, 16, (3, 5), stride=2), torch.nn.ConvTranspose2d(6, 16, (3, 5), stride=2)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    bound = 1 / np.sqrt(16 * 3 * 5)  # both draw from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_out * KH * KW
    for name in ("weight", "bias"):
        assert np.abs(getattr(ours, name).data).max() <= bound
        assert getattr(theirs, name).detach().abs().max().item() <= bound
    for weights in (ours.weight.data, theirs.weight.detach().numpy()):  # 1440 draws reach close to the bound
        assert np.abs(weights).max() > 0.95 * bound


def test_torch_also_rejects_output_padding_not_smaller_than_stride(torch):
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        torch.nn.functional.conv_transpose2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3), stride=2, output_padding=2)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(output_padding=1), "output_padding=(1, 1) with stride=(1, 1)"),
        (dict(stride=2, output_padding=2), "output_padding=(2, 2) with stride=(2, 2)"),
        (dict(stride=(2, 1), output_padding=(1, 1)), "output_padding=(1, 1) with stride=(2, 1)"),
    ],
)
def test_output_padding_must_be_smaller_than_stride(kwargs, message):
    with raises(
        ValueError,
        "ConvTranspose2d: output_padding must be smaller than stride",
        "smaller than either stride or dilation",
        message,
    ):
        nn.ConvTranspose2d(1, 1, 3, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, err, message",
    [
        ((0, 3, 3), {}, ValueError, "ConvTranspose2d: in_channels must be at least 1, got 0"),
        ((3, 2.0, 3), {}, TypeError, "ConvTranspose2d: out_channels must be an int, got float"),
        ((1, 1, 0), {}, ValueError, "ConvTranspose2d: kernel_size must be at least 1, got 0"),
        (
            (1, 1, (3, 3, 3)),
            {},
            TypeError,
            "ConvTranspose2d: kernel_size must be an int or a pair of ints, got (3, 3, 3)",
        ),
        ((1, 1, 3), dict(stride=0), ValueError, "ConvTranspose2d: stride must be at least 1, got 0"),
        ((1, 1, 3), dict(padding=-1), ValueError, "ConvTranspose2d: padding must be at least 0, got -1"),
        (
            (1, 1, 3),
            dict(stride=2, output_padding=-1),
            ValueError,
            "ConvTranspose2d: output_padding must be at least 0, got -1",
        ),
        (
            (1, 1, 3),
            dict(stride=2, output_padding=True),
            TypeError,
            "ConvTranspose2d: output_padding must be an int or a pair of ints, got True",
        ),
    ],
)
def test_constructor_arguments(args, kwargs, err, message):
    with raises(err, message):
        nn.ConvTranspose2d(*args, **kwargs)


def test_input_must_be_a_float_array():
    with raises(TypeError, "ConvTranspose2d: expected the input to be a numpy.ndarray, got list"):
        nn.ConvTranspose2d(1, 1, 3)([[[[1.0]]]])
    with raises(TypeError, "ConvTranspose2d: expected the input to have dtype float32 or float64, got int64"):
        nn.ConvTranspose2d(1, 1, 3)(np.ones((1, 1, 2, 2), dtype=np.int64))


@pytest.mark.parametrize("shape", [(2, 2), (1, 2, 2), (1, 1, 1, 2, 2)])
def test_input_must_be_4d(shape):
    with raises(ValueError, "ConvTranspose2d: expected a 4-D input (N, C, H, W)", f"got shape {shape}"):
        nn.ConvTranspose2d(1, 1, 3)(randn(*shape, dtype=np.float32))


def test_input_channels_must_match_in_channels():
    with raises(ValueError, "ConvTranspose2d: expected 3 input channels, got 2 (input shape (4, 2, 5, 5))"):
        nn.ConvTranspose2d(3, 2, 3)(randn(4, 2, 5, 5, dtype=np.float32))


def test_input_dtype_must_match_the_weight():
    with raises(TypeError, "ConvTranspose2d: input dtype float64 does not match weight dtype float32"):
        nn.ConvTranspose2d(1, 1, 3)(randn(1, 1, 2, 2))


@pytest.mark.parametrize(
    "kwargs, shape, message",
    [
        (dict(kernel_size=1, padding=2), (1, 1, 1, 1), "the output would be -3x-3 for an input of 1x1"),
        (dict(kernel_size=3, stride=2, padding=(1, 3)), (1, 1, 2, 2), "the output would be 3x-1 for an input of 2x2"),
        (dict(kernel_size=2, padding=1), (1, 1, 1, 3), "the output would be 0x2 for an input of 1x3"),
    ],
)
def test_output_must_not_be_empty_or_negative(kwargs, shape, message):
    with raises(
        ValueError,
        f"ConvTranspose2d: {message}",
        "OH = (H - 1) stride - 2 padding + KH + output_padding",
        "at least 1x1",
    ):
        nn.ConvTranspose2d(1, 1, **kwargs)(randn(*shape, dtype=np.float32))


def test_backward_checks_its_upstream_gradient():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1)
    with raises(RuntimeError, "ConvTranspose2d: backward() called before forward()"):
        layer.backward(randn(1, 3, 8, 8, dtype=np.float32))
    layer(randn(1, 2, 3, 3, dtype=np.float32))
    with raises(
        ValueError, "ConvTranspose2d: expected the upstream gradient dy of shape (1, 3, 8, 8)", "got (1, 3, 7, 7)"
    ):
        layer.backward(randn(1, 3, 7, 7, dtype=np.float32))
    with raises(TypeError, "ConvTranspose2d: upstream gradient dy has dtype float64, expected float32"):
        layer.backward(randn(1, 3, 8, 8))


def test_errors_inside_a_sequential_name_the_position():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(3, 1, 3))
    with raises(ValueError, "Sequential[1] > ConvTranspose2d: expected 3 input channels, got 4"):
        model(randn(1, 1, 5, 5, dtype=np.float32))
