"""The 8x8 handwritten digits (scikit-learn's copy of the UCI "optdigits" test set).

1797 grey-level images of the digits 0-9, about 180 of each, written by 43 people. Each
pixel counts how many of the 4x4 blocks of the original 32x32 bitmap were inked, so the
values are integers 0..16. The data ships inside scikit-learn: nothing is downloaded.
"""

import numpy as np


def load_digits():
    """The digits as images: ``x`` (1797, 1, 8, 8) float32 in [0, 1], ``y`` (1797,) int64.

    ``x = pixel / 16`` in NCHW layout (one channel), ready for ``nn.Conv2d(1, ...)`` or,
    after ``nn.Flatten()``, for ``nn.Linear(64, ...)``; ``y`` holds the labels 0..9.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits  # imported on use: slow

    pixels, labels = sklearn_load_digits(return_X_y=True)  # (1797, 64) in 0..16, (1797,)
    x = (pixels / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = labels.astype(np.int64)
    return x, y
