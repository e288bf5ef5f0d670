"""minidl: a deep-learning engine to learn deep learning by reading its source.

    from minidl import nn, optim
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

Every operation lives in ``minidl/ops/`` as a forward/backward pair of Numba kernels;
``minidl/nn/`` holds the layers that call them; ``minidl/cuda/`` holds the same ops as
numba.cuda kernels (``model.to("cuda")``). See README.md for the map of the code.
"""

from ._memory import keep_freed_memory
from ._threads import single_threaded_blas

single_threaded_blas()  # one threading policy: minidl's threads, one-thread BLAS (see _threads.py)
keep_freed_memory()  # one allocation policy: freed pages reused by the next step (see _memory.py)

from . import cuda, data, dispatch, gradcheck, interop, metrics, nn, optim  # noqa: E402 (after the policies)
from .anomaly import AnomalyError, detect_anomaly  # noqa: E402
from .device import device_of, to_device  # noqa: E402
from .profiler import Profile, profile  # noqa: E402
from .reference import reference_loops  # noqa: E402
from .rng import seed  # noqa: E402
from .serialization import load, read_checkpoint, save  # noqa: E402
from .train import History, evaluate, fit, predict, predict_classes  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "History",
    "cuda",
    "data",
    "detect_anomaly",
    "device_of",
    "dispatch",
    "evaluate",
    "fit",
    "gradcheck",
    "interop",
    "load",
    "metrics",
    "nn",
    "optim",
    "predict",
    "predict_classes",
    "profile",
    "Profile",
    "read_checkpoint",
    "reference_loops",
    "save",
    "seed",
    "to_device",
]
