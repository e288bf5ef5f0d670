"""``backward_params(dy)``: the parameter gradients of ``backward(dy)`` without dx, for a
training step, whose input (the images) needs no gradient. The same gradients as
backward, nothing returned, dx's product really skipped, in every container and mode."""

import numpy as np
import pytest

import minidl
from minidl import nn, reference_loops
from minidl.ops import conv2d, conv_transpose2d, linear
from tests.helpers import randn


def twins(make):
    """Two copies of one model (same weights), float64."""
    minidl.seed(0)
    a, b = make().to(np.float64), make().to(np.float64)
    b.load_state_dict(a.state_dict())
    return a, b


def grads(model):
    return {k: p.grad.copy() for k, p in model.named_parameters()}


def assert_same_grads(a, b):
    ga, gb = grads(a), grads(b)
    assert ga.keys() == gb.keys()
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k], err_msg=k)


FIRST_LAYERS = {
    "conv2d": (lambda bias: nn.Conv2d(2, 3, 3, padding=1, bias=bias), (2, 2, 5, 5)),
    "conv_transpose2d": (lambda bias: nn.ConvTranspose2d(2, 3, 2, stride=2, bias=bias), (2, 2, 3, 3)),
    "linear": (lambda bias: nn.Linear(4, 3, bias=bias), (2, 4)),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", FIRST_LAYERS)
def test_a_layer_adds_the_gradients_of_backward_and_returns_nothing(kind, bias):
    make, shape = FIRST_LAYERS[kind]
    a, b = twins(lambda: make(bias))
    x = randn(*shape)
    dy = randn(*a(x).shape, seed=1)
    b(x)
    a.backward(dy)
    assert b.backward_params(dy) is None
    assert_same_grads(a, b)
    b(x)
    b.backward_params(dy)  # it accumulates, as backward does
    for k, g in grads(b).items():
        np.testing.assert_allclose(g, 2 * grads(a)[k], rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("op", [conv2d, conv_transpose2d, linear])
def test_the_ops_return_no_dx_and_the_same_dw_db(op):
    x, w = (randn(2, 4), randn(3, 4, seed=1)) if op is linear else (randn(2, 2, 4, 4), randn(2, 3, 2, 2, seed=1))
    geometry = () if op is linear else ((2, 2), (0, 0))
    if op is conv2d:
        w = w.transpose(1, 0, 2, 3).copy()  # conv2d's weight is (C_out, C, KH, KW)
    forward_geometry = geometry + ((0, 0),) if op is conv_transpose2d else geometry
    dy = randn(*op.forward(x, w, None, *forward_geometry).shape, seed=2)
    for loops in (False, True):  # the fast kernels and the textbook loops
        with reference_loops(loops):
            dx, dw, db = op.backward(dy, x, w, *geometry, True)
            no_dx, dw2, db2 = op.backward(dy, x, w, *geometry, True, input_grad=False)
        assert dx is not None and no_dx is None
        np.testing.assert_array_equal(dw, dw2)
        np.testing.assert_array_equal(db, db2)


def test_conv2d_skips_the_input_gradient(monkeypatch):
    layer = nn.Conv2d(1, 2, 3)
    layer(randn(2, 1, 5, 5, dtype=np.float32))

    def refuse(*args):
        raise AssertionError("backward_params computed dx")

    monkeypatch.setattr(conv2d, "backward_input", refuse)
    layer.backward_params(randn(2, 2, 3, 3, dtype=np.float32))
    assert layer.weight.grad.any()


def lenet_like():
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()),  # a nested first layer
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 3),
    )


def test_sequential_passes_it_to_its_first_layer_only():
    a, b = twins(lenet_like)
    x = randn(2, 1, 6, 6)
    dy = randn(2, 3, seed=1)
    a(x)
    b(x)
    a.backward(dy)
    assert b.backward_params(dy) is None
    assert_same_grads(a, b)


def test_a_layer_without_its_own_runs_backward_and_drops_dx():
    layer = nn.ReLU()
    x, dy = randn(3, 4), randn(3, 4, seed=1)
    layer(x)
    assert layer.backward_params(dy) is None
    layer(x)  # its cache was taken by that backward: the next pass starts clean
    layer.backward(dy)


def refuse_backward(*layers):
    """Make backward and backward_params of each layer (instance attributes, so only these
    objects) fail the test if called."""

    def refuse(dy):
        raise AssertionError("a layer that trains nothing, before any that does, ran backward")

    for layer in layers:
        layer.backward = layer.backward_params = refuse


def test_sequential_stops_at_the_first_layer_that_trains():
    a, b = twins(lambda: nn.Sequential(nn.Flatten(), nn.Linear(8, 2)))
    refuse_backward(b[0])
    x, dy = randn(3, 2, 2, 2), randn(3, 2, seed=1)
    a(x)
    b(x)
    a.backward(dy)
    assert b.backward_params(dy) is None
    assert_same_grads(a, b)


def probe():
    """A backbone (conv, ReLU, pool, flatten) and a head, as in a linear probe."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()),
        nn.Linear(2 * 3 * 3, 3),
    )


def test_a_frozen_backbone_runs_no_backward_and_keeps_no_caches():
    a, b = twins(probe)
    for model in (a, b):
        model[0].requires_grad_(False)
    refuse_backward(*b[0].layers)
    x, dy = randn(2, 1, 6, 6), randn(2, 3, seed=1)
    a(x)
    a.backward(dy)
    for _ in range(3):  # several passes: each one's caches are dropped by the next forward
        b.zero_grad()
        b(x)
        b.backward_params(dy)
        assert all(len(layer._saved.entries) == 1 for layer in b[0].layers)
    assert_same_grads(a, b)
    assert not any(p.grad.any() for p in b[0].parameters())


def test_a_partly_frozen_backbone_stops_inside_it():
    def make():
        return nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1)),
            nn.Flatten(),
            nn.Linear(2 * 4 * 4, 3),
        )

    a, b = twins(make)
    for model in (a, b):
        model[0][0].requires_grad_(False)
    refuse_backward(b[0][0], b[0][1])
    x, dy = randn(2, 1, 4, 4), randn(2, 3, seed=1)
    a(x)
    b(x)
    a.backward(dy)
    b.backward_params(dy)  # the second conv trains: it runs backward_params, no dx
    assert_same_grads(a, b)


def test_a_model_that_trains_nothing_runs_no_backward():
    _, model = twins(probe)
    model.requires_grad_(False)
    refuse_backward(*model[0].layers, model[1])
    model(randn(2, 1, 6, 6))
    assert model.backward_params(randn(2, 3, seed=1)) is None


def test_anomaly_mode_runs_it_and_still_finds_a_nan():
    _, model = twins(lenet_like)
    x, dy = randn(2, 1, 6, 6), randn(2, 3, seed=1)
    with minidl.detect_anomaly():
        model(x)
        model.backward_params(dy)  # the first layer returns no dx: nothing to check there
        model(x)
        dy[0, 0] = np.nan
        with pytest.raises(minidl.AnomalyError):
            model.backward_params(dy)


def test_fit_trains_with_backward_params(monkeypatch):
    calls = []
    original = nn.Sequential.backward_params
    monkeypatch.setattr(nn.Sequential, "backward_params", lambda self, dy: calls.append(1) or original(self, dy))
    model = nn.Sequential(nn.Linear(4, 2))
    minidl.fit(
        model,
        nn.SoftmaxCrossEntropy(),
        minidl.optim.SGD(model.parameters(), lr=0.1),
        (randn(8, 4, dtype=np.float32), np.arange(8) % 2),
        epochs=1,
        batch_size=4,
        verbose=False,
    )
    assert len(calls) == 2
