"""Input checks shared by every layer: a clear error naming the layer, the expected and
the actual shape or dtype, before anything reaches a Numba kernel (where a wrong dtype
would surface as an unreadable typing error)."""
import numpy as np

from .module import FLOAT_DTYPES


def check_float_array(layer, x, name="input"):
    """``x`` must be a float32/float64 NumPy array (or a CUDA device array)."""
    if hasattr(x, "__cuda_array_interface__"):
        return
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer}: expected the {name} to be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{layer}: expected the {name} to have dtype float32 or float64, got {x.dtype}")


def check_ndim(layer, x, ndims, layout, name="input"):
    """``x.ndim`` must be one of ``ndims``; ``layout`` names the axes, e.g. ``"(N, C, H, W)"``."""
    if x.ndim not in ndims:
        raise ValueError(f"{layer}: expected a {'/'.join(map(str, ndims))}-D {name} {layout}, got shape {tuple(x.shape)}")


def check_same_dtype(layer, x, param, name="weight"):
    """The input's dtype must be the parameter's: minidl never casts silently."""
    if x.dtype != param.dtype:
        raise TypeError(
            f"{layer}: input dtype {x.dtype} does not match {name} dtype {param.dtype}; "
            f"convert the input (x.astype(np.{param.dtype})) or the model (model.to(np.{x.dtype}))"
        )


def require_forward(layer, cache):
    """``backward`` needs what ``forward`` saved."""
    if cache is None:
        raise RuntimeError(f"{layer}: backward() called before forward()")
    return cache


def check_grad_shape(layer, dy, expected_shape):
    """The upstream gradient must have the shape of the layer's output."""
    if tuple(dy.shape) != tuple(expected_shape):
        raise ValueError(
            f"{layer}: expected the upstream gradient dy of shape {tuple(expected_shape)} "
            f"(the forward output's), got {tuple(dy.shape)}"
        )
