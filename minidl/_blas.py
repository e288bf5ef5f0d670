"""``gemm``: one BLAS matrix product, C = alpha A @ B + beta C, on views that NumPy's and
Numba's ``np.dot`` would copy first.

BLAS (the library behind every fast matrix product) does not need a matrix to be one
contiguous block: it takes a pointer to the first entry and the distance between two rows,
the "leading dimension" (``lda``). So a block of a bigger array, say ``x[:, 5:300]`` of a
(32, 324) array, is a 32 x 295 matrix to BLAS with ``lda = 324``, and ``x[:, 5:300].T`` is
the same memory read as its transpose. Numba's ``np.dot`` copies such a view into a
contiguous array before it calls BLAS; ``gemm`` passes it as it is, and it can also add the
product onto C (beta = 1) instead of overwriting it. The convolution uses both
(ops/conv2d.py, the shifted products): it multiplies the kernel by shifted views of the
padded image, with no im2col copy, and adds up the KH * KW products in place.

A view qualifies when its entries are contiguous along one of its two axes (a row or a
column of a C-contiguous array, or its transpose); ``gemm`` raises ``ValueError`` for any
other view and for shapes that do not chain, before BLAS reads anything.

One compilation for the whole engine. Numba compiles ``gemm`` anew for every combination
of argument types it meets, and an array's type includes its layout: ``w[i, j]`` of a
C-contiguous array is typed 'C', ``w[i, j].T`` 'F', ``x[:, a:b]`` 'A' (any). So every
caller in minidl passes views typed 'A': ``w[i, j, :, :]``, ``cols[:, :]``,
``x[lo:hi, :]``, ``w[:, :].T``; and none of those kernels has ``fastmath`` flags, which a
callee like this one takes from its caller (one more compilation). Then the kernels of the
convolution and of linear share one compiled ``gemm`` per dtype, where the demo had
compiled three of them and three of Numba's ``np.dot``. Measured with
``benchmarks/compile_cost.py``, 2 cores, taking turns: its first run compiled 20.9 s
against 24.9-27.6 s before.

Under ``NUMBA_DISABLE_JIT=1`` the function body below runs as written (NumPy's matmul);
compiled, Numba replaces it by ``_gemm_compiled``, which calls the BLAS of SciPy through
the same C helper as Numba's own ``np.dot`` (``numba_xxgemm`` in Numba's helper library,
which looks up ``sgemm``/``dgemm`` in ``scipy.linalg.cython_blas``). The threading policy of
minidl/_threads.py holds: that BLAS runs on one thread.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload


def gemm(alpha, A, B, beta, C):
    """C = alpha * A @ B + beta * C, in place. A (m, k), B (k, n), C (m, n): 2-D float32 or
    float64 views, each contiguous along one axis. With beta = 0, C's old entries are not
    read (a NaN there does not survive), as in BLAS."""
    if A.ndim != 2 or B.ndim != 2 or C.ndim != 2 or A.shape[1] != B.shape[0] or C.shape != (A.shape[0], B.shape[1]):
        raise ValueError("gemm: shapes do not chain: A (m, k) @ B (k, n) -> C (m, n)")
    C[...] = alpha * (A @ B) if beta == 0 else alpha * (A @ B) + beta * C


# --- the compiled form -----------------------------------------------------------------------

N, T, UNREADABLE = ord("n"), ord("t"), ord("?")  # BLAS's codes: a matrix as it is, transposed
_char = ir.IntType(8)
_void_p = _char.as_pointer()
_intp = cgutils.intp_t


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """Call Numba's C helper numba_xxgemm(kind, transa, transb, m, n, k, &alpha, a, lda, b,
    ldb, &beta, c, ldc), a Fortran-order gemm; returns its status (0 = done)."""
    sig = types.int32(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)

    def codegen(context, builder, sig, args):
        ta, tb, m_, n_, k_, alpha_, a, lda_, b, ldb_, beta_, c, ldc_ = args
        dtype = sig.args[11].dtype
        fnty = ir.FunctionType(
            ir.IntType(32),
            [
                _char,
                _char,
                _char,
                _intp,
                _intp,
                _intp,
                _void_p,
                _void_p,
                _intp,
                _void_p,
                _intp,
                _void_p,
                _void_p,
                _intp,
            ],
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

        def data(ty, array):
            return builder.bitcast(context.make_array(ty)(context, builder, array).data, _void_p)

        def scalar(ty, value):  # BLAS takes alpha and beta by address, in C's dtype
            slot = cgutils.alloca_once_value(builder, context.cast(builder, value, ty, dtype))
            return builder.bitcast(slot, _void_p)

        kind = ir.Constant(_char, ord("s" if dtype == types.float32 else "d"))
        # Fortran reads a row-major matrix as its transpose: C^T = B^T A^T, so B comes first
        return builder.call(
            fn,
            (
                kind,
                builder.trunc(tb, _char),
                builder.trunc(ta, _char),
                n_,
                m_,
                k_,
                scalar(sig.args[5], alpha_),
                data(sig.args[8], b),
                ldb_,
                data(sig.args[6], a),
                lda_,
                scalar(sig.args[10], beta_),
                data(sig.args[11], c),
                ldc_,
            ),
        )

    return sig, codegen


@njit(cache=True, inline="always")
def _layout(X):
    """How BLAS reads the view X (r, s): ('n', distance between rows) if its rows are
    contiguous and do not overlap, ('t', distance between columns) if its columns are (X is
    the transpose of a row-major matrix); else ('?', 1): a step inside the rows, a reversed
    or an overlapping view. (Written with plain comparisons and character codes: the checks
    of ``gemm`` are compiled into every kernel that calls it, and each branch costs
    compile time at a first run.)"""
    e = X.itemsize
    r, s = X.shape
    if X.strides[1] == e and X.strides[0] >= s * e:
        ld = X.strides[0] // e
        return N, ld if ld > 0 else 1
    if X.strides[0] == e and X.strides[1] >= r * e:
        ld = X.strides[1] // e
        return T, ld if ld > 0 else 1
    return UNREADABLE, 1


@overload(gemm)
def _gemm_compiled(alpha, A, B, beta, C):
    arrays = (A, B, C)
    if not all(isinstance(X, types.Array) and X.ndim == 2 for X in arrays):
        raise TypingError("gemm: A, B and C must be 2-D arrays")
    if not (A.dtype == B.dtype == C.dtype and C.dtype in (types.float32, types.float64)):
        raise TypingError(
            f"gemm: A, B and C must share one dtype, float32 or float64; got {A.dtype}, {B.dtype}, {C.dtype}"
        )

    def impl(alpha, A, B, beta, C):
        m, k = A.shape
        n = B.shape[1]
        ta, lda = _layout(A)
        tb, ldb = _layout(B)
        tc, ldc = _layout(C)
        if B.shape[0] != k or C.shape[0] != m or C.shape[1] != n:
            raise ValueError("gemm: shapes do not chain: A (m, k) @ B (k, n) -> C (m, n)")
        if ta == UNREADABLE or tb == UNREADABLE or tc != N:
            raise ValueError("gemm: A and B must be contiguous along one axis, C along its rows")
        if m > 0 and n > 0 and _xxgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) != 0:
            raise RuntimeError("gemm: BLAS returned an error")

    return impl
