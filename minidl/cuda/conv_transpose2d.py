"""The transposed convolution on the GPU. Its forward is conv2d's input gradient and its
backward is conv2d's forward and weight gradient (the derivation, the worked example's U^T and the
output-size rule: ``minidl/ops/conv_transpose2d.py``). Those functions pick conv2d and the
bias for the device the arrays live on, so the GPU runs them as they are, with the kernels
of ``cuda/conv2d.py`` (im2col, the tiled GEMM, the col2im gather) and ``cuda/bias.py``.
"""

from ..ops.conv_transpose2d import backward, forward, output_size  # noqa: F401  (the same functions)
