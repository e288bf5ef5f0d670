"""The dense-network layers: every one through the gradient checker, then what each
layer adds to its op (parameters and their initialisation, modes, caching, dtypes, repr)."""

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.gradcheck import check_layer


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def labels(shape, K, seed=1):
    return np.random.default_rng(seed).integers(0, K, shape)


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


def test_reprs_show_the_constructor_arguments():
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
