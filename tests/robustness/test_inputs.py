"""Malformed inputs against every layer and loss, drawn by hypothesis: any ndim, any size
(zero included), any dtype, NaN and inf among the values. For each, the layer either
returns a result (the right shape, NaN passed on rather than hidden) or raises a
TypeError/ValueError whose message starts with the layer's name, and a failed call leaves
the layer as it was. Never a crash, a NumPy or Numba error from deep inside, or garbage."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minidl import nn
from tests.helpers import assert_same_snapshot, snapshot

# every input pixel lies in some window of these configurations, so a NaN cannot fall out
LAYERS = {
    "Linear": lambda: nn.Linear(3, 2),
    "Conv2d": lambda: nn.Conv2d(2, 3, 3, padding=1),
    "ConvTranspose2d": lambda: nn.ConvTranspose2d(2, 1, 2, stride=2),
    "MaxPool2d": lambda: nn.MaxPool2d(2),
    "AvgPool2d": lambda: nn.AvgPool2d(2, stride=1),
    "BatchNorm1d": lambda: nn.BatchNorm1d(3),
    "BatchNorm2d": lambda: nn.BatchNorm2d(2),
    "ReLU": lambda: nn.ReLU(),
    "LeakyReLU": lambda: nn.LeakyReLU(0.1),
    "Sigmoid": lambda: nn.Sigmoid(),
    "Tanh": lambda: nn.Tanh(),
    "Dropout": lambda: nn.Dropout(0.5),
    "Flatten": lambda: nn.Flatten(),
    "Unflatten": lambda: nn.Unflatten(1, (1, 3)),
    "Upsample": lambda: nn.Upsample(2),
    "Residual": lambda: nn.Residual(nn.Tanh()),
    "Concat": lambda: nn.Concat(nn.ReLU()),
}

ELEMENTWISE = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "Residual"}
DTYPES = [np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_, np.complex64]
VALUES = st.sampled_from([0.0, 1.0, -2.5, 1e3, np.nan, np.inf, -np.inf])


@st.composite
def inputs(draw):
    """An array of 0 to 5 dimensions, each of size 0 to 4 (often a valid shape for some
    layer), of a drawn dtype, with NaN and inf among its values."""
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 3, 4]), min_size=0, max_size=5).map(tuple))
    dtype = draw(st.sampled_from(DTYPES))
    x = draw(arrays(np.float64, shape, elements=VALUES))
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype)


@pytest.mark.parametrize("name", sorted(LAYERS))
@given(x=inputs(), training=st.booleans())
def test_a_layer_returns_a_result_or_names_itself(name, x, training):
    layer = LAYERS[name]().train(training)
    before = snapshot(layer)
    try:
        y = layer(x)
    except (TypeError, ValueError) as err:
        assert str(err).startswith(name), f"{type(err).__name__}: {err}"
        assert_same_snapshot(before, snapshot(layer))
        return
    assert x.dtype in (np.float32, np.float64) and y.dtype == x.dtype
    if name in ELEMENTWISE:
        assert y.shape == x.shape  # any shape, a 0-d array included, as in PyTorch
    else:
        assert y.shape[0] == x.shape[0]  # the batch axis survives every other layer
    if y.size and np.isnan(x).any():  # a NaN is passed on, never hidden
        assert np.isnan(y).any()
    if np.isfinite(x).all():  # values up to 1e3 through small layers: nothing overflows
        assert np.isfinite(y).all()
    dy = np.ones_like(y)
    dx = layer.backward(dy)
    assert dx.shape == x.shape and dx.dtype == x.dtype


LOSSES = {
    "SoftmaxCrossEntropy": (lambda: nn.SoftmaxCrossEntropy(), lambda pred: np.zeros(pred.shape[:1], np.int64)),
    "MSELoss": (lambda: nn.MSELoss(), lambda pred: np.zeros(pred.shape, pred.dtype)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@given(pred=inputs(), target=inputs(), use_drawn_target=st.booleans())
def test_a_loss_returns_a_finite_loss_or_names_itself(name, pred, target, use_drawn_target):
    make, matching_target = LOSSES[name]
    loss_fn = make()
    if not use_drawn_target:
        try:
            target = matching_target(pred)
        except (TypeError, ValueError, IndexError):
            pass
    try:
        loss = loss_fn(pred, target)
    except (TypeError, ValueError) as err:
        assert str(err).startswith(name), f"{type(err).__name__}: {err}"
        return
    assert np.isfinite(loss)
    assert loss_fn.backward().shape == pred.shape


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Sequential(nn.BatchNorm1d(3), nn.Linear(4, 2)),
        lambda: nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), nn.ReLU(), nn.Linear(5, 1)),
        lambda: nn.Residual(nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2))),
        lambda: nn.Concat(nn.Sequential(nn.BatchNorm1d(3), nn.Flatten(), nn.Unflatten(1, (1, 3)))),
    ],
    ids=["bn-then-bad-linear", "nested", "residual-shape", "concat-shape"],
)
def test_a_pass_that_fails_in_a_later_layer_leaves_the_running_statistics_as_they_were(make):
    """Batch norm updates its running statistics in training mode; when a later layer of the
    same pass raises, the containers put them back."""
    model = make().train()
    before = snapshot(model)
    with pytest.raises(ValueError):
        model(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    assert_same_snapshot(before, snapshot(model))
