"""The 8x8 handwritten digits (scikit-learn's copy of the UCI "optdigits" test set).

1797 grey-level images of the digits 0-9, about 180 of each, written by 43 people. Each
pixel counts how many of the 4x4 blocks of the original 32x32 bitmap were inked, so the
values are integers 0..16. The data ships inside scikit-learn: nothing is downloaded.
"""

import importlib.util
from pathlib import Path

import numpy as np


def bundled_file():
    """The path of scikit-learn's ``digits.csv.gz`` (one row per image: 64 pixels, then
    the label), found without importing scikit-learn, or None if it is not there.
    (Importing ``sklearn.datasets`` takes about 1.5 s on 2 cores, more than twice as long
    as importing minidl: measured with ``python -X importtime``.)"""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def load_digits():
    """The digits as images: ``x`` (1797, 1, 8, 8) float32 in [0, 1], ``y`` (1797,) int64.

    ``x = pixel / 16`` in NCHW layout (one channel), ready for ``nn.Conv2d(1, ...)`` or,
    after ``nn.Flatten()``, for ``nn.Linear(64, ...)``; ``y`` holds the labels 0..9.
    """
    path = bundled_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",")  # (1797, 65): 64 pixels in 0..16, the label
        pixels, labels = table[:, :64], table[:, 64]
    else:  # a scikit-learn that keeps its data elsewhere: its own loader
        from sklearn.datasets import load_digits as sklearn_load_digits

        pixels, labels = sklearn_load_digits(return_X_y=True)  # (1797, 64) in 0..16, (1797,)
    x = (pixels / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = labels.astype(np.int64)
    return x, y
