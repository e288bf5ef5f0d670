"""``minidl.detect_anomaly()`` names the layer where a NaN or an inf was born."""

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from tests.helpers import raises


def net():
    minidl.seed(0)
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Residual(nn.Sequential(nn.Linear(8, 8), nn.Tanh())), nn.Linear(8, 3)
    )


def x_batch():
    return np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)


def test_forward_names_the_layer_by_its_state_dict_prefix():
    model = net()
    model[2].inner[0].weight.data[0, 0] = np.inf  # born in layer "2.inner.0"
    with minidl.detect_anomaly():
        with pytest.raises(minidl.AnomalyError) as info:
            model(x_batch())
    err = info.value
    assert (err.layer_name, err.layer_type, err.pass_name, err.what) == ("2.inner.0", "Linear", "forward", "output")
    assert "forward of layer '2.inner.0' (Linear): its output holds" in str(err)
    assert "so they were born here" in str(err)


def test_backward_names_the_layer_and_the_gradient():
    model = net()
    y = model(x_batch())
    model[3].weight.data[...] = 1e30  # forward was fine; backward overflows at layer 3
    with minidl.detect_anomaly():
        with pytest.raises(minidl.AnomalyError) as info:
            model.backward(np.full(y.shape, 1e30, np.float32))
    err = info.value
    assert (err.layer_name, err.pass_name) == ("3", "backward")
    assert err.what in ("dx", "weight.grad") and err.bad > 0


def test_a_bad_input_is_blamed_on_the_data():
    x = x_batch()
    x[0, 0] = np.nan
    with minidl.detect_anomaly():
        with raises(
            minidl.AnomalyError, "forward of the Sequential called: its input holds 1 NaN", "it was given them"
        ):
            net()(x)


def test_off_by_default_and_restored_after_the_block():
    model = net()
    model[0].weight.data[0, 0] = np.nan
    y = model(x_batch())  # no check: the NaN flows on (and the loss would refuse it)
    assert np.isnan(y).any()
    with pytest.raises(minidl.AnomalyError):
        with minidl.detect_anomaly():
            model(x_batch())
    assert not minidl.anomaly.enabled
    model(x_batch())


def test_fit_with_detect_anomaly_finds_what_an_exploding_learning_rate_made():
    """SGD with lr = 1e6 on unscaled inputs: the weights blow up within a few steps, and
    the first layer to produce an inf or NaN is named."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 4)) * 100).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model = net()
    with pytest.raises(minidl.AnomalyError) as info:
        minidl.fit(
            model,
            nn.SoftmaxCrossEntropy(),
            optim.SGD(model.parameters(), lr=1e6, check_finite=False),
            (x, y),
            epochs=5,
            batch_size=16,
            verbose=False,
            detect_anomaly=True,
        )
    assert info.value.layer_name in {"0", "1", "2", "2.inner.0", "2.inner.1", "3"}
    assert not minidl.anomaly.enabled
