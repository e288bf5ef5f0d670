"""``gemm`` (minidl/_blas.py): C = alpha A @ B + beta C on views inside bigger arrays, as
the shifted convolution products use it, equals NumPy's product for every layout it
accepts (row-major and transposed blocks, float32 and float64, empty sides), never touches
memory outside C's block, refuses the views and shapes BLAS cannot take, and is compiled
once for all the kernels that call it."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl._blas import gemm
from tests.strategies import seeds


@numba.njit
def compiled_gemm(alpha, A, B, beta, C):
    gemm(alpha, A, B, beta, C)


def block(rng, rows, cols, transposed, dtype):
    """A (rows, cols) view cut from a bigger array at an offset, with a row distance larger
    than its width; its transpose's transpose when ``transposed`` (contiguous columns)."""
    if transposed:
        return block(rng, cols, rows, False, dtype).T
    big = rng.standard_normal((rows + 3, cols + 4)).astype(dtype)
    return big[1 : rows + 1, 2 : cols + 2]


@given(
    m=st.integers(0, 6),
    n=st.integers(0, 6),
    k=st.integers(0, 6),
    transpose_a=st.booleans(),
    transpose_b=st.booleans(),
    alpha=st.sampled_from([1.0, -0.5]),
    beta=st.sampled_from([0.0, 1.0, 2.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=seeds,
)
def test_gemm_is_numpy_s_product_on_views(m, n, k, transpose_a, transpose_b, alpha, beta, dtype, seed):
    rng = np.random.default_rng(seed)
    A, B = block(rng, m, k, transpose_a, dtype), block(rng, k, n, transpose_b, dtype)
    big_C = rng.standard_normal((m + 2, n + 3)).astype(dtype)
    before = big_C.copy()
    C = big_C[1 : m + 1, 1 : n + 1]
    if beta == 0.0:
        C[...] = np.nan  # BLAS does not read C when beta is 0: no NaN survives
    expected = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + (
        beta * before[1 : m + 1, 1 : n + 1] if beta else 0
    )
    compiled_gemm(alpha, A, B, beta, C)
    np.testing.assert_allclose(C, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    outside = np.ones(big_C.shape, bool)
    outside[1 : m + 1, 1 : n + 1] = False
    np.testing.assert_array_equal(big_C[outside], before[outside])


@pytest.mark.parametrize("f", [gemm, compiled_gemm], ids=["python", "compiled"])
def test_shapes_that_do_not_chain_are_refused(f):
    A, B, C = np.ones((2, 3)), np.ones((4, 5)), np.zeros((2, 5))
    with pytest.raises(ValueError, match="shapes do not chain"):
        f(1.0, A, B, 0.0, C)
    with pytest.raises(ValueError, match="shapes do not chain"):
        f(1.0, A, np.ones((3, 5)), 0.0, np.zeros((2, 4)))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the compiled form's checks (NumPy takes any view)")
def test_views_blas_cannot_read_are_refused_before_it_runs():
    A, B = np.ones((4, 6)), np.ones((3, 5))
    with pytest.raises(ValueError, match="contiguous along one axis"):
        compiled_gemm(1.0, A[:, ::2], B, 0.0, np.zeros((4, 5)))  # a step inside the rows
    with pytest.raises(ValueError, match="contiguous along one axis"):
        compiled_gemm(1.0, A[:3, :3], B, 0.0, np.zeros((5, 3)).T)  # C transposed
    with pytest.raises(numba.core.errors.TypingError, match="share one dtype"):
        compiled_gemm(1.0, A.astype(np.float32), np.ones((6, 2)), 0.0, np.zeros((4, 2)))


ONE_COMPILATION = """
import numpy as np
from numba.core import event
from minidl.ops import conv2d, linear
recorder = event.RecordingListener()  # as benchmarks/compile_cost.py listens
event.register("numba:compile", recorder)
rng = np.random.default_rng(0)
for C, H, stride in ((1, 20, 1), (1, 8, 1), (8, 8, 1), (2, 9, 2)):  # im2col's, both wide forms, stride 2
    x = rng.standard_normal((2, C, H, H)).astype(np.float32)
    w = rng.standard_normal((3, C, 3, 3)).astype(np.float32)
    y = conv2d.forward(x, w, None, (stride, stride), (1, 1))
    conv2d.backward(y, x, w, (stride, stride), (1, 1))
x, w = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
linear.backward(linear.forward(x, w), x, w)
print(sum(ev.is_start and "_gemm_compiled" in ev.data["dispatcher"].py_func.__qualname__ for _, ev in recorder.buffer))
"""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="counts Numba's compilations")
def test_every_kernel_shares_one_compiled_gemm(tmp_path):
    """The convolution's kernels (im2col's, both wide-row forms, their gradients) and
    linear's, run in float32 in a fresh cache, compile gemm once: every caller passes views
    typed alike and no caller has flags that gemm would take on (_blas.py). Another layout or
    a fastmath kernel would compile it again, seconds more at a first run."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", ONE_COMPILATION], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "1", out.stdout
