"""Graduating: the same network, with the same weights and the same outputs, in PyTorch and
in ONNX.

    torch_model = to_torch(model)                  # a torch.nn.Sequential, same weights
    model = from_torch(torch_model)                # and back (a Sequential of supported layers)
    to_onnx(model, "model.onnx", (1, 1, 28, 28))   # an ONNX graph, for onnxruntime and friends

minidl's layers carry PyTorch's names, arguments and state-dict keys on purpose, so the
conversion is a table: each minidl layer class has one PyTorch class with the same
arguments, and the weights go across key by key ("0.weight", "3.running_mean"). PyTorch
has no residual or concatenating skip layer (a PyTorch model writes ``x + f(x)`` in its
own ``forward``), so ``Residual`` and ``Concat`` become the two small modules
``torch_skip_modules()`` defines, and come back from them.

ONNX (Open Neural Network Exchange) describes a network as a graph of standard operators
(``Conv``, ``Gemm``, ``Relu``, ...) whose weights are stored in the file; runtimes such as
onnxruntime, TensorRT or a browser's run it without Python. ``to_onnx`` builds that graph
with the ``onnx`` package's helpers, one node (or two) per layer, for inference: dropout is
the identity and batch norm uses its running statistics, as in ``model.eval()``.

Both libraries are optional: ``pip install -e ".[torch]"`` or ``".[onnx]"``.
"""

import numpy as np

from . import nn
from .device import to_host
from .nn.checks import FLOAT_DTYPES


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("minidl.interop needs PyTorch: pip install -e '.[torch]' (or torch==2.13.0)") from None
    return torch


def torch_skip_modules():
    """The PyTorch twins of ``nn.Residual`` and ``nn.Concat``: ``(Residual, Concat)``, two
    ``torch.nn.Module`` classes holding ``inner`` (so the state-dict keys match)."""
    global _SKIP
    if _SKIP is None:
        torch = _torch()

        class Residual(torch.nn.Module):
            """y = x + inner(x)"""

            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return x + self.inner(x)

        class Concat(torch.nn.Module):
            """y = [x ; inner(x)] along the channels"""

            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return torch.cat([x, self.inner(x)], dim=1)

        _SKIP = (Residual, Concat)
    return _SKIP


_SKIP = None


# --- minidl -> PyTorch ------------------------------------------------------------------------


def to_torch(model):
    """A ``torch.nn.Module`` computing what ``model`` computes, with a copy of its weights and
    running statistics, in its dtype (float32 or float64) and training mode, on the CPU.

    ``nn.Sequential`` becomes ``torch.nn.Sequential``, each layer its PyTorch namesake;
    a layer without one (a loss, a model class of one's own) is a ``ValueError`` naming it.
    """
    torch = _torch()
    module = _torch_layer(torch, model, "model")
    state = model.state_dict()
    dtype = next((v.dtype for v in state.values()), np.dtype(np.float32))
    module.to(torch.float64 if dtype == np.float64 else torch.float32)
    missing, unexpected = module.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False
    )
    if unexpected or any(not key.endswith("num_batches_tracked") for key in missing):
        raise RuntimeError(f"to_torch: the state dicts do not match: missing {missing}, unexpected {unexpected}")
    return module.train(model.training)


def _torch_layer(torch, layer, where):
    """The PyTorch module for one minidl layer (containers recursively)."""
    T = torch.nn
    if isinstance(layer, nn.Sequential):
        return T.Sequential(*[_torch_layer(torch, child, f"{where}[{i}]") for i, child in enumerate(layer)])
    if isinstance(layer, (nn.Residual, nn.Concat)):
        Residual, Concat = torch_skip_modules()
        skip = Residual if isinstance(layer, nn.Residual) else Concat
        return skip(_torch_layer(torch, layer.inner, f"{where}.inner"))
    if isinstance(layer, nn.Linear):
        return T.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        if isinstance(layer, nn.ConvTranspose2d):
            kind, extra = T.ConvTranspose2d, {"output_padding": layer.output_padding}
        else:
            kind, extra = T.Conv2d, {}
        geometry = (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
        return kind(*geometry, bias=layer.bias is not None, **extra)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        kind = T.BatchNorm1d if isinstance(layer, nn.BatchNorm1d) else T.BatchNorm2d
        return kind(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = T.MaxPool2d if isinstance(layer, nn.MaxPool2d) else T.AvgPool2d
        return kind(layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, nn.LeakyReLU):
        return T.LeakyReLU(layer.negative_slope)
    if isinstance(layer, nn.Dropout):
        return T.Dropout(layer.p)
    if isinstance(layer, nn.Unflatten):
        return T.Unflatten(layer.dim, layer.unflattened_size)
    if isinstance(layer, nn.Upsample):
        return T.Upsample(scale_factor=layer.scale_factor, mode=layer.mode)
    for ours, theirs in ((nn.ReLU, T.ReLU), (nn.Sigmoid, T.Sigmoid), (nn.Tanh, T.Tanh), (nn.Flatten, T.Flatten)):
        if type(layer) is ours:
            return theirs()
    raise ValueError(
        f"to_torch: {where} is a {type(layer).__name__}, which has no PyTorch counterpart here "
        f"(supported: {', '.join(SUPPORTED)})"
    )


SUPPORTED = (
    "Sequential Linear Conv2d ConvTranspose2d BatchNorm1d BatchNorm2d MaxPool2d AvgPool2d ReLU LeakyReLU "
    "Sigmoid Tanh Dropout Flatten Unflatten Upsample Residual Concat"
).split()


# --- PyTorch -> minidl ------------------------------------------------------------------------


def from_torch(module):
    """The minidl model of a PyTorch ``Sequential`` (nested ones too) of the layers minidl
    has, with their weights and running statistics, in the module's dtype and training
    mode. ``num_batches_tracked`` (which minidl does not keep) is dropped. A layer minidl
    does not have, or a setting it does not implement (dilation, groups, ceil_mode, ...),
    is a ``ValueError`` naming the layer."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    model = _minidl_layer(torch, module, "module")
    tensors = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    dtypes = {v.dtype for v in tensors.values()}
    if dtypes - {torch.float32, torch.float64} or len(dtypes) > 1:
        raise TypeError(
            f"from_torch: the module's parameters must all be float32 or all float64, got {sorted(map(str, dtypes))}"
        )
    if torch.float64 in dtypes:
        model.to(np.float64)
    model.load_state_dict({k: v.detach().cpu().numpy() for k, v in tensors.items()})
    return model.train(module.training)


def _refuse(where, module, setting):
    raise ValueError(f"from_torch: {where} ({type(module).__name__}) has {setting}, which minidl does not implement")


def _minidl_layer(torch, m, where):
    """The minidl layer for one PyTorch module (Sequential recursively)."""
    T = torch.nn
    Residual, Concat = torch_skip_modules()
    if isinstance(m, T.Sequential):
        return nn.Sequential(*[_minidl_layer(torch, child, f"{where}[{i}]") for i, child in enumerate(m)])
    if isinstance(m, (Residual, Concat)):
        skip = nn.Residual if isinstance(m, Residual) else nn.Concat
        return skip(_minidl_layer(torch, m.inner, f"{where}.inner"))
    if type(m) is T.Linear:
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if type(m) in (T.Conv2d, T.ConvTranspose2d):
        for setting, value, plain in (
            ("dilation", m.dilation, (1, 1)),
            ("groups", m.groups, 1),
            ("padding_mode", m.padding_mode, "zeros"),
        ):
            if value != plain:
                _refuse(where, m, f"{setting}={value!r}")
        if isinstance(m.padding, str):
            _refuse(where, m, f"padding={m.padding!r} (give the padding as numbers)")
        if type(m) is T.Conv2d:
            return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=m.bias is not None)
        return nn.ConvTranspose2d(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding, bias=m.bias is not None
        )
    if type(m) in (T.BatchNorm1d, T.BatchNorm2d):
        if not m.affine or not m.track_running_stats or m.momentum is None:
            _refuse(where, m, "affine=False, track_running_stats=False or momentum=None")
        kind = nn.BatchNorm1d if type(m) is T.BatchNorm1d else nn.BatchNorm2d
        return kind(m.num_features, eps=m.eps, momentum=m.momentum)
    if type(m) is T.MaxPool2d:
        if m.dilation not in (1, (1, 1)) or m.ceil_mode or m.return_indices:
            _refuse(where, m, "dilation, ceil_mode or return_indices")
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding)
    if type(m) is T.AvgPool2d:
        if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
            _refuse(where, m, "ceil_mode, count_include_pad=False or divisor_override")
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding)
    if type(m) is T.Flatten:
        if (m.start_dim, m.end_dim) != (1, -1):
            _refuse(where, m, f"start_dim={m.start_dim}, end_dim={m.end_dim} (minidl flattens from dim 1 to the end)")
        return nn.Flatten()
    if type(m) is T.Unflatten:
        return nn.Unflatten(m.dim, tuple(m.unflattened_size))
    if type(m) is T.Upsample:
        if m.size is not None or m.mode != "nearest":
            _refuse(where, m, f"size={m.size}, mode={m.mode!r} (minidl upsamples by integer scale factors, nearest)")
        return nn.Upsample(tuple(int(s) for s in np.broadcast_to(m.scale_factor, 2)), mode="nearest")
    if type(m) is T.LeakyReLU:
        return nn.LeakyReLU(m.negative_slope)
    if type(m) is T.Dropout:
        return nn.Dropout(m.p)
    for theirs, ours in ((T.ReLU, nn.ReLU), (T.Sigmoid, nn.Sigmoid), (T.Tanh, nn.Tanh)):
        if type(m) is theirs:
            return ours()
    raise ValueError(
        f"from_torch: {where} is a torch.nn.{type(m).__name__}, which minidl does not have "
        f"(supported: {', '.join(SUPPORTED)}; a model class of your own: rebuild it from these)"
    )


# --- minidl -> ONNX ---------------------------------------------------------------------------


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("minidl.interop.to_onnx needs the onnx package: pip install -e '.[onnx]'") from None
    return onnx


OPSET = 17


def to_onnx(model, path, input_shape):
    """Write ``model`` (as in eval mode) to ``path`` as an ONNX graph; returns ``path``.

    ``input_shape`` is one input's shape with its batch size, e.g. (1, 1, 28, 28); in the
    file the batch axis is the symbol "N", so any batch size runs. The graph has one input
    "x" and one output "y"; the weights are stored in it as initializers. The graph is
    checked with ``onnx.checker`` before it is written. The tensors have the model's dtype;
    onnxruntime's CPU provider has no float64 convolution, so export a convolutional
    network as float32 (``model.to(np.float32)``) to run it there.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    state = model.state_dict()
    dtype = next((v.dtype for v in state.values()), np.dtype(np.float32))
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"to_onnx: the model's dtype must be float32 or float64, got {dtype}")
    graph = _OnnxGraph(helper, numpy_helper, dtype)
    y = graph.layer(model, "x", "model")
    graph.nodes.append(helper.make_node("Identity", [y], ["y"]))
    input_shape = tuple(int(d) for d in input_shape)
    was_training = model.training
    model.eval()
    try:
        output_shape = to_host(model(np.zeros(input_shape, dtype))).shape  # and input_shape fits the model
    finally:
        model.train(was_training)
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    model_proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "minidl",
            [helper.make_tensor_value_info("x", elem, ["N", *input_shape[1:]])],
            [helper.make_tensor_value_info("y", elem, ["N", *output_shape[1:]])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="minidl",
    )
    onnx.checker.check_model(model_proto, full_check=True)
    onnx.save(model_proto, str(path))
    return path


class _OnnxGraph:
    """The nodes and initializers (weights) of the graph being built; ``layer`` adds one
    layer's nodes and returns the name of its output."""

    def __init__(self, helper, numpy_helper, dtype):
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, hint, value, dtype=None):
        """An initializer holding ``value``; returns its name."""
        name = self.name(hint)
        array = np.asarray(to_host(value) if not isinstance(value, (list, tuple)) else value, dtype=dtype or self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, **attributes):
        out = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out

    def layer(self, layer, x, where):
        if isinstance(layer, nn.Sequential):
            for i, child in enumerate(layer):
                x = self.layer(child, x, f"{where}[{i}]")
            return x
        if isinstance(layer, nn.Residual):
            return self.node("Add", [x, self.layer(layer.inner, x, f"{where}.inner")])
        if isinstance(layer, nn.Concat):
            return self.node("Concat", [x, self.layer(layer.inner, x, f"{where}.inner")], axis=1)
        params = [
            self.constant("w", p.data)
            for p in (getattr(layer, "weight", None), getattr(layer, "bias", None))
            if p is not None
        ]
        if isinstance(layer, nn.Linear):
            return self.node("Gemm", [x, *params], transB=1)
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            (ph, pw), geometry = layer.padding, {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}
            if isinstance(layer, nn.ConvTranspose2d):
                geometry["output_padding"] = list(layer.output_padding)
                return self.node("ConvTranspose", [x, *params], pads=[ph, pw, ph, pw], **geometry)
            return self.node("Conv", [x, *params], pads=[ph, pw, ph, pw], **geometry)
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            stats = [self.constant("mean", layer.running_mean), self.constant("var", layer.running_var)]
            return self.node("BatchNormalization", [x, *params, *stats], epsilon=layer.eps)
        if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            (ph, pw), geometry = layer.padding, {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}
            if isinstance(layer, nn.MaxPool2d):
                return self.node("MaxPool", [x], pads=[ph, pw, ph, pw], **geometry)
            return self.node("AveragePool", [x], pads=[ph, pw, ph, pw], count_include_pad=1, **geometry)
        if isinstance(layer, nn.LeakyReLU):
            return self.node("LeakyRelu", [x], alpha=float(layer.negative_slope))
        if isinstance(layer, nn.Flatten):
            return self.node("Flatten", [x], axis=1)
        if isinstance(layer, nn.Unflatten):
            if layer.dim != 1:
                raise ValueError(f"to_onnx: {where} (Unflatten) must unflatten dim 1, got dim={layer.dim}")
            shape = self.constant("shape", [0, *layer.unflattened_size], np.int64)  # 0: keep N
            return self.node("Reshape", [x, shape])
        if isinstance(layer, nn.Upsample):
            scales = self.constant("scales", [1.0, 1.0, *layer.scale_factor], np.float32)
            return self.node(
                "Resize",
                [x, "", scales],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
        simple = {nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.Dropout: "Identity"}
        if type(layer) in simple:
            return self.node(simple[type(layer)], [x])
        raise ValueError(
            f"to_onnx: {where} is a {type(layer).__name__}, which has no ONNX operator here "
            f"(supported: {', '.join(SUPPORTED)})"
        )
