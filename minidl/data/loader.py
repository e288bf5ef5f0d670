"""Mini-batches: the loop ``for xb, yb in DataLoader(x, y, batch_size=32, shuffle=True)``.

One pass over the loader is one epoch. With ``shuffle=True`` every epoch visits the
samples in a new random order (a fresh permutation of 0..N-1), so the batches differ from
epoch to epoch: this is the "stochastic" in stochastic gradient descent. Batch b holds
the samples ``order[b * batch_size : (b + 1) * batch_size]``; the last one is smaller when
``batch_size`` does not divide N, unless ``drop_last=True`` leaves it out.

Data augmentation: ``transform`` (e.g. ``transforms.Compose([...])`` from
``minidl.data.transforms``) is applied to every batch of x as it is drawn, with random
numbers from the loader's generator, so every epoch sees new variants of the images and
a seeded loader sees the same ones on every run.
"""

import numbers

import numpy as np

from ..nn.checks import integer
from ..rng import get_rng


class DataLoader:
    """Iterate over ``(xb, yb)`` mini-batches of the arrays ``x`` and ``y`` (first axis = samples).

    ``DataLoader(x, y, batch_size=32, shuffle=False, seed=None, drop_last=False, transform=None)``

    - ``shuffle=False``: batches in the data's order, the same every epoch.
    - ``shuffle=True, seed=None``: each epoch's order is drawn from minidl's global
      generator, so ``minidl.seed(n)`` makes a whole run reproducible.
    - ``shuffle=True, seed=s``: the loader has its own generator seeded with s; a new order
      every epoch, and the same sequence of orders for every loader made with that seed.
    - ``transform``: called as ``transform(xb, rng)`` on every batch of x (a copy: the data
      itself is never changed), ``rng`` being the generator the order is drawn from.

    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(self, x, y, batch_size=32, shuffle=False, seed=None, drop_last=False, transform=None):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("DataLoader: x and y must be arrays with one sample per row (first axis)")
        if len(x) != len(y):
            raise ValueError(f"DataLoader: x has {len(x)} samples but y has {len(y)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"DataLoader: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if seed is not None:
            integer("DataLoader", "seed", seed, 0)
        if transform is not None and not callable(transform):
            raise TypeError(
                f"DataLoader: transform must be callable as transform(xb, rng) (e.g. transforms.Compose([...])), "
                f"got {type(transform).__name__}"
            )
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.transform = transform
        self._rng = None if seed is None else np.random.default_rng(seed)

    def generator(self):
        """The ``numpy.random.Generator`` the loader draws from: its own with a seed, else
        minidl's global one."""
        return self._rng if self._rng is not None else get_rng()

    def __len__(self):
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def __iter__(self):
        n = len(self.x)
        order = self.generator().permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            xb = self.x[idx]  # fancy indexing: a copy
            if self.transform is not None:
                xb = self.transform(xb, self.generator())
            yield xb, self.y[idx]

    def __repr__(self):
        return (
            f"DataLoader({len(self.x)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, {len(self)} batches"
            + ("" if self.transform is None else f", transform={self.transform!r}")
            + ")"
        )
