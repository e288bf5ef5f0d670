"""Layers: thin stateful wrappers around the ops (parameters + the forward cache)."""

from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .containers import ModuleDict, ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .flatten import Flatten, Unflatten
from .linear import Linear
from .loss import BCEWithLogitsLoss, MSELoss, SmoothL1Loss, SoftmaxCrossEntropy
from .module import Layer, Parameter
from .multibox_loss import MultiBoxLoss
from .pool import AvgPool2d, MaxPool2d
from .roi import RoIAlign, RoIPool
from .skip import Concat, Residual
from .upsample import Upsample
from .yolo_loss import YOLOLoss

__all__ = [
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "Dropout",
    "Flatten",
    "Layer",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "MultiBoxLoss",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Residual",
    "RoIAlign",
    "RoIPool",
    "Sequential",
    "Sigmoid",
    "SmoothL1Loss",
    "SoftmaxCrossEntropy",
    "Tanh",
    "Unflatten",
    "Upsample",
    "YOLOLoss",
]
