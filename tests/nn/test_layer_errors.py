"""Bad input to the dense-network layers: each error has its type, names the layer, and
gives the expected and the actual value."""

import re

import numpy as np
import pytest

from minidl import nn


def randn(*shape, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def raises(err, *fragments):
    """pytest.raises(err) whose message contains every fragment, in order."""
    return pytest.raises(err, match=".*".join(re.escape(f) for f in fragments))


# --- Linear -----------------------------------------------------------------------------------


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
        nn.Linear(5, 3)(randn(*shape))


def test_linear_input_must_have_in_features_columns():
    with raises(ValueError, "Linear: expected an input of shape (N, 5) (in_features=5), got shape (4, 3)"):
        nn.Linear(5, 3)(randn(4, 3))


def test_linear_input_dtype_must_match_the_weight():
    with raises(TypeError, "Linear: input dtype float64 does not match weight dtype float32"):
        nn.Linear(2, 3)(randn(4, 2, dtype=np.float64))


def test_linear_backward_checks_its_upstream_gradient():
    layer = nn.Linear(2, 3)
    with raises(RuntimeError, "Linear: backward() called before forward()"):
        layer.backward(randn(4, 3))
    layer(randn(4, 2))
    with raises(ValueError, "Linear: expected the upstream gradient dy of shape (4, 3)", "got (4, 2)"):
        layer.backward(randn(4, 2))
    with raises(TypeError, "Linear: upstream gradient dy has dtype float64, expected float32"):
        layer.backward(randn(4, 3, dtype=np.float64))


def test_errors_inside_a_sequential_name_the_position():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    with raises(ValueError, "Sequential[1] > Linear: expected an input of shape (N, 6)", "got shape (4, 12)"):
        model(randn(4, 3, 4))


# --- activations, Dropout, Flatten --------------------------------------------------------------


ELEMENTWISE = [nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Flatten]


@pytest.mark.parametrize("make", ELEMENTWISE)
def test_input_must_be_a_float_array(make):
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
        layer.backward(randn(2, 3))
    layer(randn(2, 3, 4))
    expected = (2, 12) if make is nn.Flatten else (2, 3, 4)
    with raises(ValueError, f"{name}: expected the upstream gradient dy of shape {expected}", "got (2, 3)"):
        layer.backward(randn(2, 3))
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
        nn.Flatten()(randn(5))


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
        layer(randn(4, 5))
    with raises(ValueError, "Unflatten: dim=2 is out of range for an input of shape (4, 6)"):
        nn.Unflatten(2, (2, 3))(randn(4, 6))
    with raises(RuntimeError, "Unflatten: backward() called before forward()"):
        layer.backward(randn(4, 2, 3))
    layer(randn(4, 6))
    with raises(ValueError, "Unflatten: expected the upstream gradient dy of shape (4, 2, 3)", "got (4, 6)"):
        layer.backward(randn(4, 6))
    with raises(TypeError, "Unflatten: expected the upstream gradient dy to have dtype float32 or float64, got int64"):
        layer.backward(np.ones((4, 2, 3), dtype=np.int64))


# --- SoftmaxCrossEntropy ----------------------------------------------------------------------


def test_cross_entropy_logits_must_be_2d_or_4d_floats():
    ce = nn.SoftmaxCrossEntropy()
    with raises(ValueError, "SoftmaxCrossEntropy: expected a 2/4-D logits (N, K) or (N, K, H, W), got shape (4, 3, 2)"):
        ce(randn(4, 3, 2), np.zeros((4, 2), dtype=np.int64))
    with raises(TypeError, "SoftmaxCrossEntropy: expected the logits to have dtype float32 or float64, got int64"):
        ce(np.zeros((4, 3), dtype=np.int64), np.zeros(4, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_])
def test_cross_entropy_labels_must_be_integers(dtype):
    with raises(TypeError, "SoftmaxCrossEntropy: expected integer class labels", f"got dtype {np.dtype(dtype)}"):
        nn.SoftmaxCrossEntropy()(randn(4, 3), np.zeros(4, dtype=dtype))


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_cross_entropy_labels_must_be_in_range(bad):
    t = np.array([0, 1, bad, 2])
    with raises(ValueError, "SoftmaxCrossEntropy: labels must be class indices in [0, K) = [0, 3)", "got values from"):
        nn.SoftmaxCrossEntropy()(randn(4, 3), t)


def test_cross_entropy_label_shape_must_match_the_logits():
    ce = nn.SoftmaxCrossEntropy()
    with raises(
        ValueError,
        "SoftmaxCrossEntropy: for logits of shape (4, 3) expected labels of shape (N,) = (4,), got shape (4, 1)",
    ):
        ce(randn(4, 3), np.zeros((4, 1), dtype=np.int64))
    with raises(ValueError, "expected labels of shape (N, H, W) = (2, 5, 6), got shape (2,)"):
        ce(randn(2, 3, 5, 6), np.zeros(2, dtype=np.int64))
    with raises(ValueError, "SoftmaxCrossEntropy: expected labels of shape (N, H, W) = (2, 5, 6), got shape (2, 6, 5)"):
        ce(randn(2, 3, 5, 6), np.zeros((2, 6, 5), dtype=np.int64))


def test_cross_entropy_batch_sizes_must_match():
    with raises(ValueError, "SoftmaxCrossEntropy: batch sizes differ: the logits have N=4, the labels 3"):
        nn.SoftmaxCrossEntropy()(randn(4, 3), np.zeros(3, dtype=np.int64))
    with raises(ValueError, "batch sizes differ: the logits have N=2, the labels 1"):
        nn.SoftmaxCrossEntropy()(randn(2, 3, 5, 5), np.zeros((1, 5, 5), dtype=np.int64))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cross_entropy_rejects_nan_and_inf_logits(bad):
    logits = randn(4, 3)
    logits[2, 1] = bad
    with raises(ValueError, "SoftmaxCrossEntropy: found NaN or inf in the logits (1 of 12 values)", "NaN never passes"):
        nn.SoftmaxCrossEntropy()(logits, np.zeros(4, dtype=np.int64))


def test_cross_entropy_rejects_an_empty_batch():
    with raises(ValueError, "SoftmaxCrossEntropy: labels is empty (shape (0,))"):
        nn.SoftmaxCrossEntropy()(randn(0, 3), np.zeros(0, dtype=np.int64))


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
        nn.SoftmaxCrossEntropy(weight=[1.0, 2.0])(randn(4, 3), np.zeros(4, dtype=np.int64))


def test_cross_entropy_batch_with_zero_total_weight():
    with raises(ValueError, "SoftmaxCrossEntropy: the labels of this batch all have weight 0"):
        nn.SoftmaxCrossEntropy(weight=[0.0, 1.0, 1.0])(randn(4, 3), np.zeros(4, dtype=np.int64))


def test_cross_entropy_backward_before_forward():
    with raises(RuntimeError, "SoftmaxCrossEntropy: backward() called before forward()"):
        nn.SoftmaxCrossEntropy().backward()


def test_probabilities_checks_its_input():
    with raises(ValueError, "SoftmaxCrossEntropy.probabilities: expected a 2/4-D logits"):
        nn.SoftmaxCrossEntropy.probabilities(randn(3))


# --- MSELoss ------------------------------------------------------------------------------------


def test_mse_shapes_must_be_equal():
    with raises(
        ValueError, "MSELoss: pred has shape (4, 1) but target has shape (4,); they must be equal (no broadcasting)"
    ):
        nn.MSELoss()(randn(4, 1), randn(4))


@pytest.mark.parametrize("which", ["pred", "target"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_mse_rejects_nan_and_inf(which, bad):
    pred, target = randn(3, 2), randn(3, 2)
    (pred if which == "pred" else target)[1, 1] = bad
    with raises(ValueError, f"MSELoss: found NaN or inf in {which} (1 of 6 values)", "NaN never passes"):
        nn.MSELoss()(pred, target)


def test_mse_inputs_must_be_float_arrays():
    with raises(TypeError, "MSELoss: expected the target to have dtype float32 or float64, got int64"):
        nn.MSELoss()(randn(3), np.arange(3))
    with raises(TypeError, "MSELoss: expected the pred to be a numpy.ndarray, got list"):
        nn.MSELoss()([1.0, 2.0], randn(2))


def test_mse_rejects_empty_input_and_backward_before_forward():
    with raises(ValueError, "MSELoss: pred is empty (shape (0, 3))"):
        nn.MSELoss()(randn(0, 3), randn(0, 3))
    with raises(RuntimeError, "MSELoss: backward() called before forward()"):
        nn.MSELoss().backward()
