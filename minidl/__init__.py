"""minidl: a deep-learning engine to learn deep learning by reading its source.

    from minidl import nn, optim
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

Every operation lives in ``minidl/ops/`` as a forward/backward pair of Numba kernels;
``minidl/nn/`` holds the layers that call them; ``minidl/cuda/`` holds the same ops as
numba.cuda kernels (``model.to("cuda")``). See README.md for the map of the code.
"""
from ._threads import single_threaded_blas

single_threaded_blas()  # one threading policy: Numba's threads, one-thread BLAS (see _threads.py)

from . import cuda, data, dispatch, gradcheck, metrics, nn, optim
from .anomaly import AnomalyError, detect_anomaly
from .device import device_of, to_device
from .rng import seed
from .serialization import load, read_checkpoint, save
from .train import History, evaluate, fit, predict, predict_classes

__version__ = "0.1.0"
