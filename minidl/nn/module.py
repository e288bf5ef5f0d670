"""``Parameter`` and ``Layer``: the state that the op functions in ``minidl.ops`` do not hold.

A layer owns its parameters and whatever its backward needs from its forward (the
"cache"). It never computes anything itself: ``forward`` and ``backward`` call the op
module that ``minidl.dispatch.op`` picks for the arrays' device.

Parameters, child layers and buffers are found by looking at the layer's attributes in
the order they were assigned, so ``self.weight = Parameter(...)`` before
``self.bias = Parameter(...)`` is what puts the weight first in ``parameters()`` and in
``state_dict()`` (PyTorch's order and keys: ``"0.weight"``, ``"3.running_mean"``).

Devices. ``model.to("cuda")`` moves every parameter, gradient and buffer to the GPU and
marks every layer's ``device``; a layer then takes and returns device arrays and refuses a
host array with a clear error (and the reverse). ``state_dict()`` always holds host NumPy
arrays; ``load_state_dict`` puts the values where the model is.
"""
import numpy as np

from .. import dispatch
from ..device import DEVICES, astype, device_of, is_device_array, to_device, to_host, zeros

FLOAT_DTYPES = (np.float32, np.float64)


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape, same dtype).

    ``grad`` starts at zero; layers add into it (``+=``) in ``backward`` as PyTorch does,
    and ``zero_grad()`` clears it. Assigning a new ``data`` of another shape or dtype
    (loading, ``model.to(np.float64)``) gives a fresh zero ``grad`` to match.
    """

    def __init__(self, data):
        data = data if is_device_array(data) else np.asarray(data)
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Parameter: expected float32 or float64 data, got {data.dtype}")
        self.grad = None
        self.data = data

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        self._data = value
        if (self.grad is None or self.grad.shape != value.shape or self.grad.dtype != value.dtype
                or device_of(self.grad) != device_of(value)):
            self.grad = zeros(value.shape, value.dtype, like=value)

    @property
    def device(self):
        """Where ``data`` lives: "cpu" or "cuda"."""
        return device_of(self._data)

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return self._data.size

    def zero_grad(self):
        """grad = 0, in place (the fill op)."""
        dispatch.op("fill", self.grad).fill(self.grad, 0)

    def accumulate(self, g):
        """grad += g, in place (the add op): gradients add up over backward calls."""
        dispatch.op("add", self.grad, g).accumulate(self.grad, g)

    def __repr__(self):
        where = "" if self.device == "cpu" else f", device={self.device!r}"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{where})"


class Layer:
    """Base class of every layer, loss and container.

    Subclasses implement ``forward(x) -> y`` and ``backward(dy) -> dx``; ``backward`` also
    adds the parameter gradients into each ``Parameter.grad``. A layer with running
    statistics lists their attribute names in ``buffer_names``.
    """

    buffer_names = ()

    def __init__(self):
        self.training = True
        self.device = "cpu"

    def __call__(self, *args):
        return self.forward(*args)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    # --- the tree of layers -------------------------------------------------------------
    def named_children(self):
        """``(name, layer)`` for each direct sub-layer, in assignment order."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Layer)]

    def named_parameters(self, prefix=""):
        """``(key, Parameter)`` pairs: this layer's own, then each child's, in order."""
        pairs = [(prefix + k, v) for k, v in vars(self).items() if isinstance(v, Parameter)]
        for name, child in self.named_children():
            pairs += child.named_parameters(f"{prefix}{name}.")
        return pairs

    def parameters(self):
        """All Parameters in layer order, weight before bias."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """``(key, owner, attribute)`` for each buffer, e.g. BatchNorm's running statistics."""
        triples = [(prefix + name, self, name) for name in self.buffer_names]
        for name, child in self.named_children():
            triples += child.named_buffers(f"{prefix}{name}.")
        return triples

    # --- modes and gradients ------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout drops, batch norm uses batch statistics). Returns self."""
        self.training = bool(mode)
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``. Returns self."""
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    # --- state ----------------------------------------------------------------------------
    def state_dict(self, *, prefix=""):
        """A dict of copies of every parameter and buffer, with PyTorch-style keys, in
        PyTorch's order: each layer's parameters, then its buffers, then its children's
        ("1.weight", "1.bias", "1.running_mean", "1.running_var", "2.weight", ...)."""
        state = {prefix + k: np.array(to_host(v.data), copy=True) for k, v in vars(self).items()
                 if isinstance(v, Parameter)}
        for name in self.buffer_names:
            state[prefix + name] = np.array(to_host(getattr(self, name)), copy=True)
        for name, child in self.named_children():
            state.update(child.state_dict(prefix=f"{prefix}{name}."))
        return state

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into the parameters and buffers.

        Every key, shape and value is checked before anything is written, so a failed
        load leaves the model exactly as it was. Values keep the model's dtype and go to
        the model's device.
        """
        name = type(self).__name__
        targets = {key: ("param", p) for key, p in self.named_parameters()}
        targets.update({key: ("buffer", (owner, attr)) for key, owner, attr in self.named_buffers()})
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if missing or unexpected:
            raise KeyError(f"{name}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        new_values = {}
        for key, (kind, target) in targets.items():
            value = to_host(state[key])
            current = target.data if kind == "param" else getattr(*target)
            if value.shape != tuple(current.shape):
                raise ValueError(
                    f"{name}.load_state_dict: {key!r} has shape {value.shape}, the model expects {current.shape}"
                )
            if not np.issubdtype(value.dtype, np.number):
                raise TypeError(f"{name}.load_state_dict: {key!r} is not numeric (dtype {value.dtype})")
            new_values[key] = to_device(value.astype(current.dtype, copy=True), device_of(current))
        for key, (kind, target) in targets.items():
            if kind == "param":
                target.data = new_values[key]
            else:
                setattr(target[0], target[1], new_values[key])
        return self

    def to(self, target):
        """Move parameters, gradients and buffers to a device (``"cpu"``, ``"cuda"``), or
        convert them to a float dtype (``np.float64``, ``"float32"``). Returns self.

        Gradient checks run a model in float64 with ``model.to(np.float64)``;
        ``model.to("cuda")`` needs numba-cuda and a GPU (or the simulator, see
        ``minidl.cuda.is_available()``). Moving keeps the gradients' values.
        """
        name = type(self).__name__
        if isinstance(target, str) and target in DEVICES:
            if target == "cuda":
                from .. import cuda

                if not cuda.is_available():
                    raise RuntimeError(
                        f"{name}.to('cuda'): no CUDA device: minidl.cuda.is_available() is False (install the "
                        f"extra with pip install -e '.[cuda]' on a machine with an NVIDIA GPU, or set "
                        f"NUMBA_ENABLE_CUDASIM=1 to run the kernels in the CUDA simulator)"
                    )
            for p in self.parameters():
                grad = to_device(p.grad, target)
                p.data = to_device(p.data, target)
                p.grad = grad
            for _, owner, attr in self.named_buffers():
                setattr(owner, attr, to_device(getattr(owner, attr), target))
            self._set_device(target)
            return self
        try:
            dtype = np.dtype(target)
        except TypeError:
            raise TypeError(f"{name}.to: expected 'cpu', 'cuda' or a float dtype, got {target!r}") from None
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}.to: expected float32 or float64, got {dtype}")
        for p in self.parameters():
            p.data = astype(p.data, dtype)
        for _, owner, attr in self.named_buffers():
            setattr(owner, attr, astype(getattr(owner, attr), dtype))
        return self

    def _set_device(self, device):
        self.device = device
        for _, child in self.named_children():
            child._set_device(device)

    # --- description ------------------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown inside ``Layer(...)``; layers override it."""
        return ""

    def __repr__(self):
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)

    def summary_rows(self, x, name):
        """Run ``x`` through this layer; return ``(rows, y)`` with one row per leaf layer.

        A row is ``(name, description, output shape, parameter count)``; ``name`` is the
        layer's state-dict prefix ("" at the top). Containers override this to list
        their children.
        """
        y = self.forward(x)
        n_params = sum(p.size for p in self.parameters())
        return [(name or "-", f"{type(self).__name__}({self.extra_repr()})", y.shape, n_params)], y

    def summary(self, input_shape, dtype=np.float32):
        """Print each layer's output shape and parameter count; return the total count.

        ``input_shape`` excludes the batch dimension, e.g. ``(1, 28, 28)``; a batch of one
        zero image is pushed through in evaluation mode (the mode is restored after).
        """
        was_training = self.training
        self.eval()
        try:
            x = to_device(np.zeros((1, *input_shape), dtype=dtype), self.device)
            rows, _ = self.summary_rows(x, "")
        finally:
            self.train(was_training)
        header = ("Layer", "Type", "Output shape", "Params")
        table = [header] + [
            (name, desc, str((-1,) + tuple(shape[1:])), f"{n:,}") for name, desc, shape, n in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        rule = "-" * (sum(widths) + 6)
        lines = [rule]
        for i, row in enumerate(table):
            lines.append("  ".join(cell.ljust(w) if j < 3 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
            if i == 0:
                lines.append(rule)
        total = sum(p.size for p in self.parameters())
        lines += [rule, f"Total params: {total:,}", rule]
        print("\n".join(lines))
        return total
