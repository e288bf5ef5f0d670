"""Layers: thin stateful wrappers around the ops (parameters + the forward cache)."""
from .containers import Sequential
from .module import Layer, Parameter
