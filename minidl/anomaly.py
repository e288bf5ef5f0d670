"""``minidl.detect_anomaly()``: find the layer where a NaN or an infinity was born.

A NaN spreads: once one value of a layer's output is NaN, every later layer, the loss, the
gradients and after one optimizer step the weights are NaN too, and the error you finally
see (the loss refusing NaN) says nothing about where it started. In anomaly mode every
layer's output in forward and every gradient in backward (the gradient of the layer's
input and of each of its parameters) is checked as soon as it is made, and the first
non-finite value raises ``AnomalyError`` naming the layer by its state-dict prefix
(``"3.inner.0"``) and type, the pass, what was bad and how many values were:

    with minidl.detect_anomaly():
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    # AnomalyError: detect_anomaly: forward of layer '4' (Linear): its output holds 12 NaN
    # or infinite values of 640 (what it was given was finite, so they were born here)

or ``minidl.fit(..., detect_anomaly=True)``. PyTorch's ``torch.autograd.detect_anomaly``
is the model. The checks are a pass over each array, so the mode is off by default; off,
it costs one boolean test per layer call.

The checks live in the containers (``Sequential``, ``Residual``, ``Concat``), which call
their children through ``child_forward`` / ``child_backward``, and in ``Layer.__call__``:
a child's output and gradients are checked there and, when a check fails, the child's name
is written in front of the error's ``path`` on its way out (an ``except`` clause, free when
nothing is raised), so the name is the key prefix from the outermost container the error
went through.
"""

import contextlib

from . import dispatch

enabled = False  # read by the containers and Layer.__call__; set only by detect_anomaly()


@contextlib.contextmanager
def detect_anomaly():
    """Check every layer output and gradient for NaN/inf inside the ``with`` block."""
    global enabled
    previous, enabled = enabled, True
    try:
        yield
    finally:
        enabled = previous


class AnomalyError(FloatingPointError):
    """A non-finite value found in anomaly mode.

    ``path``: the child names from the outermost container to the layer (its state-dict
    prefix, ``".".join(path)``); ``layer_type``, ``pass_name`` ("forward" or "backward"),
    ``what`` (e.g. "output", "dx", "weight.grad"), ``bad`` and ``total`` (the count of
    non-finite values and of all values).
    """

    def __init__(self, layer_type, pass_name, what, bad, total):
        super().__init__()
        self.path = []
        self.layer_type, self.pass_name, self.what, self.bad, self.total = layer_type, pass_name, what, bad, total

    @property
    def layer_name(self):
        return ".".join(self.path)

    def __str__(self):
        where = f"layer {self.layer_name!r} ({self.layer_type})" if self.path else f"the {self.layer_type} called"
        born = {
            "input": "it was given them: the data, or the layer before it, made them",
            "dy": "the gradient handed to backward already held them",
        }.get(self.what, "what it was given was finite, so they were born here")
        return (
            f"detect_anomaly: {self.pass_name} of {where}: its {self.what} holds {self.bad} NaN or infinite "
            f"values of {self.total} ({born})"
        )


def check(layer, pass_name, what, array):
    """Raise ``AnomalyError`` if ``array`` holds a NaN or an infinity (counted where it lives)."""
    bad = dispatch.op("reduce", array).count_nonfinite(array)
    if bad:
        raise AnomalyError(type(layer).__name__, pass_name, what, bad, array.size)


def check_backward(layer, dx):
    """After ``layer.backward``: the gradient of its input (None after ``backward_params``)
    and of each of its own parameters."""
    if dx is not None:
        check(layer, "backward", "dx", dx)
    for attr, p in layer._own_parameters():
        check(layer, "backward", f"{attr}.grad", p.grad)


def child_forward(child, name, x):
    """``child.forward(x)`` for a container: its output checked in anomaly mode, and
    ``name`` (the child's key) put in front of the path of an ``AnomalyError`` from it."""
    try:
        y = child.forward(x)
        if enabled:
            check(child, "forward", "output", y)
    except AnomalyError as err:
        err.path.insert(0, name)
        raise
    return y


def child_backward(child, name, dy, params_only=False):
    """``child.backward(dy)`` for a container, checked and named like ``child_forward``;
    ``child.backward_params(dy)`` (no dx: returns None) when ``params_only``."""
    try:
        if params_only:
            dx = child.backward_params(dy)
        else:
            dx = child.backward(dy)
        if enabled:
            check_backward(child, dx)
    except AnomalyError as err:
        err.path.insert(0, name)
        raise
    return dx
