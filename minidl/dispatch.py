"""The dispatch seam: layers find their op implementation here, never by direct import.

``op("conv2d", x, w, b)`` returns the module that implements the op for where the arrays
of the call live:

- NumPy arrays (host memory)  -> ``minidl.ops.conv2d``  (Numba CPU kernels)
- CUDA device arrays           -> ``minidl.cuda.conv2d`` (numba.cuda kernels)

Every array of the call is looked at (the input and the parameters), and a call that mixes
the two is refused: a host input would otherwise reach a CPU kernel with device weights.
Both modules export the same functions with the same signatures (tests/ops/test_protocol.py
checks it), so a layer never knows which target it runs on. Modules are imported once and
memoised.
"""

import importlib

from .device import device_of as _device_of_one

_modules = {}


def device_of(*arrays):
    """The one device that all the (non-None) ``arrays`` live on, "cpu" or "cuda".

    Raises ValueError when some are on the CPU and others on the GPU.
    """
    devices = {_device_of_one(a) for a in arrays if a is not None}
    if len(devices) > 1:
        where = ", ".join(f"argument {i}: {_device_of_one(a)}" for i, a in enumerate(arrays) if a is not None)
        raise ValueError(f"arrays on different devices ({where}); move them with minidl.to_device(a, device)")
    return devices.pop() if devices else "cpu"


def op(name, *arrays):
    """The module implementing op ``name`` for the device that all ``arrays`` live on."""
    try:
        device = device_of(*arrays)
    except ValueError as err:
        raise ValueError(f"op {name!r}: {err}") from None
    key = (device, name)
    module = _modules.get(key)
    if module is None:
        package = "minidl.ops" if device == "cpu" else "minidl.cuda"
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if device == "cpu" or not err.name or not err.name.startswith("minidl.cuda"):
                raise
            raise NotImplementedError(
                f"op {name!r} has no CUDA implementation (expected module {package}.{name})"
            ) from err
        _modules[key] = module
    return module
