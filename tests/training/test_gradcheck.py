"""The gradient checker itself must be able to fail: a checker that passes everything
would make every other gradient test vacuous."""

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.gradcheck import check_layer, numerical_gradient, relative_error


def test_numerical_gradient_of_known_functions():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**3), x), 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_numerical_gradient_needs_contiguous_input():
    with pytest.raises(ValueError, match="perturbed in place"):
        numerical_gradient(np.sum, np.ones((3, 4)).T)


def test_relative_error_definition():
    assert relative_error([100.0], [101.0]) == pytest.approx(1 / 101)
    assert relative_error([1e-9], [0.0]) == pytest.approx(1e-9)  # absolute below 1
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(np.zeros(2), np.zeros(3))


class Square(nn.Layer):
    """y = w * x^2, with an optional bug in the backward."""

    def __init__(self, bug=None):
        super().__init__()
        self.weight = nn.Parameter(np.array([1.5], dtype=np.float32))
        self.bug = bug

    def forward(self, x):
        self.x = x
        return self.weight.data * x**2

    def backward(self, dy):
        dw = np.sum(dy * self.x**2)
        dx = 2 * self.weight.data * self.x * dy
        if self.bug == "dx":
            dx = dx + 1e-3 * dy[::-1]  # wrong only when dy is not symmetric
        if self.bug == "dw":
            dw = dw * 1.001
        self.weight.grad += dw
        return dx


def test_check_layer_passes_a_correct_layer_in_float64_without_touching_it():
    layer = Square()
    report = check_layer(layer, np.array([0.3, -1.2, 2.0]))
    assert report.ok, report
    assert set(report.errors) == {"input", "weight"}
    assert layer.weight.dtype == np.float32 and not layer.weight.grad.any()


@pytest.mark.parametrize("bug", ["dx", "dw"])
def test_check_layer_catches_wrong_gradients(bug):
    report = check_layer(Square(bug), np.array([0.3, -1.2, 2.0]))
    assert not report.ok and report.max_error > 1e-5
    assert "FAILED" in repr(report)


class Noisy(nn.Layer):
    """Multiplies by a fresh random mask each call (like dropout)."""

    def forward(self, x):
        self.mask = minidl.rng.get_rng().random(x.shape) > 0.5
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


def test_check_layer_replays_the_random_state_for_stochastic_layers():
    minidl.seed(3)
    report = check_layer(Noisy(), np.linspace(-1, 1, 12).reshape(3, 4))
    assert report.ok, report


class HalfSquaredLoss(nn.Layer):
    def forward(self, pred, target):
        self.diff = pred - target
        return float(0.5 * np.sum(self.diff**2))

    def backward(self):
        return self.diff


def test_check_layer_on_a_loss_with_target():
    report = check_layer(HalfSquaredLoss(), np.array([1.0, 2.0]), target=np.array([0.5, -1.0]))
    assert report.ok, report
