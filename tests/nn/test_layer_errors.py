"""Bad input to every layer: each error has its type, names the layer, and gives the
expected and the actual value; inside a Sequential the message is prefixed with the
position of the failing layer.
"""

import numpy as np
import pytest

from minidl import nn
from tests.helpers import lenet5, raises, randn


@pytest.mark.parametrize(
    "args, err, message",
    [
        ((0, 3), ValueError, "Linear: in_features must be at least 1, got 0"),
        ((3, -1), ValueError, "Linear: out_features must be at least 1, got -1"),
        ((2.5, 3), TypeError, "Linear: in_features must be an int, got float"),
        ((3, True), TypeError, "Linear: out_features must be an int, got bool"),
    ],
)
def test_linear_constructor_arguments(args, err, message):
    with raises(err, message):
        nn.Linear(*args)


def test_linear_input_must_be_a_float_array():
    with raises(TypeError, "Linear: expected the input to be a numpy.ndarray, got list"):
        nn.Linear(2, 3)([[1.0, 2.0]])
    with raises(TypeError, "Linear: expected the input to have dtype float32 or float64, got int64"):
        nn.Linear(2, 3)(np.ones((1, 2), dtype=np.int64))


@pytest.mark.parametrize("shape", [(5,), (2, 5, 1), (1, 1, 2, 5)])
def test_linear_input_must_be_2d(shape):
    with raises(ValueError, "Linear: expected a 2-D input (N, in_features)", f"got shape {shape}"):
        nn.Linear(5, 3)(randn(*shape, dtype=np.float32))


def test_linear_input_must_have_in_features_columns():
    with raises(ValueError, "Linear: expected an input of shape (N, 5) (in_features=5), got shape (4, 3)"):
        nn.Linear(5, 3)(randn(4, 3, dtype=np.float32))


def test_linear_input_dtype_must_match_the_weight():
    with raises(TypeError, "Linear: input dtype float64 does not match weight dtype float32"):
        nn.Linear(2, 3)(randn(4, 2, dtype=np.float64))


def test_linear_backward_checks_its_upstream_gradient():
    layer = nn.Linear(2, 3)
    with raises(RuntimeError, "Linear: backward() called before forward()"):
        layer.backward(randn(4, 3, dtype=np.float32))
    layer(randn(4, 2, dtype=np.float32))
    with raises(ValueError, "Linear: expected the upstream gradient dy of shape (4, 3)", "got (4, 2)"):
        layer.backward(randn(4, 2, dtype=np.float32))
    with raises(TypeError, "Linear: upstream gradient dy has dtype float64, expected float32"):
        layer.backward(randn(4, 3, dtype=np.float64))


def test_errors_inside_a_sequential_name_the_position():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    with raises(ValueError, "Sequential[1] > Linear: expected an input of shape (N, 6)", "got shape (4, 12)"):
        model(randn(4, 3, 4, dtype=np.float32))


# --- activations, Dropout, Flatten --------------------------------------------------------------


ELEMENTWISE = [nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Flatten]


@pytest.mark.parametrize("make", ELEMENTWISE)
def test_elementwise_layers_refuse_integer_and_list_input(make):
    name = make.__name__
    with raises(TypeError, f"{name}: expected the input to have dtype float32 or float64, got int32"):
        make()(np.ones((2, 3), dtype=np.int32))
    with raises(TypeError, f"{name}: expected the input to be a numpy.ndarray, got list"):
        make()([[1.0, 2.0]])


@pytest.mark.parametrize("make", ELEMENTWISE)
def test_backward_before_forward_and_wrong_gradient_shape(make):
    name = make.__name__
    layer = make()
    with raises(RuntimeError, f"{name}: backward() called before forward()"):
        layer.backward(randn(2, 3, dtype=np.float32))
    layer(randn(2, 3, 4, dtype=np.float32))
    expected = (2, 12) if make is nn.Flatten else (2, 3, 4)
    with raises(ValueError, f"{name}: expected the upstream gradient dy of shape {expected}", "got (2, 3)"):
        layer.backward(randn(2, 3, dtype=np.float32))
    with raises(TypeError, f"{name}: expected the upstream gradient dy to have dtype float32 or float64, got int64"):
        layer.backward(np.ones(expected, dtype=np.int64))


def test_leaky_relu_slope_must_be_a_number():
    with raises(TypeError, "LeakyReLU: negative_slope must be a real number, got str"):
        nn.LeakyReLU("0.1")


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_p_must_be_a_probability(p):
    with raises(
        ValueError,
        "Dropout: p (the probability of dropping an element) must be a finite number in [0, 1]",
        f"got {float(p)}",
    ):
        nn.Dropout(p)


def test_dropout_p_must_be_a_number():
    with raises(TypeError, "Dropout: p (the probability of dropping an element) must be a real number, got str"):
        nn.Dropout("0.5")


def test_flatten_needs_a_batch_axis():
    with raises(ValueError, "Flatten: expected an input with at least 2 dimensions (N, ...), got shape (5,)"):
        nn.Flatten()(randn(5, dtype=np.float32))


@pytest.mark.parametrize(
    "args, err, message",
    [
        ((1.0, (2, 3)), TypeError, "Unflatten: dim must be an int, got float"),
        ((True, (2, 3)), TypeError, "Unflatten: dim must be an int, got bool"),
        ((1, 6), TypeError, "Unflatten: unflattened_size must be a non-empty tuple of ints, got 6"),
        ((1, ()), TypeError, "Unflatten: unflattened_size must be a non-empty tuple of ints, got ()"),
        ((1, (2, 3.0)), TypeError, "Unflatten: unflattened_size must be a non-empty tuple of ints, got (2, 3.0)"),
        (
            (1, (-1, 3)),
            ValueError,
            "Unflatten: every size in unflattened_size must be at least 1 (minidl infers no -1), got (-1, 3)",
        ),
    ],
)
def test_unflatten_constructor_arguments(args, err, message):
    with raises(err, message):
        nn.Unflatten(*args)


def test_unflatten_input_errors():
    layer = nn.Unflatten(1, (2, 3))
    with raises(TypeError, "Unflatten: expected the input to have dtype float32 or float64, got int32"):
        layer(np.ones((4, 6), dtype=np.int32))
    with raises(
        ValueError,
        "Unflatten: axis 1 of the input has size 5, but unflattened_size (2, 3) holds 6 elements",
        "input shape (4, 5)",
    ):
        layer(randn(4, 5, dtype=np.float32))
    with raises(ValueError, "Unflatten: dim=2 is out of range for an input of shape (4, 6)"):
        nn.Unflatten(2, (2, 3))(randn(4, 6, dtype=np.float32))
    with raises(RuntimeError, "Unflatten: backward() called before forward()"):
        layer.backward(randn(4, 2, 3, dtype=np.float32))
    layer(randn(4, 6, dtype=np.float32))
    with raises(ValueError, "Unflatten: expected the upstream gradient dy of shape (4, 2, 3)", "got (4, 6)"):
        layer.backward(randn(4, 6, dtype=np.float32))
    with raises(TypeError, "Unflatten: expected the upstream gradient dy to have dtype float32 or float64, got int64"):
        layer.backward(np.ones((4, 2, 3), dtype=np.int64))


# --- SoftmaxCrossEntropy ----------------------------------------------------------------------


def test_cross_entropy_logits_must_be_2d_or_4d_floats():
    ce = nn.SoftmaxCrossEntropy()
    with raises(ValueError, "SoftmaxCrossEntropy: expected a 2/4-D logits (N, K) or (N, K, H, W), got shape (4, 3, 2)"):
        ce(randn(4, 3, 2, dtype=np.float32), np.zeros((4, 2), dtype=np.int64))
    with raises(TypeError, "SoftmaxCrossEntropy: expected the logits to have dtype float32 or float64, got int64"):
        ce(np.zeros((4, 3), dtype=np.int64), np.zeros(4, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_])
def test_cross_entropy_labels_must_be_integers(dtype):
    with raises(TypeError, "SoftmaxCrossEntropy: expected integer class labels", f"got dtype {np.dtype(dtype)}"):
        nn.SoftmaxCrossEntropy()(randn(4, 3, dtype=np.float32), np.zeros(4, dtype=dtype))


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_cross_entropy_labels_must_be_in_range(bad):
    t = np.array([0, 1, bad, 2])
    with raises(ValueError, "SoftmaxCrossEntropy: labels must be class indices in [0, K) = [0, 3)", "got values from"):
        nn.SoftmaxCrossEntropy()(randn(4, 3, dtype=np.float32), t)


def test_cross_entropy_label_shape_must_match_the_logits():
    ce = nn.SoftmaxCrossEntropy()
    with raises(
        ValueError,
        "SoftmaxCrossEntropy: for logits of shape (4, 3) expected labels of shape (N,) = (4,), got shape (4, 1)",
    ):
        ce(randn(4, 3, dtype=np.float32), np.zeros((4, 1), dtype=np.int64))
    with raises(ValueError, "expected labels of shape (N, H, W) = (2, 5, 6), got shape (2,)"):
        ce(randn(2, 3, 5, 6, dtype=np.float32), np.zeros(2, dtype=np.int64))
    with raises(ValueError, "SoftmaxCrossEntropy: expected labels of shape (N, H, W) = (2, 5, 6), got shape (2, 6, 5)"):
        ce(randn(2, 3, 5, 6, dtype=np.float32), np.zeros((2, 6, 5), dtype=np.int64))


def test_cross_entropy_batch_sizes_must_match():
    with raises(ValueError, "SoftmaxCrossEntropy: batch sizes differ: the logits have N=4, the labels 3"):
        nn.SoftmaxCrossEntropy()(randn(4, 3, dtype=np.float32), np.zeros(3, dtype=np.int64))
    with raises(ValueError, "batch sizes differ: the logits have N=2, the labels 1"):
        nn.SoftmaxCrossEntropy()(randn(2, 3, 5, 5, dtype=np.float32), np.zeros((1, 5, 5), dtype=np.int64))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cross_entropy_rejects_nan_and_inf_logits(bad):
    logits = randn(4, 3, dtype=np.float32)
    logits[2, 1] = bad
    with raises(ValueError, "SoftmaxCrossEntropy: found NaN or inf in the logits (1 of 12 values)", "NaN never passes"):
        nn.SoftmaxCrossEntropy()(logits, np.zeros(4, dtype=np.int64))


def test_cross_entropy_rejects_an_empty_batch():
    with raises(ValueError, "SoftmaxCrossEntropy: labels is empty (shape (0,))"):
        nn.SoftmaxCrossEntropy()(randn(0, 3, dtype=np.float32), np.zeros(0, dtype=np.int64))


@pytest.mark.parametrize(
    "weight, err, message",
    [
        ([[1.0, 2.0]], ValueError, "SoftmaxCrossEntropy: weight must be 1-D (K,), one per class, got shape (1, 2)"),
        ([1.0, -2.0], ValueError, "SoftmaxCrossEntropy: weight must be finite and non-negative, got [1.0, -2.0]"),
        ([1.0, np.nan], ValueError, "SoftmaxCrossEntropy: weight must be finite and non-negative"),
        (["a", "b"], TypeError, "SoftmaxCrossEntropy: weight must be real numbers, one per class, got dtype <U1"),
    ],
)
def test_cross_entropy_weight_is_checked_at_construction(weight, err, message):
    with raises(err, message):
        nn.SoftmaxCrossEntropy(weight=weight)


def test_cross_entropy_weight_must_have_one_entry_per_class():
    with raises(ValueError, "SoftmaxCrossEntropy: weight has 2 entries, but the logits have K=3 classes"):
        nn.SoftmaxCrossEntropy(weight=[1.0, 2.0])(randn(4, 3, dtype=np.float32), np.zeros(4, dtype=np.int64))


def test_cross_entropy_batch_with_zero_total_weight():
    with raises(ValueError, "SoftmaxCrossEntropy: the labels of this batch all have weight 0"):
        nn.SoftmaxCrossEntropy(weight=[0.0, 1.0, 1.0])(randn(4, 3, dtype=np.float32), np.zeros(4, dtype=np.int64))


def test_cross_entropy_backward_before_forward():
    with raises(RuntimeError, "SoftmaxCrossEntropy: backward() called before forward()"):
        nn.SoftmaxCrossEntropy().backward()


def test_probabilities_checks_its_input():
    with raises(ValueError, "SoftmaxCrossEntropy.probabilities: expected a 2/4-D logits"):
        nn.SoftmaxCrossEntropy.probabilities(randn(3, dtype=np.float32))


# --- MSELoss ------------------------------------------------------------------------------------


def test_mse_shapes_must_be_equal():
    with raises(
        ValueError, "MSELoss: pred has shape (4, 1) but target has shape (4,); they must be equal (no broadcasting)"
    ):
        nn.MSELoss()(randn(4, 1, dtype=np.float32), randn(4, dtype=np.float32))


@pytest.mark.parametrize("which", ["pred", "target"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_mse_rejects_nan_and_inf(which, bad):
    pred, target = randn(3, 2, dtype=np.float32), randn(3, 2, dtype=np.float32)
    (pred if which == "pred" else target)[1, 1] = bad
    with raises(ValueError, f"MSELoss: found NaN or inf in {which} (1 of 6 values)", "NaN never passes"):
        nn.MSELoss()(pred, target)


def test_mse_inputs_must_be_float_arrays():
    with raises(TypeError, "MSELoss: expected the target to have dtype float32 or float64, got int64"):
        nn.MSELoss()(randn(3, dtype=np.float32), np.arange(3))
    with raises(TypeError, "MSELoss: expected the pred to be a numpy.ndarray, got list"):
        nn.MSELoss()([1.0, 2.0], randn(2, dtype=np.float32))


def test_mse_rejects_empty_input_and_backward_before_forward():
    with raises(ValueError, "MSELoss: pred is empty (shape (0, 3))"):
        nn.MSELoss()(randn(0, 3, dtype=np.float32), randn(0, 3, dtype=np.float32))
    with raises(RuntimeError, "MSELoss: backward() called before forward()"):
        nn.MSELoss().backward()


@pytest.mark.parametrize(
    "args, kwargs, err, message",
    [
        ((3, 2, 0), {}, ValueError, "Conv2d: kernel_size must be at least 1, got 0"),
        ((3, 2, (3, 0)), {}, ValueError, "Conv2d: kernel_size must be at least 1, got (3, 0)"),
        ((3, 2, 3), dict(padding=-1), ValueError, "Conv2d: padding must be at least 0, got -1"),
        ((3, 2, 3), dict(padding=(0, -2)), ValueError, "Conv2d: padding must be at least 0, got (0, -2)"),
        ((3, 2, 3), dict(stride=0), ValueError, "Conv2d: stride must be at least 1, got 0"),
        ((3, 2, (3,)), {}, TypeError, "Conv2d: kernel_size must be an int or a pair of ints, got (3,)"),
        ((3, 2, 3.0), {}, TypeError, "Conv2d: kernel_size must be an int or a pair of ints, got 3.0"),
        (
            (3, 2, 3),
            dict(stride=(1, 1, 1)),
            TypeError,
            "Conv2d: stride must be an int or a pair of ints, got (1, 1, 1)",
        ),
        ((3, 2, True), {}, TypeError, "Conv2d: kernel_size must be an int or a pair of ints, got True"),
        ((0, 2, 3), {}, ValueError, "Conv2d: in_channels must be at least 1, got 0"),
        ((3, -1, 3), {}, ValueError, "Conv2d: out_channels must be at least 1, got -1"),
        ((3.0, 2, 3), {}, TypeError, "Conv2d: in_channels must be an int, got float"),
    ],
)
def test_conv2d_constructor_arguments(args, kwargs, err, message):
    with raises(err, message):
        nn.Conv2d(*args, **kwargs)


@pytest.mark.parametrize("pool", [nn.MaxPool2d, nn.AvgPool2d], ids=["max", "avg"])
@pytest.mark.parametrize(
    "args, kwargs, err, message",
    [
        ((0,), {}, ValueError, "kernel_size must be at least 1, got 0"),
        ((2,), dict(stride=0), ValueError, "stride must be at least 1, got 0"),
        ((2,), dict(padding=-1), ValueError, "padding must be at least 0, got -1"),
        ((3,), dict(padding=2), ValueError, "padding (2, 2) must be at most half the kernel size (3, 3)"),
        ((2,), dict(padding=(1, 2)), ValueError, "padding (1, 2) must be at most half the kernel size (2, 2)"),
        (((4, 2),), dict(padding=(2, 2)), ValueError, "padding (2, 2) must be at most half the kernel size (4, 2)"),
        ((2.5,), {}, TypeError, "kernel_size must be an int or a pair of ints, got 2.5"),
    ],
)
def test_pool_constructor_arguments(pool, args, kwargs, err, message):
    with raises(err, f"{pool.__name__}: {message}"):
        pool(*args, **kwargs)


@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
@pytest.mark.parametrize(
    "args, kwargs, err, message",
    [
        ((3,), dict(momentum=-0.1), ValueError, "momentum must be a finite number in [0, 1], got -0.1"),
        ((3,), dict(momentum=1.5), ValueError, "momentum must be a finite number in [0, 1], got 1.5"),
        ((3,), dict(momentum=float("nan")), ValueError, "momentum must be a finite number in [0, 1], got nan"),
        ((3,), dict(momentum="0.1"), TypeError, "momentum must be a real number, got str"),
        ((3,), dict(momentum=None), TypeError, "momentum must be a real number, got NoneType"),
        ((3,), dict(eps=0.0), ValueError, "eps must be a finite number in (0, inf), got 0.0"),
        ((3,), dict(eps=-1e-5), ValueError, "eps must be a finite number in (0, inf), got -1e-05"),
        ((3,), dict(eps="1e-5"), TypeError, "eps must be a real number, got str"),
        ((0,), {}, ValueError, "num_features must be at least 1, got 0"),
        ((2.0,), {}, TypeError, "num_features must be an int, got float"),
    ],
)
def test_batchnorm_constructor_arguments(cls, args, kwargs, err, message):
    with raises(err, f"{cls.__name__}: {message}"):
        cls(*args, **kwargs)


@pytest.mark.parametrize("container", [nn.Residual, nn.Concat])
def test_skip_containers_need_a_layer(container):
    with raises(TypeError, f"{container.__name__}: inner must be a minidl layer, got function"):
        container(lambda x: x)


# --- the window must fit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (
            nn.Conv2d(3, 2, 5),
            (2, 3, 4, 4),
            "Conv2d: kernel 5x5 is larger than the padded input 4x4 (input 4x4, padding (0, 0))",
        ),
        (
            nn.Conv2d(3, 2, 5, padding=1),
            (2, 3, 2, 6),
            "Conv2d: kernel 5x5 is larger than the padded input 4x8 (input 2x6, padding (1, 1))",
        ),
        (
            nn.Conv2d(3, 2, (2, 7), padding=(0, 1)),
            (1, 3, 4, 4),
            "Conv2d: kernel 2x7 is larger than the padded input 4x6 (input 4x4, padding (0, 1))",
        ),
        (
            nn.MaxPool2d(3),
            (1, 2, 2, 5),
            "MaxPool2d: kernel 3x3 is larger than the padded input 2x5 (input 2x5, padding (0, 0))",
        ),
        (
            nn.MaxPool2d(4, padding=1),
            (1, 2, 1, 1),
            "MaxPool2d: kernel 4x4 is larger than the padded input 3x3 (input 1x1, padding (1, 1))",
        ),
        (
            nn.AvgPool2d((1, 6), padding=(0, 2)),
            (1, 2, 3, 1),
            "AvgPool2d: kernel 1x6 is larger than the padded input 3x5 (input 3x1, padding (0, 2))",
        ),
    ],
)
def test_kernel_larger_than_the_padded_input(layer, shape, message):
    with raises(ValueError, message):
        layer(randn(*shape, dtype=np.float32))


def test_a_kernel_that_fits_only_with_its_padding_is_accepted():
    assert nn.Conv2d(1, 1, 3, padding=1)(randn(1, 1, 1, 1, dtype=np.float32)).shape == (1, 1, 1, 1)
    assert nn.MaxPool2d(3, stride=1, padding=1)(randn(1, 1, 1, 2, dtype=np.float32)).shape == (1, 1, 1, 2)


# --- shapes, channels and dtypes of the input ----------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: nn.Conv2d(3, 2, 1), lambda: nn.MaxPool2d(1), lambda: nn.AvgPool2d(1), lambda: nn.BatchNorm2d(3)],
    ids=["Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d"],
)
@pytest.mark.parametrize("shape", [(3, 4, 4), (2, 3), (1, 2, 3, 4, 4), (4,)])
def test_input_must_be_4d(make, shape):
    layer = make()
    with raises(ValueError, f"{type(layer).__name__}: expected a 4-D input (N, C, H, W), got shape {shape}"):
        layer(randn(*shape, dtype=np.float32))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 4)])
def test_batchnorm1d_input_must_be_2d_or_3d(shape):
    with raises(ValueError, f"BatchNorm1d: expected a 2/3-D input (N, C) or (N, C, L), got shape {shape}"):
        nn.BatchNorm1d(3)(randn(*shape, dtype=np.float32))


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (nn.Conv2d(3, 2, 3), (2, 1, 5, 5), "Conv2d: expected 3 input channels, got 1 (input shape (2, 1, 5, 5))"),
        (
            nn.Conv2d(1, 2, 3),
            (2, 5, 5, 1),
            "Conv2d: expected 1 input channels, got 5 (input shape (2, 5, 5, 1))",
        ),  # NHWC by mistake
        (nn.BatchNorm2d(4), (2, 3, 5, 5), "BatchNorm2d: expected 4 input channels, got 3 (input shape (2, 3, 5, 5))"),
        (nn.BatchNorm1d(4), (8, 5), "BatchNorm1d: expected 4 input channels, got 5 (input shape (8, 5))"),
        (nn.BatchNorm1d(4), (8, 3, 4), "BatchNorm1d: expected 4 input channels, got 3 (input shape (8, 3, 4))"),
    ],
)
def test_channel_count_mismatch(layer, shape, message):
    with raises(ValueError, message):
        layer(randn(*shape, dtype=np.float32))


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.Conv2d(2, 3, 1), (1, 2, 3, 3)),
        (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
        (lambda: nn.BatchNorm1d(2), (4, 2)),
    ],
    ids=["Conv2d", "BatchNorm2d", "BatchNorm1d"],
)
def test_input_dtype_must_match_the_weight(make, shape):
    layer = make()
    name = type(layer).__name__
    with raises(
        TypeError,
        f"{name}: input dtype float64 does not match weight dtype float32",
        "x.astype(np.float32)",
        "model.to(np.float64)",
    ):
        layer(randn(*shape, dtype=np.float64))
    layer.to(np.float64)
    with raises(TypeError, f"{name}: input dtype float32 does not match weight dtype float64"):
        layer(randn(*shape, dtype=np.float32))


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(2, 3, 1),
        lambda: nn.MaxPool2d(1),
        lambda: nn.AvgPool2d(1),
        lambda: nn.BatchNorm2d(2),
        lambda: nn.Residual(nn.ReLU()),
        lambda: nn.Concat(nn.ReLU()),
    ],
    ids=["Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Residual", "Concat"],
)
def test_image_layers_refuse_integer_and_list_input(make):
    layer = make()
    name = type(layer).__name__
    with raises(TypeError, f"{name}: expected the input to have dtype float32 or float64, got int64"):
        layer(np.ones((2, 2, 3, 3), dtype=np.int64))
    with raises(TypeError, f"{name}: expected the input to be a numpy.ndarray, got list"):
        layer([[[[1.0]]]])


# --- batch norm needs a variance -------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, shape", [(nn.BatchNorm1d(3), (1, 3)), (nn.BatchNorm1d(3), (1, 3, 1)), (nn.BatchNorm2d(3), (1, 3, 1, 1))]
)
def test_batchnorm_training_with_one_value_per_channel(layer, shape):
    name = type(layer).__name__
    with raises(
        ValueError,
        f"{name}: training needs more than one value per channel to compute a variance, "
        f"got input shape {shape} (use eval() for single samples)",
    ):
        layer(randn(*shape, dtype=np.float32))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))  # nothing was updated
    assert layer.eval()(randn(*shape, dtype=np.float32)).shape == shape  # as the message says


def test_batchnorm_one_sample_with_several_positions_trains():
    assert nn.BatchNorm2d(3)(randn(1, 3, 2, 1, dtype=np.float32)).shape == (1, 3, 2, 1)
    assert nn.BatchNorm1d(3)(randn(1, 3, 2, dtype=np.float32)).shape == (1, 3, 2)


# --- skip containers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inner, message",
    [
        (
            nn.Conv2d(2, 2, 3),
            "Residual: inner(x) must have the input's shape (2, 2, 5, 5), got (2, 2, 3, 3)",
        ),  # H, W change
        (
            nn.Conv2d(2, 4, 3, padding=1),
            "Residual: inner(x) must have the input's shape (2, 2, 5, 5), got (2, 4, 5, 5)",
        ),  # C changes
        (nn.MaxPool2d(2), "Residual: inner(x) must have the input's shape (2, 2, 5, 5), got (2, 2, 2, 2)"),
    ],
)
def test_residual_whose_inner_changes_the_shape(inner, message):
    with raises(ValueError, message):
        nn.Residual(inner)(randn(2, 2, 5, 5, dtype=np.float32))


@pytest.mark.parametrize(
    "inner, message",
    [
        (nn.Conv2d(2, 3, 3), "x has shape (2, 2, 5, 5), inner(x) has (2, 3, 3, 3)"),
        (nn.MaxPool2d(2), "x has shape (2, 2, 5, 5), inner(x) has (2, 2, 2, 2)"),
        (nn.Conv2d(2, 3, (1, 2)), "x has shape (2, 2, 5, 5), inner(x) has (2, 3, 5, 4)"),
        (nn.Flatten(), "x has shape (2, 2, 5, 5), inner(x) has (2, 50)"),
    ],
)
def test_concat_with_mismatched_spatial_sizes(inner, message):
    with raises(
        ValueError,
        "Concat: inner(x) must keep the batch and spatial sizes of x to be concatenated along the channels",
        message,
    ):
        nn.Concat(inner)(randn(2, 2, 5, 5, dtype=np.float32))


# --- backward ----------------------------------------------------------------------------------------


LAYERS = {
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 4, 4), (2, 3, 4, 4)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (2, 2, 4, 4), (2, 2, 2, 2)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (2, 2, 4, 4), (2, 2, 2, 2)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(2), (4, 2), (4, 2)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (2, 2, 4, 4), (2, 2, 4, 4)),
    "Residual": (lambda: nn.Residual(nn.Conv2d(2, 2, 3, padding=1)), (2, 2, 4, 4), (2, 2, 4, 4)),
    "Concat": (lambda: nn.Concat(nn.Conv2d(2, 1, 3, padding=1)), (2, 2, 4, 4), (2, 3, 4, 4)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_backward_before_forward(name):
    make, _, y_shape = LAYERS[name]
    with raises(RuntimeError, f"{name}: backward() called before forward()"):
        make().backward(randn(*y_shape, dtype=np.float32))


@pytest.mark.parametrize("name", LAYERS)
def test_backward_checks_the_upstream_gradient_shape(name):
    make, x_shape, y_shape = LAYERS[name]
    layer = make()
    assert layer(randn(*x_shape, dtype=np.float32)).shape == y_shape
    wrong = (y_shape[0], y_shape[1] + 1) + y_shape[2:]
    with raises(
        ValueError, f"{name}: expected the upstream gradient dy of shape {y_shape} (the forward output's), got {wrong}"
    ):
        layer.backward(randn(*wrong, dtype=np.float32))
    with raises(TypeError, f"{name}: expected the upstream gradient dy to have dtype float32 or float64, got int64"):
        layer.backward(np.ones(y_shape, dtype=np.int64))


@pytest.mark.parametrize("name", ["Conv2d", "BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_backward_upstream_gradient_dtype_must_match_the_weight(name, training):
    make, x_shape, y_shape = LAYERS[name]
    layer = make().train(training)
    layer(randn(*x_shape, dtype=np.float32))
    with raises(TypeError, f"{name}: upstream gradient dy has dtype float64, expected float32 (the weight's)"):
        layer.backward(randn(*y_shape, dtype=np.float64))


def test_batchnorm_backward_after_an_eval_forward_checks_the_shape():
    layer = nn.BatchNorm2d(2).eval()
    layer(randn(1, 2, 3, 3, dtype=np.float32))
    with raises(ValueError, "BatchNorm2d: expected the upstream gradient dy of shape (1, 2, 3, 3)", "got (2, 2, 3, 3)"):
        layer.backward(randn(2, 2, 3, 3, dtype=np.float32))


# --- inside a Sequential -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, dtype, err, message",
    [
        (
            (2, 3, 28, 28),
            np.float32,
            ValueError,
            "Sequential[0] > Conv2d: expected 1 input channels, got 3 (input shape (2, 3, 28, 28))",
        ),
        (
            (2, 28, 28),
            np.float32,
            ValueError,
            "Sequential[0] > Conv2d: expected a 4-D input (N, C, H, W), got shape (2, 28, 28)",
        ),
        (
            (2, 1, 28, 28),
            np.float64,
            TypeError,
            "Sequential[0] > Conv2d: input dtype float64 does not match weight dtype float32",
        ),
        (
            (2, 1, 4, 4),
            np.float32,
            ValueError,  # 4x4 -> conv 4x4 -> pool 2x2: too small for the second 5x5
            "Sequential[3] > Conv2d: kernel 5x5 is larger than the padded input 2x2 (input 2x2, padding (0, 0))",
        ),
        (
            (2, 1, 1, 1),
            np.float32,
            ValueError,
            "Sequential[2] > MaxPool2d: kernel 2x2 is larger than the padded input 1x1 (input 1x1, padding (0, 0))",
        ),
        (
            (2, 1, 32, 32),
            np.float32,
            ValueError,  # LeNet's original 32x32 input: 16*6*6 features reach the Linear
            "Sequential[7] > Linear: expected an input of shape (N, 400) (in_features=400), got shape (2, 576)",
        ),
    ],
)
def test_lenet_errors_name_the_position_in_the_sequential(shape, dtype, err, message):
    with raises(err, message):
        lenet5()(randn(*shape, dtype=dtype))


def test_errors_of_the_new_layers_inside_a_sequential_name_the_position():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(3))
    with raises(ValueError, "Sequential[1] > BatchNorm2d: expected 3 input channels, got 2 (input shape (1, 2, 4, 4))"):
        model(randn(1, 1, 4, 4, dtype=np.float32))
    model = nn.Sequential(nn.ReLU(), nn.Residual(nn.Conv2d(2, 2, 3)))
    with raises(
        ValueError, "Sequential[1] > Residual: inner(x) must have the input's shape (1, 2, 4, 4), got (1, 2, 2, 2)"
    ):
        model(randn(1, 2, 4, 4, dtype=np.float32))
    model = nn.Sequential(nn.Concat(nn.MaxPool2d(2)), nn.ReLU())
    with raises(ValueError, "Sequential[0] > Concat: inner(x) must keep the batch and spatial sizes"):
        model(randn(1, 2, 4, 4, dtype=np.float32))
    model = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(8))
    with raises(ValueError, "Sequential[1] > BatchNorm1d: training needs more than one value per channel"):
        model(randn(1, 2, 2, 2, dtype=np.float32))
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2))
    with raises(RuntimeError, "Sequential[1] > MaxPool2d: backward() called before forward()"):
        model.backward(randn(1, 2, 1, 1, dtype=np.float32))
    model(randn(1, 1, 4, 4, dtype=np.float32))
    with raises(TypeError, "Sequential[0] > Conv2d: upstream gradient dy has dtype float64, expected float32"):
        model.backward(randn(1, 2, 1, 1, dtype=np.float64))
