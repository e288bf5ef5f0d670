"""load_digits: scikit-learn's 8x8 digits as NCHW float32 images in [0, 1] and int64 labels."""

import numpy as np
import pytest

from minidl.data import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_shapes_and_dtypes(digits):
    x, y = digits
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.flags.c_contiguous


def test_pixels_are_sixteenths_in_unit_interval(digits):
    x, _ = digits
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x * 16, np.round(x * 16))  # grey levels 0..16


def test_labels_are_the_ten_digits_balanced(digits):
    _, y = digits
    labels, counts = np.unique(y, return_counts=True)
    np.testing.assert_array_equal(labels, np.arange(10))
    assert counts.min() >= 170 and counts.max() <= 190


def test_same_images_as_scikit_learn(digits):
    from sklearn.datasets import load_digits as sklearn_load_digits

    x, y = digits
    ref = sklearn_load_digits()
    np.testing.assert_array_equal(x[:, 0], (ref.images / 16).astype(np.float32))
    np.testing.assert_array_equal(y, ref.target)


def test_scikit_learns_own_loader_when_its_file_is_not_found(monkeypatch, digits):
    """Without the bundled file (another scikit-learn layout) the same arrays come from
    scikit-learn's loader."""
    monkeypatch.setattr("minidl.data.digits.bundled_file", lambda: None)
    x, y = load_digits()
    np.testing.assert_array_equal(x, digits[0])
    np.testing.assert_array_equal(y, digits[1])


def test_image_is_row_major_8x8(digits):
    """Pixel (r, c) of an image is column 8 r + c of scikit-learn's flat data."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    x, _ = digits
    flat = sklearn_load_digits().data
    assert x[5, 0, 2, 3] == np.float32(flat[5, 2 * 8 + 3] / 16)


def test_each_call_returns_fresh_arrays(digits):
    x1, y1 = load_digits()
    x1[...] = 0
    y1[...] = 0
    x2, y2 = load_digits()
    assert x2.max() == 1.0 and y2.max() == 9
