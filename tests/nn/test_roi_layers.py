"""nn.RoIPool and nn.RoIAlign: called as layer(features, rois), backward gives the
features' gradient; malformed regions are clear errors that change nothing."""

import numpy as np
import pytest

from minidl import nn
from tests.helpers import raises, randn, random_dy

ROIS = np.array([[0, 1.0, 1.0, 6.0, 5.0], [1, 0.0, 2.0, 7.0, 7.0], [0, 3.0, 3.0, 3.5, 4.0]])


@pytest.mark.parametrize(
    "layer",
    [nn.RoIPool((2, 3), 1.0), nn.RoIAlign((2, 2), 0.5, sampling_ratio=2, aligned=True), nn.RoIAlign(3, 1 / 2)],
    ids=["pool", "align-aligned", "align"],
)
def test_shapes_dtypes_and_the_features_gradient(layer):
    for dtype in (np.float32, np.float64):
        x = randn(2, 3, 8, 8, dtype=dtype)
        y = layer(x, ROIS)
        assert y.shape == (3, 3, *layer.output_size) and y.dtype == dtype
        dx = layer.backward(random_dy(y.shape).astype(dtype))
        assert dx.shape == x.shape and dx.dtype == dtype and dx.any()


def test_no_regions_give_an_empty_batch():
    y = nn.RoIAlign(2, 1.0)(randn(1, 2, 4, 4), np.zeros((0, 5)))
    assert y.shape == (0, 2, 2, 2)


@pytest.mark.parametrize(
    "rois, error, message",
    [
        (np.zeros((2, 4)), ValueError, "rois must have shape (K, 5), rows (n, x1, y1, x2, y2), got (2, 4)"),
        (np.array([[2, 0, 0, 1, 1.0]]), ValueError, "roi 0 has batch index 2.0; it must be a whole number in [0, 2)"),
        (np.array([[0, 0, 0, 1, 1], [0.5, 0, 0, 1, 1]]), ValueError, "roi 1 has batch index 0.5"),
        (
            np.array([[0, 3, 0, 1, 1.0]]),
            ValueError,
            "roi 0 is [0.0, 3.0, 0.0, 1.0, 1.0]; a region needs x1 <= x2 and y1 <= y2",
        ),
        (np.array([[0, 0, 0, np.nan, 1]]), ValueError, "rois hold NaN or inf"),
        (np.array([["0", "0", "0", "1", "1"]]), TypeError, "rois must be real numbers"),
    ],
)
def test_malformed_rois(rois, error, message):
    for layer in (nn.RoIPool(2, 1.0), nn.RoIAlign(2, 1.0)):
        with raises(error, f"{type(layer).__name__}: {message}"):
            layer(randn(2, 1, 4, 4), rois)


def test_bad_arguments_and_gradients():
    with raises(ValueError, "RoIPool: spatial_scale must be a finite number in (0, inf), got 0.0"):
        nn.RoIPool(2, 0.0)
    with raises(TypeError, "RoIAlign: aligned must be True or False, got 1"):
        nn.RoIAlign(2, 1.0, aligned=1)
    with raises(TypeError, "RoIAlign: sampling_ratio must be an int, got float"):
        nn.RoIAlign(2, 1.0, sampling_ratio=2.0)
    layer = nn.RoIPool(2, 1.0)
    with raises(ValueError, "RoIPool: expected a 4-D features (N, C, H, W), got shape (4, 4)"):
        layer(randn(4, 4), ROIS)
    layer(randn(2, 1, 8, 8), ROIS)
    with raises(ValueError, "RoIPool: expected the upstream gradient dy of shape (3, 1, 2, 2)"):
        layer.backward(randn(3, 1, 2, 3))
    assert repr(nn.RoIAlign(7, 1 / 16, 2, True)) == (
        "RoIAlign(output_size=(7, 7), spatial_scale=0.0625, sampling_ratio=2, aligned=True)"
    )
