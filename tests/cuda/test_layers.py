"""Layers, models and optimizers on "cuda": gradients against finite differences (tiny
shapes, float64), against the CPU's (every layer), training steps, devices and state."""

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.gradcheck import check_layer
from tests.helpers import randn

from .helpers import assert_same, dev, host, tiny_lenet

F64 = np.float64


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Linear(3, 2), (2, 3)),
        (nn.Conv2d(1, 2, kernel_size=2, stride=1, padding=1), (1, 1, 3, 3)),
        (nn.Sequential(nn.BatchNorm2d(2), nn.Tanh()), (2, 2, 1, 2)),
        (nn.Sequential(nn.MaxPool2d(2, stride=1), nn.Sigmoid()), (1, 1, 3, 3)),
    ],
    ids=["linear", "conv2d", "batchnorm+tanh", "maxpool+sigmoid"],
)
def test_device_gradients_match_finite_differences(layer, shape):
    """The full check: each finite difference is a forward pass on the device."""
    report = check_layer(layer, randn(*shape, dtype=F64), device="cuda")
    assert report.ok, report


def every_layer_model():
    """One model with every layer kind: the device's gradients are compared with the CPU's
    (a full finite-difference check of it on the simulator would take minutes)."""
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, bias=False),  # a bias before batch norm has gradient 0
        nn.BatchNorm2d(3),
        nn.LeakyReLU(0.1),
        nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh())),
        nn.Concat(nn.Sequential(nn.AvgPool2d(2), nn.Upsample(2))),
        nn.ConvTranspose2d(6, 2, 3, stride=2, padding=1, output_padding=1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(2 * 4 * 4, 6, bias=False),
        nn.BatchNorm1d(6),
        nn.Sigmoid(),
        nn.ReLU(),
        nn.Linear(6, 4),
        nn.Unflatten(1, (1, 2, 2)),
        nn.Flatten(),
    )


@pytest.mark.parametrize("dtype, training", [(np.float32, True), (np.float64, False)])
def test_every_layer_equals_the_cpu(dtype, training):
    minidl.seed(0)
    cpu = every_layer_model().to(dtype).train(training)
    gpu = every_layer_model().to(dtype).train(training)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    cpu[8].p = gpu[8].p = 0.0  # dropout: the targets draw different masks (tested below)
    x, dy = randn(2, 2, 4, 4, dtype=dtype), randn(2, 4, seed=1, dtype=dtype)
    assert_same(cpu(x), gpu(dev(x)), dtype, loose=True)
    assert_same(cpu.backward(dy), gpu.backward(dev(dy)), dtype, loose=True)
    for (key, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert_same(p.grad, q.grad, dtype, key, loose=True)
    assert_same(cpu.state_dict(), gpu.state_dict(), dtype, loose=True)  # running statistics too


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.Conv2d(1, 2, 2), (2, 1, 3, 3)),
        (lambda: nn.ConvTranspose2d(1, 2, 2, stride=2), (2, 1, 2, 2)),
        (lambda: nn.Linear(3, 2), (2, 3)),
    ],
    ids=["conv2d", "conv_transpose2d", "linear"],
)
def test_backward_params_on_the_device_gives_the_cpus_gradients(make, shape):
    """The first layer of a training step skips dx on the GPU too (its op returns None)."""
    minidl.seed(0)
    cpu, gpu = nn.Sequential(make()).to(F64), nn.Sequential(make()).to(F64)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    x = randn(*shape, dtype=F64)
    dy = randn(*cpu(x).shape, seed=1, dtype=F64)
    cpu.backward(dy)
    gpu(dev(x))
    assert gpu.backward_params(dev(dy)) is None
    for (key, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert_same(p.grad, q.grad, F64, key)


def test_two_adam_steps_of_a_lenet_end_with_the_cpus_parameters():
    """(SGD's and Adam's single steps are compared op by op in test_ops.py.)"""
    minidl.seed(1)
    cpu = tiny_lenet().to(F64)
    gpu = tiny_lenet().to(F64)
    gpu.load_state_dict(cpu.state_dict())
    assert gpu.to("cuda") is gpu
    x, labels = randn(2, 1, 12, 12, dtype=F64), np.array([0, 2])
    for model in (cpu, gpu):
        loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
        for _ in range(2):
            opt.zero_grad()
            loss = loss_fn(model(dev(x) if model is gpu else x), labels)
            model.backward(loss_fn.backward())
            opt.step()
        model.final_loss = loss
    assert_same(cpu.final_loss, gpu.final_loss, F64)
    assert_same(cpu.state_dict(), gpu.state_dict(), F64)


def test_frozen_layers_and_parameter_groups_on_the_device():
    """A frozen first layer stays bit-identical on the GPU, and AdamW with two parameter
    groups takes the CPU's steps; the state dict comes back to the host."""
    minidl.seed(3)
    cpu = tiny_lenet().to(F64)
    gpu = tiny_lenet().to(F64)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    x, labels = randn(2, 1, 12, 12, dtype=F64), np.array([1, 2])
    for model in (cpu, gpu):
        model[0].requires_grad_(False)
        groups = [{"params": model[3].parameters(), "lr": 1e-3}, {"params": model[11].parameters()}]
        loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.AdamW(groups, lr=1e-2)
        for _ in range(2):
            opt.zero_grad()
            loss_fn(model(dev(x) if model is gpu else x), labels)
            model.backward(loss_fn.backward())
            opt.step()
        model.opt_state = opt.state_dict()
    assert_same(cpu.state_dict(), gpu.state_dict(), F64)
    assert_same(cpu.opt_state, gpu.opt_state, F64)
    np.testing.assert_array_equal(gpu.state_dict()["0.weight"], cpu.state_dict()["0.weight"])
    assert not host(gpu[0].weight.grad).any()


@pytest.mark.parametrize("layer", [nn.RoIPool(2, 0.5), nn.RoIAlign(2, 0.5, sampling_ratio=2, aligned=True)])
def test_roi_layers_on_the_device_take_host_or_device_rois(layer):
    x, rois = randn(2, 2, 4, 4), np.array([[0, 1.0, 1.0, 6.0, 5.0], [1, 0.0, 2.0, 7.0, 7.0]])
    y = layer(x, rois)
    dx = layer.backward(np.ones_like(y))
    layer.to("cuda")
    for r in (rois, dev(rois)):
        y_g = layer(dev(x), r)
        assert_same(y, y_g, F64)
        assert_same(dx, layer.backward(dev(np.ones_like(y))), F64)


def test_multibox_loss_and_a_mask_rcnn_on_the_device_equal_the_cpu():
    from minidl.detectors import MaskRCNN

    rng = np.random.default_rng(0)
    pred, target = randn(2, 7, 5), np.zeros((2, 5, 5))
    target[:, :4] = rng.standard_normal((2, 4, 5))
    target[:, 4] = [[0, 1, 0, 0, 0], [2, 0, 0, 0, 1]]
    loss_fn = nn.MultiBoxLoss()
    loss, dpred = loss_fn(pred, target), loss_fn.backward()
    for t in (target, dev(target)):  # the target from either side
        assert loss_fn(dev(pred), t) == pytest.approx(loss, rel=1e-12)
        assert_same(dpred, loss_fn.backward(), F64)
    minidl.seed(0)
    model = MaskRCNN(
        nn.Conv2d(1, 2, 3, padding=1), nn.RoIAlign(2, 0.5, 2, True), nn.Flatten(), nn.Conv2d(2, 3, 1), 8, 2
    )
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x, rois = randn(2, 1, 4, 4), np.array([[0, 1.0, 1.0, 6.0, 5.0], [1, 0.0, 2.0, 7.0, 7.0]])
    outputs = model(x, rois)
    dys = [randn(*y.shape, seed=k) for k, y in enumerate(outputs)]
    dx = model.backward(*dys)
    model.to("cuda")
    assert_same(outputs, model(dev(x), rois), F64)
    assert_same(dx, model.backward(*(dev(dy) for dy in dys)), F64)


def test_fit_evaluate_predict_move_batches_and_return_host_results():
    minidl.seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).to("cuda")
    x = randn(6, 1, 2, 2, dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    history = minidl.fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        val_data=(x, y),
        epochs=2,
        batch_size=4,
        verbose=False,
    )
    assert len(history) == 2 and isinstance(history.val_loss[-1], float)
    out = minidl.predict(model, x, batch_size=4)
    assert isinstance(out, np.ndarray) and out.shape == (6, 3)
    assert minidl.evaluate(model, nn.SoftmaxCrossEntropy(), (x, y))["accuracy"] is not None


def test_dropout_masks_are_reproducible_with_seed_and_drop_about_p():
    layer = nn.Dropout(0.5).to("cuda")
    x = dev(np.ones((4, 64), np.float32))
    minidl.seed(3)
    a = host(layer(x))
    b = host(layer(x))
    minidl.seed(3)
    np.testing.assert_array_equal(host(layer(x)), a)
    assert not np.array_equal(a, b)  # a fresh mask every pass
    assert set(np.unique(a)) <= {0.0, 2.0} and 0.3 < (a == 0).mean() < 0.7
    dx = host(layer.backward(dev(np.ones((4, 64), np.float32))))
    np.testing.assert_array_equal(dx, a)  # backward uses the last mask (the third pass drew a again)


def test_save_load_and_to_cpu_round_trips(tmp_path):
    minidl.seed(4)
    model = tiny_lenet()
    before = model.state_dict()
    model.to("cuda")
    path = minidl.save(model, tmp_path / "m.npz")
    for key, value in model.state_dict().items():
        assert isinstance(value, np.ndarray)
        np.testing.assert_array_equal(value, before[key])
    other = tiny_lenet().to("cuda")
    minidl.load(other, path)
    assert minidl.device_of(other[0].weight.data) == "cuda"
    other.to("cpu")
    assert all(layer.device == "cpu" for layer in other)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    assert isinstance(other[0].weight.data, np.ndarray) and isinstance(other[0].weight.grad, np.ndarray)


def test_host_input_to_a_device_layer_and_the_reverse_are_clear_errors():
    model = nn.Sequential(nn.Linear(3, 2)).to("cuda")
    with pytest.raises(TypeError, match=r"Sequential\[0\] > Linear: the input is on 'cpu' but the layer is on 'cuda'"):
        model(np.zeros((1, 3), np.float32))
    relu = nn.ReLU()
    with pytest.raises(TypeError, match="ReLU: the input is on 'cuda' but the layer is on 'cpu'"):
        relu(dev(np.zeros(3, np.float32)))
    linear = nn.Linear(3, 2).to("cuda")
    linear(dev(np.zeros((1, 3), np.float32)))
    with pytest.raises(TypeError, match="Linear: the upstream gradient dy is on 'cpu' but the layer is on 'cuda'"):
        linear.backward(np.zeros((1, 2), np.float32))


def test_losses_take_targets_from_either_side_and_refuse_nan_on_the_device():
    logits = dev(randn(3, 4, dtype=np.float32))
    loss_fn = nn.SoftmaxCrossEntropy()
    a = loss_fn(logits, np.array([0, 1, 3]))
    b = loss_fn(logits, dev(np.array([0, 1, 3])))
    assert isinstance(a, float) and a == b
    assert minidl.device_of(loss_fn.backward()) == "cuda"
    with pytest.raises(
        ValueError, match=r"labels must be class indices in \[0, K\) = \[0, 4\), got values from 0 to 7"
    ):
        loss_fn(logits, dev(np.array([0, 7, 3])))
    bad = randn(3, 4, dtype=np.float32)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"found NaN or inf in the logits \(1 of 12 values\)"):
        loss_fn(dev(bad), np.array([0, 1, 3]))
    mse = nn.MSELoss()
    pred = randn(2, 3, dtype=np.float32)
    assert mse(dev(pred), pred.astype(np.float64)) == 0.0


def test_optimizer_state_follows_the_model_to_the_device():
    minidl.seed(5)
    cpu = nn.Linear(2, 2)
    gpu = nn.Linear(2, 2)
    gpu.load_state_dict(cpu.state_dict())
    opt_cpu, opt_gpu = optim.SGD(cpu.parameters(), 0.1, momentum=0.9), optim.SGD(gpu.parameters(), 0.1, momentum=0.9)
    x = randn(3, 2, dtype=np.float32)
    for model, opt in ((cpu, opt_cpu), (gpu, opt_gpu)):
        model(x)
        model.backward(np.ones((3, 2), np.float32))
        opt.step()  # one step on the CPU ...
    gpu.to("cuda")
    for model, opt in ((cpu, opt_cpu), (gpu, opt_gpu)):
        opt.zero_grad()
        model(dev(x) if model is gpu else x)
        model.backward(dev(np.ones((3, 2), np.float32)) if model is gpu else np.ones((3, 2), np.float32))
        opt.step()  # ... the next one on the GPU, the velocity moved along
    assert minidl.device_of(opt_gpu.state[0]["momentum_buffer"]) == "cuda"
    assert_same(cpu.state_dict(), gpu.state_dict(), np.float32, loose=True)


def test_nothing_silent_on_the_device(tmp_path):
    """The robustness rules hold on "cuda": the state check, batch norm refusing a NaN
    batch, the optimizer refusing a NaN gradient, anomaly mode naming the layer, and a
    checkpoint with the optimizer's device state."""
    minidl.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).to("cuda")
    opt = optim.Adam(model.parameters())
    x = randn(5, 3, dtype=np.float32)
    model(dev(x))
    model.backward(dev(np.ones((5, 2), np.float32)))
    opt.step()
    minidl.save(model, tmp_path / "c.npz", optimizer=opt, epoch=1)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="BatchNorm1d: the batch's mean or variance is NaN"):
        model(dev(bad))
    with minidl.detect_anomaly(), pytest.raises(minidl.AnomalyError, match="input holds 1 NaN"):
        model(dev(bad))
    model[2].weight.data = dev(np.full((2, 4), np.inf, np.float32))
    with minidl.detect_anomaly(), pytest.raises(minidl.AnomalyError, match="layer '2' \\(Linear\\)"):
        model(dev(x))
    model[0].bias.data = dev(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="bias has shape \\(3,\\), expected \\(4,\\)"):
        model(dev(x))
    model[0].bias.data = dev(np.zeros(4, np.float32))
    model[0].weight.grad = dev(np.full((4, 3), np.nan, np.float32))
    with pytest.raises(FloatingPointError, match="the gradient of '0.weight'"):
        opt.step()
    minidl.load(model, tmp_path / "c.npz", optimizer=opt)
    assert opt.state[0]["step"] == 1 and minidl.device_of(opt.state[0]["exp_avg"]) == "cuda"
