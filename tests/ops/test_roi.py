"""RoI pooling and RoI Align. torchvision cannot run next to the CPU build of PyTorch, so
the oracle is a plain-Python reference of each of its rules (below), the documented
corner cases are worked by hand, and the gradients are checked by finite differences
(RoI pooling away from ties: distinct values)."""

import math

import numpy as np
import pytest
from hypothesis import given

from minidl.ops import roi_align, roi_pool
from tests.helpers import assert_gradient, random_dy
from tests.strategies import roi_problems, seeds

# --- the references: torchvision's rules, written once more, plainly ------------------------


def c_round(v):
    """C's round(): halves away from zero."""
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def reference_roi_pool(x, rois, output_size, scale):
    N, C, H, W = x.shape
    PH, PW = output_size
    y = np.zeros((len(rois), C, PH, PW))
    for k, (n, x1, y1, x2, y2) in enumerate(rois):
        c0, r0, c1, r1 = (c_round(v * scale) for v in (x1, y1, x2, y2))
        bin_h, bin_w = max(r1 - r0 + 1, 1) / PH, max(c1 - c0 + 1, 1) / PW
        for p in range(PH):
            for q in range(PW):
                rows = range(
                    min(max(r0 + math.floor(p * bin_h), 0), H), min(max(r0 + math.ceil((p + 1) * bin_h), 0), H)
                )
                cols = range(
                    min(max(c0 + math.floor(q * bin_w), 0), W), min(max(c0 + math.ceil((q + 1) * bin_w), 0), W)
                )
                for c in range(C):
                    values = [x[int(n), c, i, j] for i in rows for j in cols]
                    y[k, c, p, q] = max(values) if values else 0.0
    return y


def bilinear(plane, v, u):
    """torchvision's bilinear_interpolate: 0 beyond one cell outside, clamped within it."""
    H, W = plane.shape
    if v < -1 or v > H or u < -1 or u > W:
        return 0.0
    v, u = min(max(v, 0.0), H - 1), min(max(u, 0.0), W - 1)
    v0, u0 = min(int(v), H - 1), min(int(u), W - 1)
    v1, u1 = min(v0 + 1, H - 1), min(u0 + 1, W - 1)
    fv, fu = v - v0, u - u0
    return (
        (1 - fv) * (1 - fu) * plane[v0, u0]
        + (1 - fv) * fu * plane[v0, u1]
        + fv * (1 - fu) * plane[v1, u0]
        + fv * fu * plane[v1, u1]
    )


def reference_roi_align(x, rois, output_size, scale, sampling_ratio, aligned):
    C = x.shape[1]
    PH, PW = output_size
    y = np.zeros((len(rois), C, PH, PW))
    o = 0.5 if aligned else 0.0
    for k, (n, x1, y1, x2, y2) in enumerate(rois):
        u0, v0 = x1 * scale - o, y1 * scale - o
        wid, hgt = x2 * scale - o - u0, y2 * scale - o - v0
        if not aligned:
            wid, hgt = max(wid, 1.0), max(hgt, 1.0)
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(hgt / PH)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(wid / PW)
        for p in range(PH):
            for q in range(PW):
                points = [
                    (v0 + (p + (a + 0.5) / gh) * hgt / PH, u0 + (q + (b + 0.5) / gw) * wid / PW)
                    for a in range(gh)
                    for b in range(gw)
                ]
                for c in range(C):
                    total = sum(bilinear(x[int(n), c], v, u) for v, u in points)
                    y[k, c, p, q] = total / max(gh * gw, 1)
    return y


def problem(shape, rows, seed, distinct=False):
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    x = (rng.permutation(size) * 0.01).reshape(shape) if distinct else rng.standard_normal(shape)
    return x, np.array(rows, dtype=np.float64)


# --- RoI pooling ------------------------------------------------------------------------------

GRID = np.arange(16.0).reshape(1, 1, 4, 4)  # x[i, j] = 4 i + j


@pytest.mark.parametrize(
    "roi, scale, output_size, expected",
    [
        ((0, 1, 1, 1, 1), 1.0, (2, 2), [[5, 5], [5, 5]]),  # smaller than a bin: every bin sees the one cell
        ((0, 2, 2, 3, 3), 1.0, (1, 1), [[15]]),  # touching the border
        ((0, 2, 2, 9, 9), 1.0, (2, 2), [[15, 0], [0, 0]]),  # past the border: clipped bins are empty, 0
        ((0, 2, 2, 5, 5), 0.5, (1, 1), [[15]]),  # 2.5 rounds to 3 (away from 0), not to 2 (even)
        ((0, 0, 0, 63, 63), 1 / 16, (2, 2), [[10, 11], [14, 15]]),  # 63/16 -> 4: 5 cells, bins of 2.5
    ],
)
def test_roi_pool_worked_cases(roi, scale, output_size, expected):
    y, argmax = roi_pool.forward(GRID, np.array([roi], float), output_size, scale)
    np.testing.assert_array_equal(y[0, 0], expected)
    np.testing.assert_array_equal(argmax[0, 0] >= 0, np.array(expected) > 0)


@given(p=roi_problems(), seed=seeds)
def test_roi_pool_equals_the_reference(p, seed):
    shape, rows, scale, output_size = p
    x, rois = problem(shape, rows, seed)
    y, _ = roi_pool.forward(x, rois, output_size, scale)
    np.testing.assert_array_equal(y, reference_roi_pool(x, rows, output_size, scale))


@given(p=roi_problems(), seed=seeds)
def test_roi_pool_backward_by_finite_differences(p, seed):
    shape, rows, scale, output_size = p
    x, rois = problem(shape, rows, seed, distinct=True)
    y, argmax = roi_pool.forward(x, rois, output_size, scale)
    dy = random_dy(y.shape, seed=seed % 1000)
    dx = roi_pool.backward(dy, rois, argmax, x.shape)
    assert_gradient(dx, lambda v: np.sum(roi_pool.forward(v, rois, output_size, scale)[0] * dy), x)
    assert np.sum(dx) == pytest.approx(np.sum(dy[argmax >= 0]), abs=1e-12)  # every non-empty bin hands on its dy


# --- RoI Align --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "roi, scale, sampling_ratio, aligned, output_size, expected",
    [
        ((0, 0, 0, 3, 3), 1.0, 1, False, (1, 1), [[7.5]]),  # one sample at (1.5, 1.5): 4 * 1.5 + 1.5
        ((0, 0, 0, 3, 3), 1.0, 1, True, (1, 1), [[5.0]]),  # aligned: the half-pixel shift, (1.0, 1.0)
        ((0, 8, 8, 56, 56), 1 / 16, 2, True, (1, 1), [[7.5]]),  # samples at 0.75 and 2.25
        ((0, 3, 3, 4, 4), 1.0, 1, False, (1, 1), [[15.0]]),  # at (3.5, 3.5): within a cell outside, clamped
        ((0, -3, -3, -2, -2), 1.0, 1, False, (1, 1), [[0.0]]),  # at (-2.5, -2.5): outside, 0
        ((0, 1, 1, 1.2, 1.2), 1.0, -1, False, (2, 2), [[6.25, 6.75], [8.25, 8.75]]),  # smaller than a cell: made 1 x 1
        ((0, 2, 2, 5, 5), 0.5, 2, False, (1, 1), [[8.75]]),  # spatial_scale 1/2: (1, 1)-(2.5, 2.5), samples' mean 1.75
    ],
)
def test_roi_align_worked_cases(roi, scale, sampling_ratio, aligned, output_size, expected):
    y = roi_align.forward(GRID, np.array([roi], float), output_size, scale, sampling_ratio, aligned)
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-12)


@given(p=roi_problems(), seed=seeds)
def test_roi_align_equals_the_reference(p, seed):
    shape, rows, scale, output_size = p
    x, rois = problem(shape, rows, seed)
    for sampling_ratio in (-1, 2):
        for aligned in (False, True):
            y = roi_align.forward(x, rois, output_size, scale, sampling_ratio, aligned)
            expected = reference_roi_align(x, rows, output_size, scale, sampling_ratio, aligned)
            np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@given(p=roi_problems(), seed=seeds)
def test_roi_align_backward_adjoint_and_finite_differences(p, seed):
    shape, rows, scale, output_size = p
    x, rois = problem(shape, rows, seed)
    y = roi_align.forward(x, rois, output_size, scale, 2, True)
    dy = random_dy(y.shape, seed=seed % 1000)
    dx = roi_align.backward(dy, rois, x.shape, scale, 2, True)
    assert np.sum(y * dy) == pytest.approx(np.sum(x * dx), rel=1e-10, abs=1e-12)
    assert_gradient(dx, lambda v: np.sum(roi_align.forward(v, rois, output_size, scale, 2, True) * dy), x)


def test_roi_align_moves_smoothly_where_roi_pool_jumps():
    """Shift a region by a tenth of a pixel at a time: RoI Align's output changes a little
    every time; RoI pooling's (rounded to the grid) stays, then jumps."""
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8))
    shifts = np.arange(0, 1.01, 0.1)
    aligned = [roi_align.forward(x, np.array([[0, 1 + s, 1, 5 + s, 5]]), (2, 2), 1.0, 2, True) for s in shifts]
    pooled = [roi_pool.forward(x, np.array([[0, 1 + s, 1, 5 + s, 5]]), (2, 2), 1.0)[0] for s in shifts]
    assert all(not np.array_equal(a, b) for a, b in zip(aligned, aligned[1:]))
    assert sum(not np.array_equal(a, b) for a, b in zip(pooled, pooled[1:])) == 1  # one jump, at 0.5
