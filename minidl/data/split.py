"""Split a data set three ways: train (fit the weights), validation (choose the
hyper-parameters, watch for over-fitting), test (measure once, at the end).

Stratified: every class is shuffled on its own and cut in the same proportions, so a
class that is 10% of the data is about 10% of each split (a plain random cut of a small
data set can leave a split short of some class). The sizes are exact: the test set has
``round(test * N)`` samples, the validation set ``round(val * N)``, and the per-class counts
are shared out by largest remainder so that they add up to those totals.
"""

import numpy as np

from ..nn.checks import real_number
from ..rng import get_rng


def _share(total, sizes, capacity):
    """Split ``total`` samples over classes in proportion to their ``sizes``, at most
    ``capacity[c]`` from class c. Each class first gets the whole part of its exact share
    ``total * sizes[c] / N``; the few samples left go one at a time to the class with the
    largest fraction left over."""
    exact = total * sizes / sizes.sum()
    counts = np.minimum(np.floor(exact).astype(np.int64), capacity)
    while counts.sum() < total:
        leftover = np.where(counts < capacity, exact - counts, -np.inf)
        counts[np.argmax(leftover)] += 1
    return counts


def train_val_test_split(x, y, val=0.15, test=0.15, seed=0, stratify=True):
    """Seeded (stratified) split into ``((x_tr, y_tr), (x_val, y_val), (x_te, y_te))``.

    ``val`` and ``test`` are fractions of all N samples (the rest is training data).
    ``stratify=True`` keeps the class proportions in each split and needs integer class
    labels ``y``; pass ``stratify=False`` for regression targets. The same ``seed`` gives
    the same split; ``seed=None`` draws from minidl's global generator (``minidl.seed``).
    The three splits are disjoint and together hold every sample exactly once; each keeps
    the original order of its samples. A split asked for (fraction > 0) that would be
    empty, or an empty training set, raises ``ValueError``.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("train_val_test_split: x and y must be arrays with one sample per row")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"train_val_test_split: x has {n} samples but y has {len(y)}")
    if n == 0:
        raise ValueError("train_val_test_split: got an empty data set")
    val = real_number("train_val_test_split", "val", val, 0.0, 1.0, high_open=True)
    test = real_number("train_val_test_split", "test", test, 0.0, 1.0, high_open=True)
    if val + test >= 1.0:
        raise ValueError(f"train_val_test_split: val + test must be < 1 to leave training data, got {val} + {test}")
    if stratify and not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"train_val_test_split: stratify=True needs integer class labels y, got dtype {y.dtype}; "
            f"pass stratify=False for regression targets"
        )

    n_test, n_val = round(test * n), round(val * n)
    for name, fraction, size in (("test", test, n_test), ("validation", val, n_val)):
        if fraction > 0 and size == 0:
            raise ValueError(
                f"train_val_test_split: a {name} fraction of {fraction} of {n} samples is an empty {name} set"
            )
    if n_test + n_val >= n:
        raise ValueError(f"train_val_test_split: val={val} and test={test} of {n} samples leave no training data")

    rng = get_rng() if seed is None else np.random.default_rng(seed)
    # One group of sample indices per class (a single group when not stratifying).
    if stratify:
        groups = [np.flatnonzero(y == label) for label in np.unique(y)]
    else:
        groups = [np.arange(n)]
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    test_counts = _share(n_test, sizes, capacity=sizes)
    val_counts = _share(n_val, sizes, capacity=sizes - test_counts)

    train_idx, val_idx, test_idx = [], [], []
    for group, n_te, n_va in zip(groups, test_counts, val_counts):
        group = rng.permutation(group)  # shuffle within the class, then cut
        test_idx.append(group[:n_te])
        val_idx.append(group[n_te : n_te + n_va])
        train_idx.append(group[n_te + n_va :])

    splits = []
    for idx in (train_idx, val_idx, test_idx):
        idx = np.sort(np.concatenate(idx))
        splits.append((x[idx], y[idx]))
    return tuple(splits)
