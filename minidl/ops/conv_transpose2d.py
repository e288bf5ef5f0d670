r"""2-D transposed convolution: a convolution whose forward and backward passes are swapped.

In symbols:

$$v(y) = U^\top v(x): \quad y_{n,\,o,\,h s_h - p_h + i,\,w s_w - p_w + j} \mathrel{+}= w_{c,o,i,j}\; x_{n,c,h,w}
  \ \text{ for every } (n, c, h, w, i, j), \ \text{ then } y_{n,o,\cdot,\cdot} \mathrel{+}= b_o$$

$$\frac{\partial L}{\partial x} = U\, \frac{\partial L}{\partial y} = \mathrm{conv2d}\Big(\frac{\partial L}{\partial y}, w\Big), \qquad
  O_H = (H - 1)\, s_h - 2 p_h + K_H + \text{output\_padding}_h$$

The transposed convolution, in one sentence: "a convolution where the implementation of the
forward and backward passes are swapped." A convolution with kernel u is a linear map, so
it is a matrix U: flatten the input to a vector v(x) and the output is v(h) = U v(x); its
backward pass multiplies the upstream gradient by U^T. A TRANSPOSED convolution with the
same kernel is the other way round:

    forward    v(h) = U^T v(x)        (a small input grows into a large output)
    backward   dx   = U dy            (the gradient shrinks back with the convolution)

The worked example: the 3x3 kernel u = [[1, 4, 1], [1, 4, 3], [3, 3, 1]] slid over a 4x4
input (stride 1, no padding) gives a 2x2 output, so U is 4x16. Row oh*2 + ow of U is the
kernel placed at (oh, ow) in a 4x4 grid of zeros, read row by row:

    U =  1 4 1 0  1 4 3 0  3 3 1 0  0 0 0 0      (kernel at (0, 0))
         0 1 4 1  0 1 4 3  0 3 3 1  0 0 0 0      (kernel at (0, 1))
         0 0 0 0  1 4 1 0  1 4 3 0  3 3 1 0      (kernel at (1, 0))
         0 0 0 0  0 1 4 1  0 1 4 3  0 3 3 1      (kernel at (1, 1))

and the transposed convolution of the 2x2 input x = [[2, 1], [4, 4]] is U^T (16x4), the
worked example's matrix, times v(x) = (2, 1, 4, 4); column k of U^T is row k of U:

        U^T        v(x)   v(h)
    |1 0 0 0|   |2|   | 2|
    |4 1 0 0| x |1|   | 9|
    |1 4 0 0|   |4|   | 6|
    |0 1 0 0|   |4|   | 1|
    |1 0 1 0|         | 6|
    |4 1 4 1|         |29|
    |3 4 1 4|         |30|
    |0 3 0 1|       = | 7|
    |3 0 1 0|         |10|
    |3 3 4 1|         |29|
    |1 3 3 4|         |33|
    |0 1 0 3|         |13|
    |0 0 3 0|         |12|
    |0 0 3 3|         |24|
    |0 0 1 3|         |16|
    |0 0 0 1|         | 4|

and v(h) read as 4x4 rows:

    h = [[ 2,  9,  6,  1],      every input pixel x[oh, ow] drops a copy of the kernel,
         [ 6, 29, 30,  7],      scaled by itself, at (oh, ow) of the output; where the
         [10, 29, 33, 13],      copies overlap they add up
         [12, 24, 16,  4]]      (29 = 2*4 + 1*1 + 4*4 + 4*1).

Forward, with indices. x (N, C_in, H, W); w (C_in, C_out, KH, KW), PyTorch's layout, which
is conv2d's (C_out, C, KH, KW) layout for the convolution going the other way, from C_out
channels back to C_in; b (C_out,); stride (sh, sw), padding (ph, pw), output_padding
(oph, opw):

    y[n, co, h, v] = b[co] + sum_{c, oh, ow, i, j  with  oh*sh - ph + i = h,  ow*sw - pw + j = v}
                             x[n, c, oh, ow] * w[c, co, i, j]

    y (N, C_out, OH, OW)    OH = (H - 1) sh - 2 ph + KH + oph    OW = (W - 1) sw - 2 pw + KW + opw

The indices are conv2d's: (oh, ow) runs over the SMALL array (x here, conv2d's output
there; so oh < H, while OH is the size of the large output), (h, v) over the LARGE one
(v rather than w, which is the weight). Input pixel (oh, ow) scatters
w[c, co] * x[n, c, oh, ow] onto the output window whose top left corner is
(oh*sh - ph, ow*sw - pw): the SAME windows as conv2d's with this stride and padding,
traversed in the other direction. Compare conv2d (conv2d.py), which GATHERS

    z[n, c, oh, ow] = sum_{co, i, j} w[c, co, i, j] * y[n, co, oh*sh - ph + i, ow*sw - pw + j]

(a conv2d from C_out channels to C_in channels with the weight w as it is). The scatter is
U^T, the gather is U. In matrices, with w_mat = w.reshape(C_in, C_out*KH*KW) and
X[n] = x[n].reshape(C_in, H*W):

    Y[n] = col2im(w_mat^T @ X[n]) + b

which is, symbol for symbol, conv2d's input gradient dx = col2im(w_mat^T dY): this file's
forward IS ``conv2d.backward_input``, with x in the place of conv2d's dy.

Backward. Given dy (N, C_out, OH, OW), y is linear in x, in w and in b, so

    dx[n, c, oh, ow] = sum_{co, i, j} w[c, co, i, j] * dy[n, co, oh*sh - ph + i, ow*sw - pw + j]
    dw[c, co, i, j]  = sum_{n, oh, ow} x[n, c, oh, ow] * dy[n, co, oh*sh - ph + i, ow*sw - pw + j]
    db[co]           = sum_{n, h, v} dy[n, co, h, v]

(dy taken as 0 outside its OH x OW). dx is the gather above: conv2d's FORWARD of dy with
the weight w (no bias); its output size (OH + 2 ph - KH) // sh + 1 is H again, because
0 <= oph < sh. dw is conv2d's weight gradient dw[co', c', i, j] = sum dy'[n, co', oh, ow]
x'[n, c', oh*sh - ph + i, ow*sw - pw + j] with the roles exchanged: x' = dy (the big
array that the windows read) and dy' = x (the small one), so ``conv2d.backward_params(x,
dy, w.shape, ...)``; the bias gradient that call also returns is the sum of x and is not
ours (db is the sum of dy).

So that sentence is the code below, literally:

                         forward                         backward (dx)
    conv2d.py            conv2d.forward          (U)     conv2d.backward_input   (U^T)
    this file            conv2d.backward_input   (U^T)   conv2d.forward          (U)

No kernel of its own: im2col, col2im and the matrix products are conv2d's, the bias is
ops/bias.py. Those are taken from the target that the arrays live on (``dispatch.op``), so
these few lines serve the CPU and the GPU alike: ``minidl/cuda/conv_transpose2d.py`` is
this file's functions, run with the CUDA conv2d and bias.

output_padding. For stride sh > 1 several input sizes H' give the same conv2d output size
((H' + 2 ph - KH) // sh + 1 drops a remainder 0 .. sh - 1), so the transposed convolution
cannot know which size to produce; ``output_padding`` (0 <= oph < sh) picks it by adding
oph rows at the bottom (opw columns at the right). (Kernel 3, stride 2, padding 1 and
output_padding 1 give OH = 2 H exactly: the usual doubling of a decoder.)

Padding crops ph rows from the top and from the bottom of the full scatter, which has
(H - 1) sh + KH rows; output_padding gives back oph rows at the bottom. The first
min(oph, ph) of them are rows of the scatter that the padding would have cropped; the
others (all oph of them when ph = 0) lie past every scattered window and receive only the
bias, y = b[co]. In the code nothing special happens: col2im writes zeros where no window
lands, the bias is added everywhere, and the gradient of those bias-only rows reaches db
alone.
"""

from .. import dispatch


def output_size(H, KH, S, P, OP):
    """The output length along one axis: ``(H - 1) S - 2 P + KH + OP``.

    H is the input length, KH the kernel length, S the stride, P the padding and OP the
    output padding (0 <= OP < S). The inverse of conv2d's size rule: conv2d with the same
    KH, S, P maps this length back to H.
    """
    return (H - 1) * S - 2 * P + KH + OP


def forward(x, w, b, stride, padding, output_padding):
    """y = conv_transpose2d(x, w) + b = col2im(w_mat^T X) + b, i.e. conv2d.backward_input.

    x (N, C_in, H, W); w (C_in, C_out, KH, KW); b (C_out,) or None (no bias);
    stride = (sh, sw); padding = (ph, pw); output_padding = (oph, opw), each < its stride.
    Returns y (N, C_out, OH, OW), OH = (H - 1) sh - 2 ph + KH + oph (same for OW).
    Backward needs only x and w again.
    """
    N, C_in, H, W = x.shape
    _, C_out, KH, KW = w.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    OH, OW = output_size(H, KH, sh, ph, oph), output_size(W, KW, sw, pw, opw)
    # conv2d's input gradient, with x as "dy": w is conv2d's (C_out=C_in, C=C_out, KH, KW) weight.
    y = dispatch.op("conv2d", x, w).backward_input(x, w, (N, C_out, OH, OW), stride, padding)
    if b is not None:
        dispatch.op("bias", y, b).forward(y, b)  # y[n, co, h, v] += b[co]
    return y


def backward(dy, x, w, stride, padding, has_bias=True, input_grad=True):
    """The gradients in the order of forward's inputs: (dx, dw, db).

    dy (N, C_out, OH, OW); x (N, C_in, H, W) and w (C_in, C_out, KH, KW) as given to
    forward. output_padding is not needed: it is in dy's shape. db is None when
    ``has_bias`` is False (forward was called with b=None); dx is None, not computed, when
    ``input_grad`` is False.
    """
    conv2d = dispatch.op("conv2d", dy, x, w)
    dx = conv2d.forward(dy, w, None, stride, padding) if input_grad else None  # U dy: conv2d's forward
    dw, _ = conv2d.backward_params(x, dy, w.shape, stride, padding)  # x and dy exchanged
    db = dispatch.op("bias", dy).backward(dy) if has_bias else None  # db[co] = sum of dy[:, co]
    return dx, dw, db
