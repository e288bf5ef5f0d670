"""The dispatch seam: layers find their op implementation here, never by direct import.

``op("conv2d", x)`` returns the module that implements the op for where ``x`` lives:

- NumPy arrays (host memory)  -> ``minidl.ops.conv2d``  (Numba CPU kernels)
- CUDA device arrays           -> ``minidl.cuda.conv2d`` (numba.cuda kernels)

An array "lives on the GPU" when it exposes ``__cuda_array_interface__`` (Numba device
arrays, CuPy arrays, ...). Both modules have the same function names and signatures, so
adding a GPU target is adding one module per op under ``minidl/cuda/``, with no change to
any layer. Modules are imported once and memoised.
"""
import importlib

_modules = {}


def device_of(*arrays):
    """``"cuda"`` if any array lives on a CUDA device, else ``"cpu"``."""
    for a in arrays:
        if a is not None and hasattr(a, "__cuda_array_interface__"):
            return "cuda"
    return "cpu"


def op(name, *arrays):
    """The module implementing op ``name`` for the device that ``arrays`` live on."""
    device = device_of(*arrays)
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
