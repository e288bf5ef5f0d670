"""Containers: the whole graph of a minidl model.

``Sequential`` applies its layers in order and backpropagates in reverse:

    forward:  y = f_L(... f_2(f_1(x)))
    backward: dx = J_1^T (J_2^T (... J_L^T dy))     (each layer's backward is one J_l^T)

``ModuleList`` and ``ModuleDict`` only hold layers (PyTorch's names): a model class that
keeps its parts in a list or a dict uses them, so that ``parameters()``, ``state_dict()``
and ``to()`` find the parts (a plain Python list assigned to a layer is refused).

The same layer object may appear at several places (``Sequential(block, block)``: the
weights are shared); each place's forward keeps its own cache and backward adds the
gradients of all places into the one ``.grad`` (see ``Layer``).

In anomaly mode (``minidl.detect_anomaly()``) ``Sequential`` checks its input, each
layer's output in forward and each layer's gradients in backward; an ``AnomalyError``
from a child leaves with the child's name in front of its path.
"""

from .. import anomaly
from .module import Layer, atomic_forward


class ModuleList(Layer):
    """``ModuleList(layers)``: a list of layers, children ``"0"``, ``"1"``, ... No forward:
    the model that holds it decides how its layers are called."""

    def __init__(self, layers=()):
        super().__init__()
        object.__setattr__(self, "layers", [])  # the one plain list a layer may hold
        for layer in layers:
            self.append(layer)

    def append(self, layer):
        """Add ``layer`` at the end. Returns self."""
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{type(self).__name__}: item {len(self.layers)} is a {type(layer).__name__}, not a minidl layer"
            )
        layer._places += 1
        self.layers.append(layer)
        return self

    def named_children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


class ModuleDict(Layer):
    """``ModuleDict({"name": layer, ...})``: layers by name (children named by their keys,
    which must be identifiers: they become parts of state-dict keys)."""

    def __init__(self, layers=None):
        super().__init__()
        object.__setattr__(self, "layers", {})
        for key, layer in dict(layers or {}).items():
            self[key] = layer

    def __setitem__(self, key, layer):
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"ModuleDict: keys must be identifiers (they become state-dict keys), got {key!r}")
        if not isinstance(layer, Layer):
            raise TypeError(f"ModuleDict: {key!r} is a {type(layer).__name__}, not a minidl layer")
        old = self.layers.get(key)
        if old is not None:
            old._places -= 1
        layer._places += 1
        self.layers[key] = layer

    def named_children(self):
        return list(self.layers.items())

    def __getitem__(self, key):
        return self.layers[key]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def keys(self):
        return self.layers.keys()

    def items(self):
        return self.layers.items()

    def values(self):
        return self.layers.values()


class Sequential(ModuleList):
    """``Sequential(*layers)``: children are named ``"0"``, ``"1"``, ... as in PyTorch."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, not a minidl layer")
        super().__init__(layers)

    def _where(self, i, err):
        """Re-raise ``err`` with the position of the failing layer in front of its message."""
        return type(err)(f"Sequential[{i}] > {err}")

    def forward(self, x):
        if anomaly.enabled:
            anomaly.check(self, "forward", "input", x)
        with atomic_forward():  # a failure in layer i puts back what layers 0..i-1 changed
            for i, layer in enumerate(self.layers):
                try:
                    x = anomaly.child_forward(layer, str(i), x)
                except (ValueError, TypeError) as err:
                    raise self._where(i, err) from err
        return x

    def backward(self, dy):
        return self._backward(dy, input_grad=True)

    def backward_params(self, dy):
        """The parameter gradients, no dx. Backward stops at the first layer that trains
        (has a parameter with ``requires_grad``), which runs its own ``backward_params``:
        the layers before it have no gradient to give and no one needs their dx. A frozen
        backbone (a linear probe, tutorial 13) thus costs only its forward, as in PyTorch,
        whose autograd never enters a part of the graph that needs no gradient."""
        first = next((i for i, layer in enumerate(self.layers) if layer.trains()), len(self.layers))
        self._backward(dy, input_grad=False, first=first)
        for layer in self.layers[:first]:
            layer.skip_backward()

    def _backward(self, dy, input_grad, first=0):
        """Backward through layers ``len - 1`` down to ``first``; with ``input_grad`` False the
        layer at ``first`` runs ``backward_params`` (nothing is returned then)."""
        if anomaly.enabled:
            anomaly.check(self, "backward", "dy", dy)
        for i in range(len(self.layers) - 1, first - 1, -1):
            try:
                dy = anomaly.child_backward(self.layers[i], str(i), dy, params_only=i == first and not input_grad)
            except (ValueError, TypeError, RuntimeError) as err:
                raise self._where(i, err) from err
        return dy

    def summary_rows(self, x, name):
        rows = []
        for i, layer in enumerate(self.layers):
            child_rows, x = layer.summary_rows(x, f"{name}.{i}" if name else str(i))
            rows += child_rows
        return rows, x
