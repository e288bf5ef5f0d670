"""Every layer through the gradient checker (random upstream gradient, every element,
float64) on shapes and hyper-parameters that hypothesis draws, then what each layer adds
to its op: parameters and their initialisation, defaults, modes, caching, running
statistics, state, dtypes, repr. The ops' own math is tested in tests/ops/; nn.Upsample
and nn.ConvTranspose2d have files of their own.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl import nn
from tests.helpers import (
    assert_bias_grad_and_accumulation,
    check_layer,
    labels,
    lenet5,
    one_or_pair,
    output_size,
    randn,
)
from tests.strategies import seeds, windows

LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), (4, 5)),
    "Linear-no-bias": (lambda: nn.Linear(5, 3, bias=False), (4, 5)),
    "ReLU": (nn.ReLU, (3, 2, 4)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (3, 2, 4)),
    "Sigmoid": (nn.Sigmoid, (3, 2, 4)),
    "Tanh": (nn.Tanh, (3, 2, 4)),
    "Dropout-train": (lambda: nn.Dropout(0.4), (3, 2, 4)),
    "Dropout-eval": (lambda: nn.Dropout(0.4).eval(), (3, 2, 4)),
    "Flatten": (nn.Flatten, (3, 2, 2, 2)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 3)), (3, 6, 2)),
    "MLP": (
        lambda: nn.Sequential(
            nn.Flatten(),
            nn.Linear(6, 8),
            nn.LeakyReLU(),
            nn.Dropout(0.2),
            nn.Linear(8, 4),
            nn.Sigmoid(),
            nn.Linear(4, 3),
            nn.Tanh(),
        ),
        (4, 2, 3),
    ),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_passes_the_gradient_checker(name):
    minidl.seed(0)
    make, shape = LAYERS[name]
    report = check_layer(make(), randn(*shape))
    assert report.ok, report


@pytest.mark.parametrize(
    "loss, x, target",
    [
        (nn.SoftmaxCrossEntropy(), randn(5, 4), labels((5,), 4)),
        (nn.SoftmaxCrossEntropy(weight=[0.5, 2.0, 1.0, 3.0]), randn(5, 4), labels((5,), 4)),
        (nn.SoftmaxCrossEntropy(), randn(2, 3, 2, 3), labels((2, 2, 3), 3)),
        (nn.SoftmaxCrossEntropy(weight=np.array([1.0, 0.2, 4.0])), randn(2, 3, 2, 3), labels((2, 2, 3), 3)),
        (nn.MSELoss(), randn(4, 3), randn(4, 3, seed=2)),
        (nn.MSELoss(), randn(2, 1, 3, 3), randn(2, 1, 3, 3, seed=2)),
    ],
    ids=["ce", "ce-weighted", "ce-4d", "ce-4d-weighted", "mse", "mse-4d"],
)
def test_loss_passes_the_gradient_checker(loss, x, target):
    report = check_layer(loss, x, target=target)
    assert report.ok, report


# --- Linear -----------------------------------------------------------------------------------


def test_linear_parameters_shapes_initialisation_and_order():
    minidl.seed(0)
    layer = nn.Linear(100, 30)
    assert layer.weight.shape == (30, 100) and layer.bias.shape == (30,)
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    bound = 1 / np.sqrt(100)  # Kaiming-uniform with a = sqrt(5), PyTorch's default
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound  # uniform over the whole range
    assert layer.parameters() == [layer.weight, layer.bias]
    assert [k for k, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Linear(3, 2, bias=False).bias is None
    assert len(nn.Linear(3, 2, bias=False).parameters()) == 1


def test_linear_initialisation_is_reproducible_with_minidl_seed():
    minidl.seed(7)
    a = nn.Linear(4, 3)
    minidl.seed(7)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, nn.Linear(4, 3).weight.data)


def test_linear_computes_x_wT_plus_b_and_accumulates_gradients():
    layer = nn.Linear(3, 2).to(np.float64)
    x = randn(4, 3)
    dy = randn(4, 2, seed=1)
    np.testing.assert_allclose(layer(x), x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, dy @ layer.weight.data, rtol=1e-12)
    layer.backward(dy)  # gradients add up, as in PyTorch, until zero_grad()
    np.testing.assert_allclose(layer.weight.grad, 2 * dy.T @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, 2 * dy.sum(axis=0), rtol=1e-12)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_linear_reads_the_parameter_data_at_every_call():
    layer = nn.Linear(2, 2)
    layer.weight.data = np.eye(2, dtype=np.float32) * 3
    layer.bias.data = np.zeros(2, dtype=np.float32)
    np.testing.assert_array_equal(layer(np.ones((1, 2), np.float32)), [[3.0, 3.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_through_a_model(dtype):
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 5),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.LeakyReLU(),
        nn.Linear(5, 4),
        nn.Sigmoid(),
        nn.Tanh(),
    ).to(dtype)
    x = randn(3, 2, 3).astype(dtype)
    y = model(x)
    assert y.dtype == dtype and y.shape == (3, 4)
    dx = model.backward(np.ones_like(y))
    assert dx.dtype == dtype and dx.shape == x.shape
    assert all(p.grad.dtype == dtype for p in model.parameters())


# --- activations ------------------------------------------------------------------------------


def test_activations_compute_their_functions_on_any_shape():
    x = randn(2, 3, 4, 5)
    np.testing.assert_array_equal(nn.ReLU()(x), np.maximum(x, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.3)(x), np.where(x > 0, x, 0.3 * x), rtol=1e-15)
    np.testing.assert_allclose(nn.LeakyReLU()(x), np.where(x > 0, x, 0.01 * x), rtol=1e-15)
    np.testing.assert_allclose(nn.Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(nn.Tanh()(x), np.tanh(x), rtol=1e-14)


# --- Dropout ------------------------------------------------------------------------------------


def test_dropout_is_the_identity_in_eval_mode():
    layer = nn.Dropout(0.5).eval()
    x = randn(4, 5).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)
    dy = randn(4, 5, seed=1).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert not layer.training


def test_dropout_in_training_drops_scales_and_is_reproducible():
    layer = nn.Dropout(0.25)
    x = np.ones((200, 50))
    minidl.seed(3)
    y = layer(x)
    kept = y != 0
    np.testing.assert_array_equal(y[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)  # the same mask
    minidl.seed(3)
    np.testing.assert_array_equal(layer(x), y)
    assert not np.array_equal(layer(x), y)  # a fresh mask each forward


def test_dropout_p_zero_and_p_one():
    x = randn(3, 4)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    layer = nn.Dropout(1.0)
    assert not layer(x).any() and not layer.backward(np.ones_like(x)).any()


def test_train_and_eval_switch_dropout_inside_a_model():
    minidl.seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9))
    x = np.ones((5, 4), np.float32)
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
    model.train()
    assert model[1].training and (model(x) == 0).any()


# --- Flatten ------------------------------------------------------------------------------------


def test_flatten_keeps_the_batch_axis_and_backward_reshapes_back():
    x = randn(2, 3, 4, 5)
    layer = nn.Flatten()
    y = layer(x)
    np.testing.assert_array_equal(y, x.reshape(2, 60))
    np.testing.assert_array_equal(layer.backward(y), x)
    assert nn.Flatten()(randn(3, 7)).shape == (3, 7)


def test_unflatten_undoes_flatten_and_backward_reshapes_back():
    x = randn(2, 3, 4, 5)
    flat = nn.Flatten()(x)
    layer = nn.Unflatten(1, (3, 4, 5))
    np.testing.assert_array_equal(layer(flat), x)
    np.testing.assert_array_equal(layer.backward(x), flat)
    assert nn.Unflatten(-1, (2, 2))(randn(3, 4, 6, 4)).shape == (3, 4, 6, 2, 2)
    assert nn.Unflatten(0, (2, 3))(randn(6, 5)).shape == (2, 3, 5)
    assert nn.Unflatten(1, [7])(randn(3, 7)).shape == (3, 7)


# --- losses -------------------------------------------------------------------------------------


def test_losses_return_python_floats_and_gradients_of_the_prediction_shape_and_dtype():
    logits = randn(4, 3).astype(np.float32)
    ce = nn.SoftmaxCrossEntropy()
    loss = ce(logits, np.array([0, 2, 1, 2], dtype=np.int32))
    assert type(loss) is float and loss > 0
    d = ce.backward()
    assert d.dtype == np.float32 and d.shape == (4, 3)
    mse = nn.MSELoss()
    pred = randn(2, 1, 3, 3).astype(np.float32)
    loss = mse(pred, np.zeros((2, 1, 3, 3), np.float64))
    assert type(loss) is float
    np.testing.assert_allclose(loss, np.mean(pred.astype(np.float64) ** 2), rtol=1e-6)
    d = mse.backward()
    assert d.dtype == np.float32 and d.shape == pred.shape


def test_cross_entropy_with_class_weights_is_the_weighted_mean():
    logits = randn(6, 3)
    t = np.array([0, 1, 2, 2, 1, 0])
    w = np.array([1.0, 2.0, 0.5])
    per_sample = [nn.SoftmaxCrossEntropy()(logits[i : i + 1], t[i : i + 1]) for i in range(6)]
    expected = np.sum(w[t] * per_sample) / np.sum(w[t])
    assert nn.SoftmaxCrossEntropy(weight=w)(logits, t) == pytest.approx(expected, rel=1e-12)
    assert nn.SoftmaxCrossEntropy(weight=np.ones(3))(logits, t) == pytest.approx(np.mean(per_sample), rel=1e-12)


def test_probabilities_are_the_softmax_over_the_class_axis():
    p = nn.SoftmaxCrossEntropy.probabilities(randn(4, 3).astype(np.float32))
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    p4 = nn.SoftmaxCrossEntropy.probabilities(randn(2, 5, 3, 3))
    np.testing.assert_allclose(p4.sum(axis=1), 1.0, rtol=1e-12)


def test_loss_backward_is_the_gradient_of_the_last_forward():
    ce = nn.SoftmaxCrossEntropy()
    x1, x2 = randn(2, 3), randn(2, 3, seed=5)
    ce(x1, np.array([0, 1]))
    ce(x2, np.array([2, 2]))
    fresh = nn.SoftmaxCrossEntropy()
    fresh(x2, np.array([2, 2]))
    np.testing.assert_array_equal(ce.backward(), fresh.backward())


# --- Sequential of these layers, repr -----------------------------------------------------------


def test_sequential_mlp_parameter_order_and_state_dict_keys():
    model = nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3, bias=False), nn.Tanh(), nn.Linear(3, 2)
    )
    params = model.parameters()
    assert params == [model[0].weight, model[0].bias, model[3].weight, model[5].weight, model[5].bias]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "3.weight", "5.weight", "5.bias"]


def test_dense_layer_reprs_show_the_constructor_arguments():
    assert repr(nn.Linear(3, 2)) == "Linear(in_features=3, out_features=2, bias=True)"
    assert repr(nn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Dropout()) == "Dropout(p=0.5)"
    assert [repr(layer) for layer in (nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.Flatten())] == [
        "ReLU()",
        "Sigmoid()",
        "Tanh()",
        "Flatten()",
    ]
    assert repr(nn.Unflatten(1, [16, 5, 5])) == "Unflatten(dim=1, unflattened_size=(16, 5, 5))"
    assert repr(nn.SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()"
    assert repr(nn.SoftmaxCrossEntropy(weight=[1, 2])) == "SoftmaxCrossEntropy(weight=[1.0, 2.0])"
    assert repr(nn.MSELoss()) == "MSELoss()"
    assert repr(nn.Sequential(nn.Linear(2, 2), nn.ReLU())) == (
        "Sequential(\n  (0): Linear(in_features=2, out_features=2, bias=True)\n  (1): ReLU()\n)"
    )


@given(
    geometry=windows(),
    N=st.integers(1, 2),
    C=st.integers(1, 3),
    C_out=st.integers(1, 3),
    bias=st.booleans(),
    seed=seeds,
)
def test_conv2d_passes_the_gradient_checker(geometry, N, C, C_out, bias, seed):
    H, W, (KH, KW), (sh, sw), (ph, pw) = geometry
    minidl.seed(seed)
    layer = nn.Conv2d(C, C_out, one_or_pair(KH, KW), stride=one_or_pair(sh, sw), padding=one_or_pair(ph, pw), bias=bias)
    x = randn(N, C, H, W, seed=seed)
    assert layer(x.astype(np.float32)).shape == (N, C_out, output_size(H, KH, sh, ph), output_size(W, KW, sw, pw))
    report = check_layer(layer, x, seed=seed)
    assert report.ok, report
    assert set(report.errors) == ({"input", "weight", "bias"} if bias else {"input", "weight"})


CONV_CASES = {
    "3x3-pad1": (dict(kernel_size=3, padding=1), (2, 2, 5, 5)),
    "5x5-stride2-no-bias": (dict(kernel_size=5, stride=2, bias=False), (2, 2, 7, 8)),
    "2x3-stride(2,1)-pad(1,0)": (dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0)), (2, 2, 5, 6)),
    "1x4-stride(1,3)-pad(0,2)-no-bias": (
        dict(kernel_size=(1, 4), stride=(1, 3), padding=(0, 2), bias=False),
        (1, 2, 3, 6),
    ),
    "1x1": (dict(kernel_size=1), (2, 2, 3, 3)),
}


@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d_square_and_non_square_kernels_pass_the_gradient_checker(name):
    """Fixed cases on top of hypothesis's draws: square and non-square kernels, strides and
    paddings, bias on and off, are always among the checked."""
    kwargs, shape = CONV_CASES[name]
    minidl.seed(1)
    report = check_layer(nn.Conv2d(shape[1], 3, **kwargs), randn(*shape))
    assert report.ok, report


def test_conv2d_parameters_shapes_initialisation_and_order():
    minidl.seed(0)
    layer = nn.Conv2d(4, 8, (3, 5))
    assert layer.weight.shape == (8, 4, 3, 5) and layer.bias.shape == (8,)
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    bound = 1 / np.sqrt(4 * 3 * 5)  # Kaiming-uniform (a = sqrt(5)) over fan_in = C_in*KH*KW, as PyTorch
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert layer.parameters() == [layer.weight, layer.bias]
    assert [k for k, _ in layer.named_parameters()] == ["weight", "bias"]
    no_bias = nn.Conv2d(4, 8, 3, bias=False)
    assert no_bias.bias is None and no_bias.parameters() == [no_bias.weight]
    assert list(no_bias.state_dict()) == ["weight"]


def test_conv2d_int_arguments_become_pairs():
    layer = nn.Conv2d(1, 2, 3, stride=2, padding=1)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 3), (2, 2), (1, 1))
    layer = nn.Conv2d(1, 2, (3, 1), stride=(1, 2), padding=(0, 1))
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 1), (1, 2), (0, 1))


def test_conv2d_computes_the_cross_correlation_of_the_course():
    """The course's 5x5 example through the layer (kernel not flipped, bias 0)."""
    x = np.array(
        [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], dtype=np.float32
    )
    layer = nn.Conv2d(1, 1, 3, bias=False)
    layer.weight.data = np.array([[[[0, 1, 2], [2, 2, 0], [0, 1, 2]]]], dtype=np.float32)
    np.testing.assert_array_equal(layer(x[None, None])[0, 0], [[12, 12, 17], [10, 17, 19], [9, 6, 14]])


def test_conv2d_bias_adds_per_output_channel_and_gradients_accumulate():
    layer = nn.Conv2d(2, 3, 3, padding=1).to(np.float64)
    x, dy = randn(2, 2, 4, 4), randn(2, 3, 4, 4, seed=1)
    without = nn.Conv2d(2, 3, 3, padding=1, bias=False).to(np.float64)
    without.weight.data = layer.weight.data
    assert_bias_grad_and_accumulation(layer, x, dy)  # first: its two backward calls undo its one forward
    np.testing.assert_allclose(layer(x), without(x) + layer.bias.data[None, :, None, None], rtol=1e-13)


def test_conv2d_reads_the_parameter_data_at_every_call():
    layer = nn.Conv2d(1, 1, 1)
    layer.weight.data = np.full((1, 1, 1, 1), 2.0, dtype=np.float32)
    layer.bias.data = np.ones(1, dtype=np.float32)
    np.testing.assert_array_equal(layer(np.ones((1, 1, 2, 2), np.float32)), np.full((1, 1, 2, 2), 3.0))


# --- pooling --------------------------------------------------------------------------------


POOLS = {"MaxPool2d": nn.MaxPool2d, "AvgPool2d": nn.AvgPool2d}


@pytest.mark.parametrize("pool", POOLS)
@given(
    geometry=windows(half_padding=True),
    N=st.integers(1, 2),
    C=st.integers(1, 3),
    default_stride=st.booleans(),
    seed=seeds,
)
def test_pool_passes_the_gradient_checker(pool, geometry, N, C, default_stride, seed):
    H, W, (KH, KW), (sh, sw), (ph, pw) = geometry
    kernel, padding = one_or_pair(KH, KW), one_or_pair(ph, pw)
    if default_stride:
        layer = POOLS[pool](kernel, padding=padding)
        sh, sw = KH, KW
    else:
        layer = POOLS[pool](kernel, stride=one_or_pair(sh, sw), padding=padding)
    assert layer.stride == (sh, sw)
    x = randn(N, C, H, W, seed=seed)
    assert layer(x).shape == (N, C, output_size(H, KH, sh, ph), output_size(W, KW, sw, pw))
    report = check_layer(layer, x, seed=seed)
    assert report.ok, report


@pytest.mark.parametrize("pool", POOLS.values())
def test_pool_stride_defaults_to_the_kernel_size(pool):
    assert pool(2).stride == (2, 2)
    assert pool((3, 2)).stride == (3, 2)
    assert pool((3, 2), stride=1).stride == (1, 1)
    assert pool(3, padding=1).padding == (1, 1)
    assert pool(4, 2).stride == (2, 2)  # the second positional argument is the stride, as in PyTorch


def test_pools_on_the_course_grid():
    """The course's 4x4 grid, 2x2 windows, default stride: max and mean of each quarter."""
    x = np.array([[5, 3, 3, 1], [0, 2, 8, 5], [1, 4, 4, 2], [0, 9, 2, 7]], dtype=np.float32)[None, None]
    maxpool, avgpool = nn.MaxPool2d(2), nn.AvgPool2d(2)
    np.testing.assert_array_equal(maxpool(x)[0, 0], [[5, 8], [9, 7]])
    np.testing.assert_array_equal(avgpool(x)[0, 0], [[2.5, 4.25], [3.5, 3.75]])
    dy = np.array([[1, 2], [3, 4]], dtype=np.float32)[None, None]
    np.testing.assert_array_equal(maxpool.backward(dy)[0, 0], [[1, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0], [0, 3, 0, 4]])
    np.testing.assert_array_equal(avgpool.backward(dy)[0, 0], np.kron([[1, 2], [3, 4]], np.ones((2, 2))) / 4)


@pytest.mark.parametrize("pool", POOLS.values())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pools_keep_the_dtype_and_have_no_parameters(pool, dtype):
    layer = pool(2)
    y = layer(randn(2, 3, 4, 4).astype(dtype))
    assert y.dtype == dtype and layer.backward(np.ones_like(y)).dtype == dtype
    assert layer.parameters() == [] and layer.state_dict() == {}


# --- BatchNorm ----------------------------------------------------------------------------------


def random_batchnorm(layer, C, seed):
    """Non-trivial gamma, beta and running statistics, so that none of them hides."""
    rng = np.random.default_rng(seed + 1)
    layer.weight.data = rng.uniform(0.5, 2.0, C).astype(np.float32)
    layer.bias.data = rng.standard_normal(C).astype(np.float32)
    layer.running_mean = rng.standard_normal(C).astype(np.float32)
    layer.running_var = rng.uniform(0.5, 2.0, C).astype(np.float32)
    return layer


@st.composite
def batchnorm_cases(draw):
    """(layer class, input shape): (N, C) and (N, C, L) for 1d, (N, C, H, W) for 2d, with
    at least two values per channel (training needs a variance)."""
    kind = draw(st.sampled_from(["1d", "1d-L", "2d"]))
    C = draw(st.integers(1, 3))
    if kind == "1d":
        return nn.BatchNorm1d, (draw(st.integers(2, 6)), C)
    if kind == "1d-L":
        N = draw(st.integers(1, 3))
        return nn.BatchNorm1d, (N, C, draw(st.integers(2 if N == 1 else 1, 4)))
    N, H = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return nn.BatchNorm2d, (N, C, H, draw(st.integers(2 if N * H == 1 else 1, 3)))


@given(case=batchnorm_cases(), training=st.booleans(), momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]), seed=seeds)
def test_batchnorm_passes_the_gradient_checker(case, training, momentum, seed):
    cls, shape = case
    layer = random_batchnorm(cls(shape[1], momentum=momentum), shape[1], seed).train(training)
    report = check_layer(layer, 2 * randn(*shape, seed=seed) + 1, seed=seed)
    assert report.ok, report
    assert set(report.errors) == {"input", "weight", "bias"}


@pytest.mark.parametrize(
    "cls, shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (3, 2, 5)), (nn.BatchNorm2d, (2, 3, 3, 4))]
)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_layouts_in_both_modes_pass_the_gradient_checker(cls, shape, training):
    layer = random_batchnorm(cls(shape[1]), shape[1], 0).train(training)
    report = check_layer(layer, randn(*shape))
    assert report.ok, report


def test_batchnorm_parameters_buffers_and_defaults():
    layer = nn.BatchNorm2d(3)
    assert (layer.eps, layer.momentum, layer.training) == (1e-5, 0.1, True)
    np.testing.assert_array_equal(layer.weight.data, np.ones(3))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(3))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    np.testing.assert_array_equal(layer.running_var, np.ones(3))
    assert layer.weight.dtype == layer.bias.dtype == layer.running_mean.dtype == layer.running_var.dtype == np.float32
    assert layer.parameters() == [layer.weight, layer.bias]
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var"]


@pytest.mark.parametrize(
    "cls, shape, axes",
    [
        (nn.BatchNorm1d, (64, 3), (0,)),
        (nn.BatchNorm1d, (8, 3, 16), (0, 2)),
        (nn.BatchNorm2d, (4, 3, 5, 6), (0, 2, 3)),
    ],
)
def test_batchnorm_training_output_has_mean_0_and_variance_1_per_channel(cls, shape, axes):
    scale = np.array([0.5, 3.0, 20.0]).reshape((1, 3) + (1,) * (len(shape) - 2))
    x = scale * randn(*shape) + 7.0  # channels on different scales, far from 0
    layer = cls(3).to(np.float64)  # gamma = 1, beta = 0
    y = layer(x)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-13)
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.var(axis=axes), var / (var + layer.eps), rtol=1e-12)  # 1, up to eps
    np.testing.assert_allclose(y.var(axis=axes), 1.0, atol=1e-4)
    # gamma and beta then set the mean and the standard deviation of each channel
    layer.weight.data = np.array([2.0, 0.5, 1.0])
    layer.bias.data = np.array([-1.0, 0.0, 3.0])
    y = layer(x)
    np.testing.assert_allclose(y.mean(axis=axes), layer.bias.data, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=axes), layer.weight.data * np.sqrt(var / (var + layer.eps)), rtol=1e-12)


@pytest.mark.parametrize(
    "cls, shape, axes",
    [
        (nn.BatchNorm1d, (10, 3), (0,)),
        (nn.BatchNorm1d, (4, 3, 5), (0, 2)),
        (nn.BatchNorm2d, (3, 3, 4, 4), (0, 2, 3)),
    ],
)
def test_batchnorm_input_gradient_sums_to_zero_per_channel(cls, shape, axes):
    layer = random_batchnorm(cls(3), 3, 0).to(np.float64)
    x, dy = 3 * randn(*shape) + 2, randn(*shape, seed=1)
    y = layer(x)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx.sum(axis=axes), 0.0, atol=1e-12)
    c = (1, 3) + (1,) * (len(shape) - 2)  # per-channel values broadcast over x
    x_hat = (y - layer.bias.data.reshape(c)) / layer.weight.data.reshape(c)
    np.testing.assert_allclose(layer.bias.grad, dy.sum(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, (dy * x_hat).sum(axis=axes), rtol=1e-10)
    # in eval mode the statistics are constants: the gradient no longer sums to zero
    layer.eval()
    layer(x)
    assert np.abs(layer.backward(dy).sum(axis=axes)).max() > 1e-3


def test_batchnorm_running_statistics_follow_the_update_rule():
    x = 2 * randn(5, 3, 4, 4) + 1
    layer = nn.BatchNorm2d(3, momentum=0.3).to(np.float64)
    expected_mean, expected_var = np.zeros(3), np.ones(3)
    for step in range(3):
        xb = x + step
        layer(xb)
        m = xb.size // 3
        expected_mean = 0.7 * expected_mean + 0.3 * xb.mean(axis=(0, 2, 3))
        expected_var = 0.7 * expected_var + 0.3 * xb.var(axis=(0, 2, 3)) * m / (m - 1)  # unbiased
        np.testing.assert_allclose(layer.running_mean, expected_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, expected_var, rtol=1e-12)


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_batchnorm_momentum_zero_keeps_and_one_replaces_the_running_statistics(momentum):
    x = 2 * randn(6, 2) + 3
    layer = nn.BatchNorm1d(2, momentum=momentum).to(np.float64)
    layer(x)
    if momentum == 0:
        np.testing.assert_array_equal(layer.running_mean, [0, 0])
        np.testing.assert_array_equal(layer.running_var, [1, 1])
    else:
        np.testing.assert_allclose(layer.running_mean, x.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(layer.running_var, x.var(axis=0, ddof=1), rtol=1e-13)


def test_batchnorm_running_statistics_keep_the_float32_dtype():
    layer = nn.BatchNorm2d(2)
    for _ in range(3):
        layer(randn(4, 2, 3, 3).astype(np.float32))
    assert layer.running_mean.dtype == layer.running_var.dtype == np.float32


@pytest.mark.parametrize(
    "cls, shape", [(nn.BatchNorm1d, (8, 3)), (nn.BatchNorm1d, (4, 3, 5)), (nn.BatchNorm2d, (4, 3, 3, 3))]
)
def test_batchnorm_eval_uses_the_running_statistics(cls, shape):
    layer = random_batchnorm(cls(3), 3, 0).to(np.float64)
    for step in range(3):  # move the running statistics away from their start
        layer(randn(*shape, seed=step) * (step + 1) + step)
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    layer.eval()
    assert not layer.training
    x = randn(*shape, seed=10)
    c = (1, 3) + (1,) * (len(shape) - 2)
    expected = layer.weight.data.reshape(c) * (x - mean.reshape(c)) / np.sqrt(
        var.reshape(c) + layer.eps
    ) + layer.bias.data.reshape(c)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, mean)  # eval() never updates them
    np.testing.assert_array_equal(layer.running_var, var)
    # each sample is normalised on its own: a batch of one (impossible in training) works
    np.testing.assert_allclose(layer(x[:1]), expected[:1], rtol=1e-12)
    layer.train()
    assert not np.allclose(layer(x), expected)


def test_batchnorm_state_dict_and_save_load_round_trip_bit_exactly(tmp_path):
    minidl.seed(0)

    def make():
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3 * 4 * 4, 5),
            nn.BatchNorm1d(5),
        )

    model = make()
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "4.weight",
        "4.bias",
        "5.weight",
        "5.bias",
        "5.running_mean",
        "5.running_var",
    ]
    for step in range(3):
        model(randn(6, 2, 4, 4, seed=step).astype(np.float32) + step)
    state = model.state_dict()
    assert not np.array_equal(state["1.running_mean"], np.zeros(3))
    state["1.running_mean"][:] = 99  # the state dict holds copies
    assert not np.array_equal(model[1].running_mean, state["1.running_mean"])

    path = minidl.save(model, tmp_path / "model.npz")
    loaded = minidl.load(make(), path)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
        assert loaded.state_dict()[key].dtype == value.dtype == np.float32
    for bn in (1, 5):
        np.testing.assert_array_equal(loaded[bn].running_mean, model[bn].running_mean)
        np.testing.assert_array_equal(loaded[bn].running_var, model[bn].running_var)
    x = randn(3, 2, 4, 4, seed=9).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))


# --- Residual and Concat ----------------------------------------------------------------------


@given(
    C=st.integers(1, 3),
    k=st.sampled_from([1, 3]),
    N=st.integers(1, 2),
    H=st.integers(2, 4),
    W=st.integers(2, 4),
    training=st.booleans(),
    seed=seeds,
)
def test_residual_block_passes_the_gradient_checker(C, k, N, H, W, training, seed):
    """The ResNet block: x + conv(relu(bn(conv(x)))), shapes kept by the padding."""
    minidl.seed(seed)
    block = nn.Residual(
        nn.Sequential(
            nn.Conv2d(C, C, k, padding=k // 2), nn.BatchNorm2d(C), nn.ReLU(), nn.Conv2d(C, C, 3, padding=1, bias=False)
        )
    )
    block.train(training)
    report = check_layer(block, randn(N, C, H, W, seed=seed), seed=seed)
    assert report.ok, report
    assert list(report.errors) == [
        "input",
        "inner.0.weight",
        "inner.0.bias",
        "inner.1.weight",
        "inner.1.bias",
        "inner.3.weight",
    ]


@given(
    C=st.integers(1, 3), K=st.integers(1, 3), N=st.integers(1, 2), H=st.integers(1, 4), W=st.integers(1, 4), seed=seeds
)
def test_concat_passes_the_gradient_checker(C, K, N, H, W, seed):
    """The U-Net skip: [x ; tanh(conv(x))] along the channels, then a conv that mixes them."""
    minidl.seed(seed)
    model = nn.Sequential(nn.Concat(nn.Sequential(nn.Conv2d(C, K, 3, padding=1), nn.Tanh())), nn.Conv2d(C + K, 2, 1))
    x = randn(N, C, H, W, seed=seed)
    assert model[0](x.astype(np.float32)).shape == (N, C + K, H, W)
    report = check_layer(model, x, seed=seed)
    assert report.ok, report


@pytest.mark.parametrize(
    "name, make, shape",
    [
        ("residual-linear", lambda: nn.Residual(nn.Linear(4, 4)), (3, 4)),
        (
            "residual-of-residual",
            lambda: nn.Residual(nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh()))),
            (2, 2, 3, 3),
        ),
        ("concat-linear", lambda: nn.Concat(nn.Linear(4, 3)), (3, 4)),
        (
            "concat-batchnorm-pool",
            lambda: nn.Concat(nn.Sequential(nn.BatchNorm2d(2), nn.AvgPool2d(3, stride=1, padding=1))),
            (2, 2, 4, 4),
        ),
        ("concat-parameter-free", lambda: nn.Concat(nn.Sigmoid()), (2, 3, 2, 2)),
    ],
)
def test_skip_containers_pass_the_gradient_checker(name, make, shape):
    minidl.seed(0)
    report = check_layer(make(), randn(*shape))
    assert report.ok, report


def test_residual_and_concat_compute_their_equations():
    x, dy = randn(2, 3, 4, 4), randn(2, 3, 4, 4, seed=1)
    inner = nn.Conv2d(3, 3, 3, padding=1).to(np.float64)
    twin = nn.Conv2d(3, 3, 3, padding=1).to(np.float64)
    twin.load_state_dict(inner.state_dict())
    res = nn.Residual(inner)
    np.testing.assert_allclose(res(x), x + twin(x), rtol=1e-14)
    np.testing.assert_allclose(res.backward(dy), dy + twin.backward(dy), rtol=1e-14)  # identity path: dy unchanged
    np.testing.assert_allclose(inner.weight.grad, twin.weight.grad, rtol=1e-14)

    cat = nn.Concat(nn.Conv2d(3, 2, 1).to(np.float64))
    y = cat(x)
    assert y.shape == (2, 5, 4, 4)
    np.testing.assert_array_equal(y[:, :3], x)
    dy5 = randn(2, 5, 4, 4, seed=2)
    np.testing.assert_allclose(
        cat.backward(dy5), dy5[:, :3] + cat.inner.backward(np.ascontiguousarray(dy5[:, 3:])), rtol=1e-14
    )
    np.testing.assert_array_equal(y[:, 3:], cat.inner(x))  # after backward: a forward call of its own


def test_skip_containers_name_their_parameters_and_switch_modes():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2))),
        nn.Concat(nn.Conv2d(2, 1, 1, bias=False)),
    )
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.inner.0.weight",
        "1.inner.0.bias",
        "1.inner.1.weight",
        "1.inner.1.bias",
        "1.inner.1.running_mean",
        "1.inner.1.running_var",
        "2.inner.weight",
    ]
    assert len(model.parameters()) == 7
    model.eval()
    assert not model[1].inner[1].training and not model[2].inner.training
    model.train()
    assert model[1].inner[1].training


# --- a whole CNN --------------------------------------------------------------------------------


def test_lenet_shapes_parameter_count_and_dtypes(capsys):
    minidl.seed(0)
    model = lenet5()
    assert model.summary((1, 28, 28)) == 61706  # LeNet-5's parameter count
    assert "(-1, 16, 5, 5)" in capsys.readouterr().out
    for dtype in (np.float32, np.float64):
        model.to(dtype)
        y = model(randn(2, 1, 28, 28).astype(dtype))
        assert y.shape == (2, 10) and y.dtype == dtype
        dx = model.backward(np.ones_like(y))
        assert dx.shape == (2, 1, 28, 28) and dx.dtype == dtype
        assert all(p.grad.dtype == dtype for p in model.parameters())


def test_small_cnn_with_batchnorm_passes_the_gradient_checker():
    minidl.seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2, 2, (2, 3), stride=(1, 2), padding=(0, 1)),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(2, 3),
        nn.BatchNorm1d(3),
    )
    report = check_layer(model, randn(3, 1, 6, 6))
    assert report.ok, report


def test_image_layer_reprs_show_the_constructor_arguments():
    assert repr(nn.Conv2d(1, 6, 5, padding=2)) == (
        "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2), bias=True)"
    )
    assert repr(nn.Conv2d(3, 4, (1, 3), stride=(2, 1), bias=False)) == (
        "Conv2d(3, 4, kernel_size=(1, 3), stride=(2, 1), padding=(0, 0), bias=False)"
    )
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert repr(nn.AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(nn.BatchNorm1d(4)) == "BatchNorm1d(4, eps=1e-05, momentum=0.1)"
    assert repr(nn.BatchNorm2d(8, eps=1e-3, momentum=0.2)) == "BatchNorm2d(8, eps=0.001, momentum=0.2)"
    assert repr(nn.Residual(nn.ReLU())) == "Residual(\n  (inner): ReLU()\n)"
    assert repr(nn.Concat(nn.Conv2d(1, 1, 1))) == (
        "Concat(\n  (inner): Conv2d(1, 1, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), bias=True)\n)"
    )
