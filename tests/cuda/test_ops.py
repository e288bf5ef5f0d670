"""Every CUDA op equals its CPU twin, forward and backward, on small shapes (hypothesis
draws the geometry of the sliding-window ops): float64 to 1e-10, float32 to 1e-5."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.ops.im2col import output_size
from tests.helpers import randn

from .helpers import assert_same, cpu_and_cuda, dev, host

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_elementwise_activations(name, dtype):
    cpu, gpu = cpu_and_cuda(name)
    x = randn(3, 5, dtype=dtype) * 3
    x[0, 0] = 0.0  # the kink
    dy = randn(3, 5, seed=1, dtype=dtype)
    y = cpu.forward(x)
    assert_same(y, gpu.forward(dev(x)), dtype)
    kept = y if name in ("sigmoid", "tanh") else x
    assert_same(cpu.backward(dy, kept), gpu.backward(dev(dy), dev(kept)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_fill_concat_bias(dtype):
    add, add_g = cpu_and_cuda("add")
    a, b = randn(2, 3, 2, dtype=dtype), randn(2, 3, 2, seed=1, dtype=dtype)
    assert_same(add.forward(a, b), add_g.forward(dev(a), dev(b)), dtype)
    out, out_g = a.copy(), dev(a)
    assert_same(add.accumulate(out, b), add_g.accumulate(out_g, dev(b)), dtype)
    fill, fill_g = cpu_and_cuda("fill")
    assert_same(fill.fill(a.copy(), 0), fill_g.fill(dev(a), 0), dtype)
    concat, concat_g = cpu_and_cuda("concat")
    c = randn(2, 1, 2, seed=2, dtype=dtype)
    assert_same(concat.forward(a, c), concat_g.forward(dev(a), dev(c)), dtype)
    dy = randn(2, 4, 2, seed=3, dtype=dtype)
    assert_same(concat.backward(dy, 3), concat_g.backward(dev(dy), 3), dtype)
    bias, bias_g = cpu_and_cuda("bias")
    y, bb = randn(2, 3, 2, 2, dtype=dtype), randn(3, seed=4, dtype=dtype)
    assert_same(bias.forward(y.copy(), bb), bias_g.forward(dev(y), dev(bb)), dtype)
    assert_same(bias.backward(y), bias_g.backward(dev(y)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions(dtype):
    reduce, reduce_g = cpu_and_cuda("reduce")
    a = randn(4, 7, dtype=dtype)
    a[1, 2], a[3, 3] = np.nan, -np.inf
    assert reduce.count_nonfinite(a) == reduce_g.count_nonfinite(dev(a)) == 2
    labels = np.array([[3, 0, 7], [2, 9, 1]])
    assert reduce.min_max(labels) == reduce_g.min_max(dev(labels)) == (0, 9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("has_bias", [True, False])
def test_linear(dtype, has_bias):
    cpu, gpu = cpu_and_cuda("linear")
    x, w, b, dy = (
        randn(5, 7, dtype=dtype),
        randn(3, 7, seed=1, dtype=dtype),
        randn(3, seed=2, dtype=dtype),
        randn(5, 3, seed=3, dtype=dtype),
    )
    b = b if has_bias else None
    assert_same(cpu.forward(x, w, b), gpu.forward(dev(x), dev(w), dev(b)), dtype)
    assert_same(cpu.backward(dy, x, w, has_bias), gpu.backward(dev(dy), dev(x), dev(w), has_bias), dtype)


geometry = st.tuples(
    st.integers(1, 3),
    st.integers(1, 3),  # KH, KW
    st.integers(1, 2),
    st.integers(1, 2),  # sh, sw
    st.integers(0, 1),
    st.integers(0, 1),  # ph, pw
)


@given(geometry, st.sampled_from(DTYPES))
def test_im2col_col2im_and_conv2d(geo, dtype):
    KH, KW, sh, sw, ph, pw = geo
    N, C, H, W, C_out = 2, 2, 4, 5, 3
    x, w, b = (
        randn(N, C, H, W, dtype=dtype),
        randn(C_out, C, KH, KW, seed=1, dtype=dtype),
        randn(C_out, seed=2, dtype=dtype),
    )
    OH, OW = output_size(H, KH, sh, ph), output_size(W, KW, sw, pw)
    im2col, im2col_g = cpu_and_cuda("im2col")
    cols = im2col.im2col(x, KH, KW, (sh, sw), (ph, pw))
    assert_same(cols, im2col_g.im2col(dev(x), KH, KW, (sh, sw), (ph, pw)), dtype)
    assert_same(
        im2col.col2im(cols, x.shape, KH, KW, (sh, sw), (ph, pw)),
        im2col_g.col2im(dev(cols), x.shape, KH, KW, (sh, sw), (ph, pw)),
        dtype,
    )
    conv, conv_g = cpu_and_cuda("conv2d")
    assert_same(
        conv.forward(x, w, b, (sh, sw), (ph, pw)), conv_g.forward(dev(x), dev(w), dev(b), (sh, sw), (ph, pw)), dtype
    )
    dy = randn(N, C_out, OH, OW, seed=3, dtype=dtype)
    assert_same(
        conv.backward(dy, x, w, (sh, sw), (ph, pw)), conv_g.backward(dev(dy), dev(x), dev(w), (sh, sw), (ph, pw)), dtype
    )


@given(geometry, st.integers(0, 1), st.sampled_from(DTYPES))
def test_conv_transpose2d(geo, extra, dtype):
    KH, KW, sh, sw, ph, pw = geo
    output_padding = (min(extra, sh - 1), min(extra, sw - 1))
    cpu, gpu = cpu_and_cuda("conv_transpose2d")
    x, w, b = randn(2, 2, 3, 3, dtype=dtype), randn(2, 3, KH, KW, seed=1, dtype=dtype), randn(3, seed=2, dtype=dtype)
    y = cpu.forward(x, w, b, (sh, sw), (ph, pw), output_padding)
    assert_same(y, gpu.forward(dev(x), dev(w), dev(b), (sh, sw), (ph, pw), output_padding), dtype)
    dy = randn(*y.shape, seed=3, dtype=dtype)
    assert_same(
        cpu.backward(dy, x, w, (sh, sw), (ph, pw)), gpu.backward(dev(dy), dev(x), dev(w), (sh, sw), (ph, pw)), dtype
    )


pool_geometry = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.booleans())


@given(pool_geometry, st.sampled_from(DTYPES))
def test_pooling(geo, dtype):
    KH, KW, sh, sw, padded = geo
    padding = (KH // 2, KW // 2) if padded else (0, 0)
    x = randn(2, 2, 5, 4, dtype=dtype)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 9.0  # a tie: the first one wins on both targets
    x[1, 1, 2, 0] = x[1, 1, 2, 1] = np.nan  # a NaN wins its window (the last one) on both targets
    for name in ("maxpool2d", "avgpool2d"):
        cpu, gpu = cpu_and_cuda(name)
        y = cpu.forward(x, (KH, KW), (sh, sw), padding)
        assert_same(y, gpu.forward(dev(x), (KH, KW), (sh, sw), padding), dtype, name)
        if name == "maxpool2d":
            y, argmax = y
            dy = randn(*y.shape, seed=1, dtype=dtype)
            dx = cpu.backward(dy, argmax, x.shape, (KH, KW), (sh, sw), padding)
            assert_same(dx, gpu.backward(dev(dy), dev(argmax), x.shape, (KH, KW), (sh, sw), padding), dtype)
        else:
            dy = randn(*y.shape, seed=1, dtype=dtype)
            assert_same(
                cpu.backward(dy, x.shape, (KH, KW), (sh, sw), padding),
                gpu.backward(dev(dy), x.shape, (KH, KW), (sh, sw), padding),
                dtype,
            )


@pytest.mark.parametrize("dtype", DTYPES)
def test_upsample_nearest(dtype):
    cpu, gpu = cpu_and_cuda("upsample_nearest")
    x, dy = randn(1, 2, 2, 3, dtype=dtype), randn(1, 2, 4, 9, seed=1, dtype=dtype)
    assert_same(cpu.forward(x, (2, 3)), gpu.forward(dev(x), (2, 3)), dtype)
    assert_same(cpu.backward(dy, (2, 3)), gpu.backward(dev(dy), (2, 3)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 2, 2)])
def test_batchnorm(dtype, shape):
    cpu, gpu = cpu_and_cuda("batchnorm")
    C = shape[1]
    x, gamma, beta, dy = (
        randn(*shape, dtype=dtype) * 2 + 1,
        randn(C, seed=1, dtype=dtype),
        randn(C, seed=2, dtype=dtype),
        randn(*shape, seed=3, dtype=dtype),
    )
    y, cache = cpu.forward_train(x, gamma, beta, 1e-5)
    y_g, cache_g = gpu.forward_train(dev(x), dev(gamma), dev(beta), 1e-5)
    assert_same(
        (y, cache["mean"], cache["var"], cache["x_hat"]),
        (y_g, cache_g["mean"], cache_g["var"], cache_g["x_hat"]),
        dtype,
    )
    assert cache["m"] == cache_g["m"]
    for backward in ("backward", "backward_compact"):
        assert_same(
            getattr(cpu, backward)(dy, gamma, cache),
            getattr(gpu, backward)(dev(dy), dev(gamma), cache_g),
            dtype,
            backward,
        )
    rm, rv = randn(C, seed=4, dtype=dtype), np.abs(randn(C, seed=5, dtype=dtype)) + 0.5
    assert_same(
        cpu.update_running_stats(rm, rv, cache["mean"], cache["var"], cache["m"]),
        gpu.update_running_stats(dev(rm), dev(rv), cache_g["mean"], cache_g["var"], cache_g["m"]),
        dtype,
    )
    assert_same(
        cpu.forward_eval(x, gamma, beta, rm, rv, 1e-5),
        gpu.forward_eval(dev(x), dev(gamma), dev(beta), dev(rm), dev(rv), 1e-5),
        dtype,
    )
    assert_same(
        cpu.backward_eval(dy, x, gamma, rm, rv, 1e-5),
        gpu.backward_eval(dev(dy), dev(x), dev(gamma), dev(rm), dev(rv), 1e-5),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy(dtype, shape, weighted):
    cpu, gpu = cpu_and_cuda("softmax_cross_entropy")
    z = randn(*shape, dtype=dtype) * 5
    labels = np.random.default_rng(1).integers(0, shape[1], (shape[0],) + shape[2:])
    w = np.array([0.5, 2.0, 1.0]) if weighted else None
    loss, probs = cpu.forward(z, labels, w)
    loss_g, probs_g = gpu.forward(dev(z), dev(labels), w)
    assert_same((loss, probs), (loss_g, probs_g), dtype)
    assert_same(cpu.softmax(z), gpu.softmax(dev(z)), dtype)
    assert_same(cpu.backward(probs, labels, w), gpu.backward(probs_g, labels, w), dtype)  # labels from the host too


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse(dtype):
    cpu, gpu = cpu_and_cuda("mse")
    pred, target = randn(3, 4, dtype=dtype), randn(3, 4, seed=1, dtype=dtype)
    assert_same(cpu.forward(pred, target), gpu.forward(dev(pred), dev(target)), dtype)
    assert_same(cpu.backward(pred, target), gpu.backward(dev(pred), dev(target)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_apply(dtype):
    cpu, gpu = cpu_and_cuda("dropout")
    x = randn(3, 4, dtype=dtype)
    mask = np.random.default_rng(0).random((3, 4)) >= 0.3
    assert_same(cpu.forward(x, mask, 0.3), gpu.forward(dev(x), dev(mask), 0.3), dtype)
    assert_same(cpu.backward(x, mask, 0.3), gpu.backward(dev(x), dev(mask), 0.3), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_yolo_loss(dtype):
    cpu, gpu = cpu_and_cuda("yolo_loss")
    S, B, C, N = 2, 2, 2, 2
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 1, (N, S * S * (5 * B + C))).astype(dtype)
    target = np.zeros((N, S, S, 5 + C), dtype=dtype)
    target[..., :4] = rng.uniform(0.1, 0.9, (N, S, S, 4))
    target[..., 4] = rng.integers(0, 2, (N, S, S))
    target[..., 5] = target[..., 4]  # class 0, one-hot where there is an object
    loss, terms, responsible, iou = cpu.forward(pred, target, S, B, C)
    got = gpu.forward(dev(pred), dev(target), S, B, C)
    assert_same((loss, terms, responsible, iou), got, dtype)
    assert_same(
        cpu.backward(pred, target, responsible, iou, S, B, C),
        gpu.backward(dev(pred), dev(target), got[2], got[3], S, B, C),
        dtype,
    )
    assert cpu.invalid_target_cell(target) is None and gpu.invalid_target_cell(dev(target)) is None
    target[1, 0, 1, 4] = 0.5
    assert cpu.invalid_target_cell(target) == gpu.invalid_target_cell(dev(target)) == (1, 0, 1, cpu.BAD_OBJ)
    target[1, 0, 1, 4:] = (1, 1, 1)  # multi-hot classes
    assert cpu.invalid_target_cell(target) == gpu.invalid_target_cell(dev(target)) == (1, 0, 1, cpu.BAD_CLASS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov, weight_decay", [(0.0, False, 0.0), (0.9, False, 0.1), (0.9, True, 0.0)])
def test_sgd_and_adam_steps(dtype, momentum, nesterov, weight_decay):
    sgd, sgd_g = cpu_and_cuda("sgd")
    p, g, buf = randn(7, dtype=dtype), randn(7, seed=1, dtype=dtype), randn(7, seed=2, dtype=dtype)
    p_g, buf_g = dev(p), dev(buf) if momentum else None
    for first_step in (True, False):
        sgd.step(p, g, buf if momentum else None, 0.1, momentum, weight_decay, nesterov, first_step)
        sgd_g.step(p_g, dev(g), buf_g, 0.1, momentum, weight_decay, nesterov, first_step)
        assert_same(p, p_g, dtype)
    adam, adam_g = cpu_and_cuda("adam")
    m, v = np.zeros(7, dtype), np.zeros(7, dtype)
    m_g, v_g = dev(m), dev(v)
    for t, decoupled in ((1, False), (2, False), (3, True), (4, True)):  # Adam, then AdamW's update
        adam.step(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, weight_decay, t, decoupled)
        adam_g.step(p_g, dev(g), m_g, v_g, 1e-2, 0.9, 0.999, 1e-8, weight_decay, t, decoupled)
        assert_same((p, m, v), (p_g, m_g, v_g), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_smooth_l1_and_bce_with_logits(dtype, reduction):
    pred, target = 3 * randn(3, 4, dtype=dtype), randn(3, 4, seed=1, dtype=dtype)
    probs = np.random.default_rng(2).random((3, 4)).astype(dtype)
    dy = randn(3, 4, seed=3, dtype=dtype) if reduction == "none" else None
    dy_g = dev(dy) if dy is not None else None
    cpu, gpu = cpu_and_cuda("smooth_l1")
    assert_same(cpu.forward(pred, target, 0.5, reduction), gpu.forward(dev(pred), dev(target), 0.5, reduction), dtype)
    assert_same(
        cpu.backward(pred, target, 0.5, reduction, dy),
        gpu.backward(dev(pred), dev(target), 0.5, reduction, dy_g),
        dtype,
    )
    cpu, gpu = cpu_and_cuda("bce_with_logits")
    p = np.array([1.0, 2.0, 0.5, 3.0])
    assert_same(cpu.forward(pred, probs, p, reduction), gpu.forward(dev(pred), dev(probs), p, reduction), dtype)
    assert_same(
        cpu.backward(pred, probs, p, reduction, dy), gpu.backward(dev(pred), dev(probs), p, reduction, dy_g), dtype
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_multibox_loss(dtype):
    cpu, gpu = cpu_and_cuda("multibox_loss")
    rng = np.random.default_rng(0)
    pred = (2 * rng.standard_normal((2, 7, 6))).astype(dtype)
    target = np.zeros((2, 5, 6), dtype)
    target[:, :4] = rng.standard_normal((2, 4, 6))
    target[:, 4] = [[0, 2, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    ce, probs = cpu.confidence(pred, target)
    ce_g, probs_g = gpu.confidence(dev(pred), dev(target))
    assert_same((ce, probs), (ce_g, probs_g), dtype)
    selected = cpu.hard_negatives(ce, target, 3)
    selected_g = gpu.hard_negatives(ce_g, dev(target), 3)
    np.testing.assert_array_equal(selected, host(selected_g))
    result = cpu.forward(pred, target, ce, selected, 0.5)
    assert_same(result, gpu.forward(dev(pred), dev(target), ce_g, selected_g, 0.5), dtype)
    assert_same(
        cpu.backward(pred, target, probs, selected, result[3], 0.5),
        gpu.backward(dev(pred), dev(target), probs_g, selected_g, result[3], 0.5),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_pool_and_roi_align(dtype, aligned):
    rois = np.array([[0, 1.0, 1.0, 6.0, 5.0], [1, -1.0, 2.0, 9.0, 7.0], [0, 3.0, 3.0, 3.5, 4.0]], dtype)
    x = randn(2, 2, 4, 4, dtype=dtype)
    cpu, gpu = cpu_and_cuda("roi_pool")
    (y, argmax), (y_g, argmax_g) = cpu.forward(x, rois, (2, 2), 0.5), gpu.forward(dev(x), dev(rois), (2, 2), 0.5)
    assert_same(y, y_g, dtype)
    np.testing.assert_array_equal(argmax, host(argmax_g))
    dy = randn(*y.shape, seed=1, dtype=dtype)
    assert_same(cpu.backward(dy, rois, argmax, x.shape), gpu.backward(dev(dy), dev(rois), argmax_g, x.shape), dtype)
    cpu, gpu = cpu_and_cuda("roi_align")
    args = ((2, 3), 0.5, -1 if aligned else 2, aligned)
    y = cpu.forward(x, rois, *args)
    assert_same(y, gpu.forward(dev(x), dev(rois), *args), dtype)
    dy = randn(*y.shape, seed=2, dtype=dtype)
    geometry = args[1:]
    assert_same(cpu.backward(dy, rois, x.shape, *geometry), gpu.backward(dev(dy), dev(rois), x.shape, *geometry), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_warp_affine(dtype):
    from minidl.data.transforms import RandomAffine

    cpu, gpu = cpu_and_cuda("warp_affine")
    N, C, H, W = 2, 2, 3, 4
    theta = RandomAffine(30, translate=(0.3, 0.3), scale=(0.7, 1.3)).theta(N, H, W, np.random.default_rng(0))
    theta = theta.astype(dtype)
    x, dy = randn(N, C, H, W, dtype=dtype), randn(N, C, H, W, seed=1, dtype=dtype)
    assert_same(cpu.forward(x, theta), gpu.forward(dev(x), dev(theta)), dtype)
    assert_same(cpu.backward(dy, theta), gpu.backward(dev(dy), dev(theta)), dtype)


def test_dropout_mask_keeps_about_1_minus_p_and_follows_the_generator():
    _, gpu = cpu_and_cuda("dropout")
    a = gpu.make_mask((50, 40), 0.25, np.random.default_rng(7)).copy_to_host()
    b = gpu.make_mask((50, 40), 0.25, np.random.default_rng(7)).copy_to_host()
    assert a.dtype == np.bool_ and a.shape == (50, 40)
    np.testing.assert_array_equal(a, b)
    assert 0.7 < a.mean() < 0.8
