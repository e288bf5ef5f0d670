"""The tiled matrix product, written once: every matrix product of the CUDA target
(Linear's three, the convolution's three) is this kernel. The CPU target hands the same
products to BLAS through ``np.dot``.

    C[z] = op(A[z]) @ op(B[z])       op(A) = A or A^T (``trans_a``), op(B) likewise
    C[0] = sum_z op(A[z]) @ op(B[z])  with ``sum_batch`` (a weight gradient summed over images)

A, B and C are 3-D: a batch of matrices (z first). A batch of 1 is broadcast: the
convolution multiplies the same weight matrix (1, C_out, K) with every image's columns
(N, K, P).

Why tiles. The textbook kernel lets the thread of C[i, j] read row i of A and column j of
B from global memory, 2 K reads per output and 2 M N K for the whole product; global memory
is hundreds of cycles away. Here a block of TILE x TILE threads computes one TILE x TILE
tile of C. It walks along k in steps of TILE: each thread copies ONE element of A's tile
and ONE of B's tile into shared memory (on-chip, a few cycles away), the block waits
(``cuda.syncthreads()``), then every thread does TILE multiply-adds from shared memory,
and the block waits again before the next tiles overwrite these:

         k0 .. k0+TILE                        A tile (rows of this block's C tile)
    A: [ .. | ##### | .. ]   x   B: [ .. ]    B tile (columns of this block's C tile)
                                    [####]
                                    [ .. ]

Each element loaded from global memory is now used TILE times, so the product reads
2 M N K / TILE elements from global memory instead of 2 M N K (tutorial 11 counts them).
Tiles that stick out of the matrix are padded with zeros. The shared tiles and the
accumulator are float64 whatever the input dtype (sums in float64, as on the CPU).
"""

from numba import cuda, float64

from ._launch import TILE, launch_tiles


@cuda.jit
def gemm_kernel(A, B, C, trans_a, trans_b, sum_batch):
    """Block (ty, tx) threads: thread (ty, tx) of the block that owns tile (bm, bn) of C[z]
    computes C[z, bm*TILE + ty, bn*TILE + tx]; blocks stride over (z, bm, bn)."""
    sA = cuda.shared.array((TILE, TILE), float64)
    sB = cuda.shared.array((TILE, TILE), float64)
    ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
    M, Ncol = C.shape[1], C.shape[2]
    K = A.shape[1] if trans_a else A.shape[2]
    Z = max(A.shape[0], B.shape[0])
    tiles_m = (M + TILE - 1) // TILE
    tiles_n = (Ncol + TILE - 1) // TILE
    for t in range(cuda.blockIdx.x, C.shape[0] * tiles_m * tiles_n, cuda.gridDim.x):
        zc = t // (tiles_m * tiles_n)
        row = (t // tiles_n) % tiles_m * TILE + ty
        col = t % tiles_n * TILE + tx
        z_first, z_stop = (0, Z) if sum_batch else (zc, zc + 1)
        acc = 0.0
        for z in range(z_first, z_stop):
            za = z if A.shape[0] > 1 else 0  # a batch of one matrix is broadcast
            zb = z if B.shape[0] > 1 else 0
            for k0 in range(0, K, TILE):
                k = k0 + tx  # this thread loads A's element (row, k0 + tx) ...
                if row < M and k < K:
                    sA[ty, tx] = A[za, k, row] if trans_a else A[za, row, k]
                else:
                    sA[ty, tx] = 0.0
                k = k0 + ty  # ... and B's element (k0 + ty, col)
                if k < K and col < Ncol:
                    sB[ty, tx] = B[zb, col, k] if trans_b else B[zb, k, col]
                else:
                    sB[ty, tx] = 0.0
                cuda.syncthreads()  # both tiles are complete
                for kk in range(TILE):
                    acc += sA[ty, kk] * sB[kk, tx]
                cuda.syncthreads()  # everyone is done with these tiles
        if row < M and col < Ncol:
            C[zc, row, col] = acc


def matmul(A, B, C, trans_a=False, trans_b=False, sum_batch=False):
    """C[z] = op(A[z]) @ op(B[z]) (or their sum over z into C[0]); C is overwritten.

    A: (ZA, M, K), or (ZA, K, M) with trans_a; B: (ZB, K, Ncol), or (ZB, Ncol, K) with
    trans_b; ZA, ZB equal or 1; C: (Z, M, Ncol), or (1, M, Ncol) with sum_batch.
    """
    M, Ncol = C.shape[1], C.shape[2]
    tiles = C.shape[0] * ((M + TILE - 1) // TILE) * ((Ncol + TILE - 1) // TILE)
    launch_tiles(gemm_kernel, tiles, A, B, C, trans_a, trans_b, sum_batch)
    return C
