"""minidl.profile: the FLOP counts against their formulas, the parts adding up to the step,
the model left as it was. No time is asserted (speed is measured in benchmarks/)."""

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.profiler import forward_flops
from tests.helpers import assert_same_snapshot, labels, lenet5, raises, randn, snapshot


def test_forward_flops_follow_the_formulas():
    assert forward_flops(nn.Linear(5, 3), (4, 5), (4, 3)) == 2 * 4 * 5 * 3
    conv = nn.Conv2d(3, 8, (3, 5), padding=1)
    assert forward_flops(conv, (2, 3, 10, 12), (2, 8, 10, 10)) == 2 * 2 * 8 * 10 * 10 * 3 * 3 * 5
    up = nn.ConvTranspose2d(4, 6, 2, stride=2)
    assert forward_flops(up, (2, 4, 5, 5), (2, 6, 10, 10)) == 2 * 2 * 4 * 5 * 5 * 6 * 2 * 2
    assert forward_flops(nn.MaxPool2d(2), (2, 3, 8, 8), (2, 3, 4, 4)) == 2 * 3 * 4 * 4 * 4
    assert forward_flops(nn.BatchNorm2d(3), (2, 3, 4, 4), (2, 3, 4, 4)) == 8 * 2 * 3 * 4 * 4


def test_lenet_training_profile_adds_up_and_leaves_the_model_as_it_was():
    minidl.seed(0)
    model = lenet5()
    x, y = randn(8, 1, 28, 28, dtype=np.float32), labels(8, 10)
    model(x)  # a cache and gradients that must survive
    model.backward(np.ones((8, 10), np.float32))
    before = snapshot(model)
    prof = minidl.profile(model, x, nn.SoftmaxCrossEntropy(), y, steps=3)
    assert_same_snapshot(before, snapshot(model))
    assert model.training
    names = [r["name"] for r in prof.rows]
    assert names == [str(k) for k in range(12)] + ["loss", "other"]
    parts = sum(r["forward_ms"] + r["backward_ms"] for r in prof.rows)
    assert parts == pytest.approx(prof.step_ms, rel=1e-9)
    assert all(r["forward_ms"] >= 0 and r["backward_ms"] >= 0 for r in prof.rows)  # "other" included
    assert sum(r["share"] for r in prof.rows) == pytest.approx(1.0)
    # conv2: forward, then dx and dw, three products of the same size; conv1, the first
    # layer, as in fit: no gradient for the images (backward_params), so forward and dw
    conv1, conv2 = prof.rows[0], prof.rows[3]
    assert conv1["flops"] == 2 * 2 * 8 * 6 * 28 * 28 * 1 * 5 * 5  # 5 x 5, padding 2: 28 x 28 outputs
    assert conv2["flops"] == 3 * 2 * 8 * 16 * 10 * 10 * 6 * 5 * 5
    # LeNet-5's training step on a batch of 64 is about 147 MFLOP (the counts scale with N)
    assert sum(r["flops"] for r in prof.rows) * 64 / 8 == pytest.approx(146.6e6, rel=0.01)
    assert "step:" in str(prof) and "GFLOP/s" in str(prof)


def test_inference_profile_and_plot():
    pytest.importorskip("matplotlib")
    model = lenet5()
    model.train()
    prof = minidl.profile(model, randn(4, 1, 28, 28, dtype=np.float32), steps=2)
    assert model.training  # the mode is restored
    assert all(r["backward_ms"] == 0 for r in prof.rows)
    assert prof.rows[0]["flops"] == 2 * 4 * 6 * 28 * 28 * 25
    assert prof.plot() is not None


def test_shared_layers_are_one_row_and_errors():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    prof = minidl.profile(model, randn(3, 4, dtype=np.float32), steps=2)
    assert [r["name"] for r in prof.rows] == ["0", "1", "other"]
    assert prof.rows[0]["flops"] == 2 * (2 * 3 * 4 * 4)  # called twice per step
    with raises(ValueError, "profile", "together"):
        minidl.profile(model, randn(3, 4, dtype=np.float32), loss_fn=nn.MSELoss())
    with raises(ValueError, "profile", "steps"):
        minidl.profile(model, randn(3, 4, dtype=np.float32), steps=0)


def test_machine_measurements_and_the_roofline_plot():
    pytest.importorskip("matplotlib")
    from minidl.profiler import gemm_peak, memory_bandwidth

    assert gemm_peak(n=64, repeats=2) > 0 and memory_bandwidth(megabytes=4, repeats=2) > 0
    prof = minidl.profile(lenet5(), randn(2, 1, 28, 28, dtype=np.float32), steps=1)
    ax = prof.roofline(100.0, 10.0)
    assert len(ax.lines) == 2 + sum(r["flops"] > 0 for r in prof.rows)  # the roof, the ridge, a point per layer
    prof.roofline(100.0, 10.0, ax, roof=False)
    assert len(ax.lines) == 2 + 2 * sum(r["flops"] > 0 for r in prof.rows)
    with raises(ValueError, "gemm_peak", "n"):
        gemm_peak(n=0)
