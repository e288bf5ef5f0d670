"""Containers: the whole graph of a minidl model.

``Sequential`` applies its layers in order and backpropagates in reverse:

    forward:  y = f_L(... f_2(f_1(x)))
    backward: dx = J_1^T (J_2^T (... J_L^T dy))     (each layer's backward is one J_l^T)
"""
from .module import Layer


class Sequential(Layer):
    """``Sequential(*layers)``: children are named ``"0"``, ``"1"``, ... as in PyTorch."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, not a minidl layer")
        self.layers = list(layers)

    def named_children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def _where(self, i, err):
        """Re-raise ``err`` with the position of the failing layer in front of its message."""
        return type(err)(f"Sequential[{i}] > {err}")

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError) as err:
                raise self._where(i, err) from err
        return x

    def backward(self, dy):
        for i in range(len(self.layers) - 1, -1, -1):
            try:
                dy = self.layers[i].backward(dy)
            except (ValueError, TypeError, RuntimeError) as err:
                raise self._where(i, err) from err
        return dy

    def summary_rows(self, x, name):
        rows = []
        for i, layer in enumerate(self.layers):
            child_rows, x = layer.summary_rows(x, f"{name}.{i}" if name else str(i))
            rows += child_rows
        return rows, x
