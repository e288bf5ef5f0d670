"""The hypothesis strategies the tests share: seeds and sliding-window geometries.

Every test that draws a convolution, pooling or transposed-convolution geometry draws it
here, so one rule (OH, OW >= 1; pooling's padding <= kernel // 2; output_padding < stride)
is written once.
"""

from hypothesis import strategies as st

seeds = st.integers(0, 2**32 - 1)


@st.composite
def windows(draw, max_kernel=3, max_stride=3, max_padding=2, half_padding=False, max_size=7):
    """A sliding-window geometry: (H, W, (KH, KW), (sh, sw), (ph, pw)) with OH, OW >= 1.

    Kernels may be non-square. ``half_padding`` keeps padding <= kernel // 2 (pooling's rule).
    """
    KH, KW = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    ph = draw(st.integers(0, KH // 2 if half_padding else max_padding))
    pw = draw(st.integers(0, KW // 2 if half_padding else max_padding))
    H = draw(st.integers(max(1, KH - 2 * ph), max(max_size, KH)))
    W = draw(st.integers(max(1, KW - 2 * pw), max(max_size, KW)))
    return H, W, (KH, KW), (sh, sw), (ph, pw)


@st.composite
def transposed_windows(draw, max_size=4, max_kernel=3, max_stride=3, max_padding=2):
    """A transposed-convolution geometry with an output of at least 1x1:
    (H, W, (KH, KW), (sh, sw), (ph, pw), (oph, opw)), output_padding < stride."""
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    KH, KW = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    # OH = (H - 1) sh - 2 ph + KH + oph >= 1  <=>  ph <= ((H - 1) sh + KH + oph - 1) // 2
    ph = draw(st.integers(0, min(max_padding, ((H - 1) * sh + KH + oph - 1) // 2)))
    pw = draw(st.integers(0, min(max_padding, ((W - 1) * sw + KW + opw - 1) // 2)))
    return H, W, (KH, KW), (sh, sw), (ph, pw), (oph, opw)


@st.composite
def bn_shapes(draw):
    """(N, C) or (N, C, H, W), with at least two values per channel."""
    N, C = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    if draw(st.booleans()):
        return (draw(st.integers(2, 6)), C)
    H, W = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if N * H * W < 2:
        N = 2
    return (N, C, H, W)


@st.composite
def roi_problems(draw, max_size=6):
    """(x shape (N, C, H, W), rois (K, 5), spatial_scale, output_size): regions anywhere
    from a little outside the image to inside it, some smaller than a feature cell."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25, 1 / 16]))
    K = draw(st.integers(1, 3))
    coords = st.floats(-1.5, max(H, W) / scale + 1.5, allow_nan=False)
    rows = []
    for _ in range(K):
        x1, x2 = sorted((draw(coords), draw(coords)))
        y1, y2 = sorted((draw(coords), draw(coords)))
        rows.append((draw(st.integers(0, N - 1)), x1, y1, x2, y2))
    output_size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (N, C, H, W), rows, scale, output_size
