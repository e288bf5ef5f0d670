"""minidl: a deep-learning engine to learn deep learning by reading its source.

    from minidl import nn, optim
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

Every operation lives in ``minidl/ops/`` as a forward/backward pair of Numba kernels;
``minidl/nn/`` holds the layers that call them. See README.md for the map of the code.
"""
from . import dispatch, gradcheck, nn
from .rng import seed
from .serialization import load, save

__version__ = "0.1.0"
