"""Layers: thin stateful wrappers around the ops (parameters + the forward cache)."""
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import Sequential
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import MSELoss, SoftmaxCrossEntropy
from .module import Layer, Parameter
