"""Input checks shared by every layer: a clear error naming the layer, the expected and
the actual shape or dtype, before anything reaches a Numba kernel (where a wrong dtype
would surface as an unreadable typing error)."""

import math
import numbers

import numpy as np

from ..device import device_of, is_device_array, to_host

FLOAT_DTYPES = (np.float32, np.float64)  # the dtypes of parameters, inputs and gradients


def check_float_array(layer, x, name="input", device=None):
    """``x`` must be a float32/float64 NumPy array or CUDA device array, and live on
    ``device`` ("cpu" or "cuda": where the layer is) when that is given."""
    if not isinstance(x, np.ndarray) and not is_device_array(x):
        raise TypeError(f"{layer}: expected the {name} to be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: expected the {name} to have dtype float32 or float64, got {x.dtype}")
    if device is not None and device_of(x) != device:
        hint = (
            f"minidl.to_device(x, {device!r})" if name == "input" else f"move it with minidl.to_device(..., {device!r})"
        )
        raise TypeError(
            f"{layer}: the {name} is on {device_of(x)!r} but the layer is on {device!r}; {hint} "
            f"(or move the model with model.to({device_of(x)!r}))"
        )


def check_ndim(layer, x, ndims, layout, name="input"):
    """``x.ndim`` must be one of ``ndims``; ``layout`` names the axes, e.g. ``"(N, C, H, W)"``."""
    if x.ndim not in ndims:
        raise ValueError(
            f"{layer}: expected a {'/'.join(map(str, ndims))}-D {name} {layout}, got shape {tuple(x.shape)}"
        )


def check_batch_axis(layer, x, name="input"):
    """Layers of any input shape still need the batch axis (N, ...): a 0-d array is refused
    (the ops flatten their input, and would hand back a (1,) array for a () one)."""
    if x.ndim == 0:
        raise ValueError(f"{layer}: expected the {name} to have a batch axis (N, ...), got a 0-d array")


def check_same_dtype(layer, x, param, name="weight"):
    """The input's dtype must be the parameter's: minidl never casts silently."""
    if x.dtype != param.dtype:
        raise TypeError(
            f"{layer}: input dtype {x.dtype} does not match {name} dtype {param.dtype}; "
            f"convert the input (x.astype(np.{param.dtype})) or the model (model.to(np.{x.dtype}))"
        )


def check_grad_dtype(layer, dy, param, name="weight"):
    """The upstream gradient must have the parameter's dtype (that of the forward output)."""
    if dy.dtype != param.dtype:
        raise TypeError(f"{layer}: upstream gradient dy has dtype {dy.dtype}, expected {param.dtype} (the {name}'s)")


def check_grad_shape(layer, dy, expected_shape):
    """The upstream gradient must have the shape of the layer's output."""
    if tuple(dy.shape) != tuple(expected_shape):
        raise ValueError(
            f"{layer}: expected the upstream gradient dy of shape {tuple(expected_shape)} "
            f"(the forward output's), got {tuple(dy.shape)}"
        )


def to_pair(layer, name, value, minimum):
    """``kernel_size=3`` or ``(3, 5)`` -> a pair of ints, each at least ``minimum``."""
    pair = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{layer}: {name} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_window_fits(layer, x, kernel, padding):
    """The (KH, KW) window must fit in the padded input (H + 2 ph, W + 2 pw)."""
    H, W = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if kernel[0] > H or kernel[1] > W:
        raise ValueError(
            f"{layer}: kernel {kernel[0]}x{kernel[1]} is larger than the padded input {H}x{W} "
            f"(input {x.shape[2]}x{x.shape[3]}, padding {padding})"
        )


def check_channels(layer, x, expected):
    """x (N, C, ...) must have C == expected channels."""
    if x.shape[1] != expected:
        raise ValueError(
            f"{layer}: expected {expected} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})"
        )


def positive_int(layer, name, value):
    """A size argument (features, channels): an int >= 1."""
    return integer(layer, name, value, 1)


def integer(where, name, value, low):
    """An int argument that must be at least ``low`` (a bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{where}: {name} must be at least {low}, got {value}")
    return int(value)


def real_number(where, name, value, low=-math.inf, high=math.inf, low_open=False, high_open=False, finite=True):
    """A hyper-parameter that must be a finite real number in [low, high] (an end is left
    out when ``low_open``/``high_open``; ``finite=False`` lets +-inf through, never NaN).
    Returns it as a float; the error names ``where``, the argument and the allowed
    interval: ``"Adam: eps must be a finite number in (0, inf), got 0.0"``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    too_low = value < low or (low_open and value == low)
    too_high = value > high or (high_open and value == high)
    if math.isnan(value) or (finite and math.isinf(value)) or too_low or too_high:
        interval = f"{'(' if low_open or low == -math.inf else '['}{low:g}, {high:g}{')' if high_open or high == math.inf else ']'}"
        kind = "a finite number" if finite else "a number (not NaN)"
        raise ValueError(f"{where}: {name} must be {kind} in {interval}, got {value!r}")
    return value


def real_array(where, key, value, shape, dtype=np.float64):
    """A value being loaded (a state-dict entry ``key``) as a host array of ``shape`` and
    ``dtype`` holding finite real numbers; anything else is refused with the key named:
    complex, bool or non-numeric values (TypeError), another shape, or NaN/inf, also
    after the cast (a float64 1e300 is inf as float32) (ValueError)."""
    value = to_host(value) if is_device_array(value) else np.asarray(value)
    kind = value.dtype
    if kind == np.bool_ or not np.issubdtype(kind, np.number) or np.issubdtype(kind, np.complexfloating):
        raise TypeError(f"{where}: {key!r} must hold real numbers, got dtype {kind}")
    if value.shape != tuple(shape):
        raise ValueError(f"{where}: {key!r} has shape {value.shape}, expected {tuple(shape)}")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow shows as inf, refused below
        value = value.astype(dtype, copy=True)
    bad = int(np.count_nonzero(~np.isfinite(value)))
    if bad:
        raise ValueError(
            f"{where}: {key!r} holds {bad} NaN or infinite values (as {np.dtype(dtype)}); nothing was loaded"
        )
    return value


def loaded_number(where, key, value, whole=False):
    """A single number being loaded (state-dict entry ``key``, a 0-d array): a finite real,
    returned as a float, or as an int when ``whole`` (then 3.0 is 3 and 2.5 is refused)."""
    value = real_array(where, key, value, ()).item()
    if not whole:
        return value
    if not float(value).is_integer():
        raise ValueError(f"{where}: {key!r} must be a whole number, got {value!r}")
    return int(value)
