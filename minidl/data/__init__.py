"""Data: datasets as NumPy arrays, a seeded stratified split, and a batch iterator.

from minidl.data import load_digits, train_val_test_split, DataLoader
x, y = load_digits()                              # (1797, 1, 8, 8) float32, (1797,) int64
x, y = load_mnist("digits", "train")              # (60000, 1, 28, 28), see data/mnist.py
train, val, test = train_val_test_split(x, y, val=0.15, test=0.15, seed=0)
for xb, yb in DataLoader(*train, batch_size=32, shuffle=True):
    ...
augment = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip()])
DataLoader(*train, batch_size=32, shuffle=True, transform=augment)   # see data/transforms.py
"""

from . import transforms
from .digits import load_digits
from .loader import DataLoader
from .mnist import load_mnist
from .shapes import make_shapes_detection, make_shapes_segmentation
from .split import train_val_test_split

__all__ = [
    "load_digits",
    "load_mnist",
    "train_val_test_split",
    "DataLoader",
    "make_shapes_detection",
    "make_shapes_segmentation",
    "transforms",
]
