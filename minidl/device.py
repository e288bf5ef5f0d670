"""Where an array lives: in host memory (a NumPy array) or on a CUDA GPU (a Numba device
array, ``numba.cuda.to_device``). Two targets, one seam (see CONTRIBUTING.md):

    device_of(a)          "cpu" or "cuda"
    to_device(a, device)  the same values on the other side (idempotent; "cpu" gives NumPy)
    empty / zeros         a new array on the device of ``like``: the one allocation helper
                          that every op of both targets uses, since a CUDA kernel cannot
                          allocate and so every kernel takes its outputs as arguments

numba.cuda is imported only when a device array is asked for, so ``import minidl`` never
needs the ``numba-cuda`` package.
"""

import sys

import numpy as np

DEVICES = ("cpu", "cuda")


def _numba_cuda():
    """``numba.cuda``, imported on first use, with a clear error when it is not installed."""
    try:
        from numba import cuda
    except ImportError as err:  # pragma: no cover - depends on the numba build
        raise ImportError("minidl's CUDA target needs NVIDIA's numba-cuda package: pip install -e '.[cuda]'") from err
    return cuda


def is_device_array(a):
    """True for a CUDA device array: anything exposing ``__cuda_array_interface__``, or the
    CUDA simulator's stand-in for one (``NUMBA_ENABLE_CUDASIM=1``)."""
    if hasattr(a, "__cuda_array_interface__"):
        return True
    cuda = sys.modules.get("numba.cuda")  # not imported: no device array can exist
    return cuda is not None and cuda.devicearray.is_cuda_ndarray(a)


def device_of(a):
    """``"cuda"`` for a device array, ``"cpu"`` for anything else (NumPy arrays, lists)."""
    return "cuda" if is_device_array(a) else "cpu"


def as_ncl(a):
    """The C-contiguous array a (N, C) or (N, C, H, W) viewed as (N, C, L), L = H * W (or 1):
    channel c holds the N * L values a[:, c, :]. A view on both kinds of array; the
    per-channel ops (bias, batch norm, concat, softmax over classes) all work on it."""
    N, C = a.shape[0], a.shape[1]
    return a.reshape(N, C, a.size // max(N * C, 1))


def to_device(a, device):
    """``a`` on ``device``: a NumPy array for "cpu", a Numba device array for "cuda".

    Idempotent: an array already there is returned as it is (no copy).
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"to_device: device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cpu":
        return a.copy_to_host() if is_device_array(a) else np.asarray(a)
    if is_device_array(a):
        return a
    return _numba_cuda().to_device(np.ascontiguousarray(a))


def to_host(a):
    """``to_device(a, "cpu")``: what every value returned to the user for inspection is."""
    return to_device(a, "cpu")


def empty(shape, dtype, like):
    """An uninitialised array of ``shape`` and ``dtype`` on the device of the array ``like``."""
    if is_device_array(like):
        return _numba_cuda().device_array(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype, like):
    """An array of zeros on the device of ``like`` (on the GPU: ``empty`` + the fill op)."""
    if not is_device_array(like):
        return np.zeros(shape, dtype=dtype)
    from .cuda import fill  # the GPU twin of ops/fill.py

    out = empty(shape, dtype, like)
    fill.fill(out, 0)
    return out


def astype(a, dtype):
    """``a`` converted to ``dtype`` on its own device (a copy; the same array if it already
    has that dtype). On the GPU the conversion goes through host memory: it is a one-off
    (``model.to(np.float64)``), not part of a training step."""
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    if is_device_array(a):
        return to_device(a.copy_to_host().astype(dtype), "cuda")
    return a.astype(dtype)


def as_array_like(a, like, dtype=None):
    """``a`` (data: a target, labels) on the device of ``like``, C-contiguous, and with
    ``dtype`` when given. Targets and labels may be handed over from either side."""
    device = device_of(like)
    if dtype is not None and getattr(a, "dtype", None) != np.dtype(dtype):
        a = to_host(a).astype(dtype) if is_device_array(a) else np.asarray(a, dtype=dtype)
    if device == "cpu":
        return np.ascontiguousarray(to_host(a))
    return to_device(a, "cuda")
