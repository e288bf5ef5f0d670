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

import contextlib

import numpy as np

from .. import anomaly, dispatch
from ..device import DEVICES, astype, device_of, is_device_array, to_device, to_host, zeros
from .checks import FLOAT_DTYPES, real_array

# While a container's forward pass runs: (layer, attribute, old value) for every buffer a
# layer replaced (batch norm's running statistics), so that a pass that fails in a later
# layer can put them back: a failed call leaves the model as it was.
_replaced_buffers = None


def replace_buffer(layer, attr, value):
    """``setattr(layer, attr, value)`` for a buffer, undone if the forward pass fails."""
    if _replaced_buffers is not None:
        _replaced_buffers.append((layer, attr, getattr(layer, attr)))
    setattr(layer, attr, value)


@contextlib.contextmanager
def atomic_forward():
    """Around a container's forward pass: if anything in it raises, every buffer replaced
    during the pass gets its old value back (the outermost container does it)."""
    global _replaced_buffers
    if _replaced_buffers is not None:  # an inner container: the outermost one undoes
        yield
        return
    _replaced_buffers = []
    try:
        yield
    except BaseException:
        for layer, attr, old in reversed(_replaced_buffers):
            setattr(layer, attr, old)
        raise
    finally:
        _replaced_buffers = None


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape, same dtype).

    ``grad`` starts at zero; layers add into it (``+=``) in ``backward`` as PyTorch does,
    and ``zero_grad()`` clears it. Assigning a new ``data`` of another shape or dtype
    (loading, ``model.to(np.float64)``) gives a fresh zero ``grad`` to match.

    Both are checked when assigned: ``data`` must be a float32/float64 array (a NumPy array
    that is not C-contiguous or not writeable is copied, since the ops update it in place),
    and ``grad`` must have ``data``'s shape, dtype and device (``p.grad = None`` resets it to
    zeros). ``name`` is the parameter's key in the state dict of the model it was last
    listed from (``model.named_parameters()`` or ``model.parameters()``), so that the
    optimizers' errors can say which parameter they mean; None before that.

    ``requires_grad`` (True by default) says whether the parameter is trained. A frozen one
    (False) accumulates no gradient and the optimizers skip it, so its ``data`` stays
    bit-identical; the layer still returns the gradient of its input, so the layers below
    keep learning (``model.requires_grad_(False)`` freezes a whole sub-network).
    """

    def __init__(self, data, requires_grad=True):
        self.name = None
        self.requires_grad = requires_grad
        self._grad = None
        self.data = data if is_device_array(data) else np.asarray(data)

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        value = _checked_array("Parameter.data", value)
        self._data = value
        grad = self._grad
        if (
            grad is None
            or grad.shape != value.shape
            or grad.dtype != value.dtype
            or device_of(grad) != device_of(value)
        ):
            self._grad = zeros(value.shape, value.dtype, like=value)

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is None:
            self._grad = zeros(self.shape, self.dtype, like=self._data)
            return
        value = _checked_array("Parameter.grad", value)
        if (tuple(value.shape), value.dtype, device_of(value)) != (tuple(self.shape), self.dtype, self.device):
            raise ValueError(
                f"Parameter.grad: expected shape {tuple(self.shape)}, dtype {self.dtype} on {self.device!r} "
                f"(the data's), got shape {tuple(value.shape)}, dtype {value.dtype} on {device_of(value)!r}"
            )
        self._grad = value

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"Parameter.requires_grad must be True or False, got {value!r}")
        self._requires_grad = bool(value)

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
        dispatch.op("fill", self._grad).fill(self._grad, 0)

    def accumulate(self, g):
        """grad += g, in place (the add op): gradients add up over backward calls. A frozen
        parameter (``requires_grad`` False) keeps its gradient as it is."""
        if not self._requires_grad:
            return
        if tuple(g.shape) != tuple(self.shape):
            raise ValueError(
                f"Parameter.accumulate: the gradient has shape {tuple(g.shape)}, the parameter {tuple(self.shape)}"
            )
        dispatch.op("add", self._grad, g).accumulate(self._grad, g)

    def __repr__(self):
        where = "" if self.device == "cpu" else f", device={self.device!r}"
        frozen = "" if self._requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{where}{frozen})"


def _checked_array(where, value):
    """``value`` as a float32/float64 array that the ops may update in place: a NumPy array
    that is not C-contiguous or is read-only is copied; a device array is taken as it is."""
    if not is_device_array(value):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where}: expected a numpy.ndarray or a CUDA device array, got {type(value).__name__}")
        if not (value.flags.c_contiguous and value.flags.writeable):
            value = np.array(value, order="C", copy=True)
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{where}: expected float32 or float64 data, got {value.dtype}")
    return value


class _Saved:
    """A layer's bookkeeping of its caches in the current pass (see ``Layer``). It is an
    object of its own, not attributes of the layer, so that keeping a cache, at every
    forward and backward call, does not run ``Layer.__setattr__`` (which counts places)."""

    __slots__ = ("entries", "next", "lost_cache", "forward_calls", "after_backward")

    def __init__(self):
        self.entries = []  # [cache, taken by a backward yet?] per forward call of this pass, newest last
        self.next = -1  # which cache the next backward takes
        self.lost_cache = False  # a cache was dropped before any backward took it, in this pass
        self.forward_calls = 0  # forward calls in this pass (since the last backward)
        self.after_backward = False  # the last call was a backward: the next forward starts a new pass


class Layer:
    """Base class of every layer, loss and container.

    Subclasses implement ``forward(x) -> y`` and ``backward(dy) -> dx``; ``backward`` also
    adds the parameter gradients into each ``Parameter.grad``. A layer with running
    statistics lists their attribute names in ``buffer_names``; a layer with parameters or
    buffers says which shapes its configuration gives them in ``state_shapes()``, and
    ``check_state()`` holds them to it before any kernel reads them.

    What backward needs from forward (the "cache") is kept with ``save_for_backward`` and
    taken back with ``saved_for_backward``: one cache per forward call, so one layer object
    may sit at several places of a network (weight sharing, as in PyTorch). Backward visits
    those places in the reverse order of forward, so each backward undoes the newest forward
    call not yet undone (last in, first out), and each place's weight gradient is added into
    the same ``.grad``. The caches of a pass are dropped when the next pass begins (the first
    forward after a backward). Within a pass a layer keeps the caches of its last
    ``max(1, places) + extra_saved`` forward calls, where places counts the containers and
    attributes that hold it, so inference without backward never piles them up; a backward
    that would need a dropped cache is an error, never a gradient from the wrong call.
    """

    buffer_names = ()
    extra_saved = 8  # caches kept beyond one per place: forward called again before backward

    def __init__(self):
        self.training = True
        self.device = "cpu"
        self._saved = _Saved()  # the caches of this pass (one object: see _Saved)
        self._places = 0  # how many containers or attributes hold this layer

    def __call__(self, *args):
        if not anomaly.enabled:
            return self.forward(*args)
        for a in args:
            if (isinstance(a, np.ndarray) or is_device_array(a)) and a.dtype in FLOAT_DTYPES:
                anomaly.check(self, "forward", "input", a)
        y = self.forward(*args)
        if not isinstance(y, float):  # a loss checks its own inputs and returns a float
            anomaly.check(self, "forward", "output", y)
        return y

    def __setattr__(self, name, value):
        """Keep count of the places a layer is put in; refuse a plain list or dict of
        layers, which ``parameters()`` and ``state_dict()`` would not see."""
        if isinstance(value, (list, tuple, dict)):
            items = value.values() if isinstance(value, dict) else value
            if any(isinstance(v, (Layer, Parameter)) for v in items):
                raise TypeError(
                    f"{type(self).__name__}.{name}: a plain {type(value).__name__} of layers or parameters is not "
                    f"registered (parameters(), state_dict() and to() would skip it); use nn.ModuleList([...]) "
                    f"or nn.ModuleDict({{...}}), nn.Sequential(...) to run layers in order, or one attribute per "
                    f"Parameter"
                )
        old = self.__dict__.get(name)
        if isinstance(old, Layer) and old is not value:
            old._places -= 1
        if isinstance(value, Layer) and old is not value:
            value._places += 1
        object.__setattr__(self, name, value)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def backward_params(self, dy):
        """``backward(dy)`` when no one needs dx: the parameter gradients are added into
        ``.grad`` as by backward, and nothing is returned. A model's input is a batch of
        images, whose gradient a training step never uses (PyTorch does not compute it
        either: the images do not require grad), so ``fit`` calls this. Conv2d,
        ConvTranspose2d and Linear skip dx's product (measured on 2 cores: 0.39 ms of a
        LeNet-5 step of 5.6 ms), ``Sequential`` passes it on to its first layer that trains
        (and runs no backward below it); any other layer runs backward and drops dx."""
        self.backward(dy)

    def trains(self):
        """True when some parameter of this layer or its children has ``requires_grad``."""
        return any(p.requires_grad for p in self.parameters())

    def skip_backward(self):
        """This layer's backward is not run in this pass (``Sequential.backward_params``
        stopped above it: nothing here or before it trains). Its caches, and its children's,
        are done with as after a backward: the next forward drops them."""
        self._saved.after_backward = True
        for _, child in self.named_children():
            child.skip_backward()

    # --- what backward needs from forward ------------------------------------------------
    def save_for_backward(self, cache):
        """Keep ``cache`` (what backward will need) for this forward call."""
        saved = self._saved
        if saved.after_backward:  # a new pass: the last one's caches are done with
            saved.entries.clear()
            saved.after_backward = saved.lost_cache = False
            saved.forward_calls = 0
        saved.forward_calls += 1
        entries = saved.entries
        entries.append([cache, False])
        while len(entries) > max(1, self._places) + self.extra_saved:
            saved.lost_cache |= not entries[0][1]
            del entries[0]
        saved.next = len(entries) - 1

    def saved_for_backward(self):
        """The cache of the forward call that this backward undoes: the newest one not
        yet taken (last in, first out; after the oldest it starts again at the newest, so
        a second backward of one forward works). If that cache was taken already while
        another one was dropped unused, the layer was called at more places in one pass
        than the containers holding it know of: an error, not a wrong gradient."""
        name = type(self).__name__
        saved = self._saved
        if not saved.entries:
            raise RuntimeError(f"{name}: backward() called before forward()")
        entry = saved.entries[saved.next]
        if entry[1] and saved.lost_cache:
            raise RuntimeError(
                f"{name}: this backward() has no forward call left to undo: forward was called {saved.forward_calls} "
                f"times since the last backward, and a layer held at {max(1, self._places)} place(s) keeps the caches "
                f"of the last {max(1, self._places) + self.extra_saved}. A layer called at many places of one pass "
                f"must sit in a container at each (nn.Sequential, nn.ModuleList), or be one layer object per place"
            )
        entry[1] = True
        saved.after_backward = True
        saved.next = (saved.next - 1) % len(saved.entries)
        return entry[0]

    @property
    def cache(self):
        """What the newest forward call saved for backward (None before any), to inspect."""
        entries = self._saved.entries
        return entries[-1][0] if entries else None

    # --- the layer's own state -----------------------------------------------------------
    def state_shapes(self):
        """``{attribute: shape}`` for each parameter and buffer, from the configuration
        (Linear: weight (out, in), bias (out,)). Layers without state return {}."""
        return {}

    def check_state(self):
        """Before a kernel reads them: each parameter and buffer named in ``state_shapes()``
        has its shape, one float dtype (the first one's) and the layer's device. A tuple
        compare per array, never a pass over the data. A None attribute (``bias=False``)
        is skipped."""
        name = type(self).__name__
        dtype = None
        for attr, shape in self.state_shapes().items():
            value = getattr(self, attr)
            if value is None and attr not in self.buffer_names:
                continue
            if attr in self.buffer_names:
                if not isinstance(value, np.ndarray) and not is_device_array(value):
                    raise TypeError(f"{name}: buffer {attr} must be an array, got {type(value).__name__}")
                array = value
            elif isinstance(value, Parameter):
                array = value.data
            else:
                raise TypeError(f"{name}: {attr} must be a minidl Parameter (or None), got {type(value).__name__}")
            if tuple(array.shape) != tuple(shape):
                raise ValueError(
                    f"{name}({self.extra_repr()}): {attr} has shape {tuple(array.shape)}, expected {tuple(shape)}"
                )
            dtype = array.dtype if dtype is None else dtype
            if array.dtype != dtype:
                raise TypeError(
                    f"{name}: {attr} has dtype {array.dtype}, the layer's other state has {dtype}; "
                    f"convert the whole layer with layer.to(np.{dtype})"
                )
            if device_of(array) != self.device:
                raise TypeError(
                    f"{name}: {attr} is on {device_of(array)!r} but the layer is on {self.device!r}; "
                    f"move the whole layer with layer.to({self.device!r})"
                )

    # --- the tree of layers -------------------------------------------------------------
    def named_children(self):
        """``(name, layer)`` for each direct sub-layer, in assignment order."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Layer)]

    def _own_parameters(self):
        """``(attribute, Parameter)`` for the parameters this layer holds itself."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Parameter)]

    def _named_state(self, prefix, seen):
        """``(key, owner, attribute, is_parameter)`` for every parameter and buffer, in
        PyTorch's order (each layer's parameters, then its buffers, then its children's);
        a layer or parameter met a second time (shared) is listed once, at its first key."""
        if id(self) in seen:
            return []
        seen.add(id(self))
        entries = []
        for attr, p in self._own_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                entries.append((prefix + attr, self, attr, True))
        entries += [(prefix + attr, self, attr, False) for attr in self.buffer_names]
        for child_name, child in self.named_children():
            entries += child._named_state(f"{prefix}{child_name}.", seen)
        return entries

    def named_parameters(self, prefix=""):
        """``(key, Parameter)`` pairs: this layer's own, then each child's, in order; a
        shared parameter once. Sets each parameter's ``name`` to its key."""
        pairs = [
            (key, getattr(owner, attr)) for key, owner, attr, is_param in self._named_state(prefix, set()) if is_param
        ]
        for key, p in pairs:
            p.name = key
        return pairs

    def parameters(self):
        """All Parameters in layer order, weight before bias, each once."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """``(key, owner, attribute)`` for each buffer, e.g. BatchNorm's running statistics."""
        return [(key, owner, attr) for key, owner, attr, is_param in self._named_state(prefix, set()) if not is_param]

    # --- modes and gradients ------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) every parameter of this layer and its children,
        as PyTorch's ``Module.requires_grad_``; returns the layer. A frozen parameter gets no
        gradient and no update; gradients still flow through the layer to its input."""
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}.requires_grad_: expected True or False, got {requires_grad!r}")
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

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
        ("1.weight", "1.bias", "1.running_mean", "1.running_var", "2.weight", ...). A
        shared layer or parameter appears once, under its first key."""
        state = {}
        for key, owner, attr, is_param in self._named_state(prefix, set()):
            value = getattr(owner, attr)
            state[key] = np.array(to_host(value.data if is_param else value), copy=True)
        return state

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into the parameters and buffers.

        Every key, shape and value is checked before anything is written (``checked_state``),
        so a failed load leaves the model exactly as it was. Values keep the model's dtype
        and go to the model's device.
        """
        self.checked_state(state)()
        return self

    def checked_state(self, state):
        """Check ``state`` against the model without writing anything: the same keys, each
        value a real numeric array of the expected shape whose values are finite in the
        model's dtype. Returns a function that writes the values (converted to the model's
        dtype, on its device) into the model. Raises KeyError for missing or
        unexpected keys, TypeError for a value that is not real numbers, ValueError for a
        shape or a NaN/inf, each naming the key."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{name}: expected a dict of arrays (from state_dict()), got {type(state).__name__}")
        entries = self._named_state("", set())
        keys = [key for key, *_ in entries]
        missing = [k for k in keys if k not in state]
        known = set(keys)
        unexpected = [k for k in state if k not in known]
        if missing or unexpected:
            raise KeyError(f"{name}: missing keys {missing}, unexpected keys {unexpected}")
        checked = []
        for key, owner, attr, is_param in entries:
            current = getattr(owner, attr).data if is_param else getattr(owner, attr)
            value = real_array(name, key, state[key], current.shape, current.dtype)
            checked.append((owner, attr, is_param, to_device(value, device_of(current))))

        def apply():
            for owner, attr, is_param, value in checked:
                if is_param:
                    getattr(owner, attr).data = value
                else:
                    setattr(owner, attr, value)

        return apply

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
        table = [header] + [(name, desc, str((-1,) + tuple(shape[1:])), f"{n:,}") for name, desc, shape, n in rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        rule = "-" * (sum(widths) + 6)
        lines = [rule]
        for i, row in enumerate(table):
            lines.append(
                "  ".join(cell.ljust(w) if j < 3 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths)))
            )
            if i == 0:
                lines.append(rule)
        total = sum(p.size for p in self.parameters())
        lines += [rule, f"Total params: {total:,}", rule]
        print("\n".join(lines))
        return total
