"""train_val_test_split (seeded, stratified, exact sizes, disjoint and covering) and
DataLoader (batches, shuffling per epoch, seeds, minidl.seed)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl.data import DataLoader, train_val_test_split


def labelled(counts):
    """x = the sample ids 0..N-1 (so a split can be traced back), y = class labels with
    ``counts[c]`` samples of class c, interleaved."""
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype(np.int64)
    y = y[np.random.default_rng(42).permutation(len(y))]
    x = np.arange(len(y))
    return x, y


def ids(split):
    return split[0].tolist()


# --- train_val_test_split -------------------------------------------------------------------


def test_splits_are_disjoint_cover_everything_and_match_labels():
    x, y = labelled([50, 30, 20])
    splits = train_val_test_split(x, y, val=0.2, test=0.1, seed=1)
    all_ids = sorted(ids(splits[0]) + ids(splits[1]) + ids(splits[2]))
    assert all_ids == list(range(100))
    for xs, ys in splits:
        np.testing.assert_array_equal(ys, y[xs])  # rows stay paired


def test_exact_sizes_and_stratified_counts():
    x, y = labelled([50, 30, 20])
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(x, y, val=0.2, test=0.1, seed=1)
    assert (len(x_tr), len(x_va), len(x_te)) == (70, 20, 10)
    assert np.bincount(y_va).tolist() == [10, 6, 4]
    assert np.bincount(y_te).tolist() == [5, 3, 2]
    assert np.bincount(y_tr).tolist() == [35, 21, 14]


def test_each_split_keeps_the_original_order():
    x, y = labelled([40, 40])
    for xs, _ in train_val_test_split(x, y, seed=3):
        assert np.all(np.diff(xs) > 0)


def test_same_seed_same_split_other_seed_other_split():
    x, y = labelled([60, 40])
    a = train_val_test_split(x, y, seed=7)
    b = train_val_test_split(x, y, seed=7)
    c = train_val_test_split(x, y, seed=8)
    assert [ids(s) for s in a] == [ids(s) for s in b]
    assert [ids(s) for s in a] != [ids(s) for s in c]


def test_seed_none_follows_minidl_seed():
    x, y = labelled([60, 40])
    minidl.seed(5)
    a = train_val_test_split(x, y, seed=None)
    minidl.seed(5)
    b = train_val_test_split(x, y, seed=None)
    assert [ids(s) for s in a] == [ids(s) for s in b]


def test_small_classes_still_give_the_exact_totals():
    """30 samples of 10 classes: 15% is 4.5 per split overall, 0.45 per class. Rounding per
    class would give empty splits; the shares add up to round(0.15 * 30) = 4 instead."""
    x, y = labelled([3] * 10)
    (x_tr, _), (x_va, y_va), (x_te, y_te) = train_val_test_split(x, y, val=0.15, test=0.15)
    assert (len(x_va), len(x_te), len(x_tr)) == (4, 4, 22)
    assert np.bincount(y_va).max() == 1 and np.bincount(y_te).max() == 1


def test_no_stratify_and_regression_targets():
    x = np.arange(40).reshape(20, 2).astype(np.float32)
    y = np.linspace(0.0, 1.0, 20)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(x, y, val=0.25, test=0.25, stratify=False)
    assert (len(x_tr), len(x_va), len(x_te)) == (10, 5, 5)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_va, y_te])), y)
    np.testing.assert_array_equal(x_va[:, 0] / 2, y_va * 19)  # x rows follow y


def test_zero_fractions_give_empty_splits():
    x, y = labelled([10, 10])
    (x_tr, _), (x_va, _), (x_te, _) = train_val_test_split(x, y, val=0.0, test=0.0)
    assert len(x_tr) == 20 and len(x_va) == 0 and len(x_te) == 0


def test_images_keep_their_shape():
    x = np.zeros((20, 1, 8, 8), dtype=np.float32)
    y = np.arange(20) % 2
    (x_tr, _), (x_va, _), _ = train_val_test_split(x, y)
    assert x_tr.shape[1:] == (1, 8, 8) and x_va.dtype == np.float32


@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    val=st.floats(0.0, 0.45),
    test=st.floats(0.0, 0.45),
    seed=st.integers(0, 2**16),
)
def test_split_properties(counts, val, test, seed):
    x, y = labelled(counts)
    n = len(y)
    n_val, n_test = round(val * n), round(test * n)
    if (val > 0 and n_val == 0) or (test > 0 and n_test == 0) or n_val + n_test >= n:
        with pytest.raises(ValueError, match="train_val_test_split: .*(empty|no training data)"):
            train_val_test_split(x, y, val=val, test=test, seed=seed)
        return
    splits = train_val_test_split(x, y, val=val, test=test, seed=seed)
    assert sorted(ids(splits[0]) + ids(splits[1]) + ids(splits[2])) == list(range(n))
    assert len(splits[1][0]) == n_val and len(splits[2][0]) == n_test
    sizes = np.array(counts)
    for (_, ys), total in ((splits[1], n_val), (splits[2], n_test)):
        per_class = np.bincount(ys, minlength=len(counts))
        assert np.all(np.abs(per_class - total * sizes / n) < 2)  # stratified: each class its share


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(val=1.0), ValueError, r"val must be a finite number in \[0, 1\), got 1.0"),
        (dict(test=-0.1), ValueError, r"test must be a finite number in \[0, 1\), got -0.1"),
        (dict(val="0.1"), TypeError, r"val must be a real number, got str"),
        (dict(val=0.5, test=0.5), ValueError, r"val \+ test must be < 1"),
    ],
)
def test_bad_fractions(kwargs, error, message):
    x, y = labelled([50, 50])
    with pytest.raises(error, match="train_val_test_split: " + message):
        train_val_test_split(x, y, **kwargs)


def test_fractions_that_do_not_fit_the_data():
    x, y = labelled([2, 2])
    with pytest.raises(ValueError, match=r"val=0.6 and test=0.38 of 4 samples leave no training data"):
        train_val_test_split(x, y, val=0.6, test=0.38)  # round(2.4) + round(1.52) = 4
    with pytest.raises(ValueError, match=r"a validation fraction of 0.1 of 4 samples is an empty validation set"):
        train_val_test_split(x, y, val=0.1, test=0.3)


def test_mismatched_lengths_and_bad_inputs():
    with pytest.raises(ValueError, match=r"train_val_test_split: x has 5 samples but y has 4"):
        train_val_test_split(np.zeros(5), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"train_val_test_split: got an empty data set"):
        train_val_test_split(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(TypeError, match=r"stratify=True needs integer class labels y, got dtype float64"):
        train_val_test_split(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match=r"train_val_test_split: x and y must be arrays with one sample per row"):
        train_val_test_split(np.zeros(3), 1)


# --- DataLoader ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, batch_size, drop_last, expected",
    [
        (10, 3, False, 4),
        (10, 3, True, 3),
        (9, 3, False, 3),
        (9, 3, True, 3),
        (2, 5, False, 1),
        (2, 5, True, 0),
    ],
)
def test_len_is_the_number_of_batches(n, batch_size, drop_last, expected):
    loader = DataLoader(np.zeros((n, 2)), np.zeros(n), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == expected
    assert len(list(loader)) == expected


def test_without_shuffle_batches_are_in_order():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    batches = list(DataLoader(x, y, batch_size=4))
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, x[yb])


def test_drop_last_leaves_out_the_short_batch():
    batches = list(DataLoader(np.arange(10), np.arange(10), batch_size=4, drop_last=True))
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def epoch_order(loader):
    return np.concatenate([yb for _, yb in loader]).tolist()


def test_shuffle_is_a_new_permutation_every_epoch():
    x = np.arange(50)
    loader = DataLoader(x, x, batch_size=8, shuffle=True, seed=0)
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second and first != list(range(50))
    for xb, yb in loader:
        np.testing.assert_array_equal(xb, yb)  # x and y stay paired


def test_seeded_loaders_repeat_the_same_sequence_of_epochs():
    x = np.arange(50)
    a = DataLoader(x, x, batch_size=8, shuffle=True, seed=3)
    b = DataLoader(x, x, batch_size=8, shuffle=True, seed=3)
    minidl.seed(1)  # the global generator plays no part
    epochs_a = [epoch_order(a) for _ in range(3)]
    minidl.seed(2)
    epochs_b = [epoch_order(b) for _ in range(3)]
    assert epochs_a == epochs_b
    assert epoch_order(DataLoader(x, x, shuffle=True, seed=4)) != epochs_a[0]


def test_unseeded_shuffle_follows_minidl_seed():
    x = np.arange(50)
    loader = DataLoader(x, x, batch_size=8, shuffle=True)
    minidl.seed(11)
    run1 = [epoch_order(loader) for _ in range(2)]
    minidl.seed(11)
    run2 = [epoch_order(loader) for _ in range(2)]
    assert run1 == run2 and run1[0] != run1[1]


def test_iterating_a_fresh_loader_twice_gives_independent_iterators():
    loader = DataLoader(np.arange(6), np.arange(6), batch_size=2)
    it1, it2 = iter(loader), iter(loader)
    assert next(it1)[1].tolist() == [0, 1]
    assert next(it1)[1].tolist() == [2, 3]
    assert next(it2)[1].tolist() == [0, 1]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(batch_size=0), ValueError, r"DataLoader: batch_size must be >= 1, got 0"),
        (dict(batch_size=2.5), TypeError, r"DataLoader: batch_size must be an int, got float"),
        (dict(batch_size=True), TypeError, r"DataLoader: batch_size must be an int, got bool"),
    ],
)
def test_bad_batch_size(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(np.zeros(4), np.zeros(4), **kwargs)


def test_mismatched_lengths():
    with pytest.raises(ValueError, match=r"DataLoader: x has 4 samples but y has 3"):
        DataLoader(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"DataLoader: x and y must be arrays with one sample per row"):
        DataLoader(np.float32(1.0), np.zeros(3))
