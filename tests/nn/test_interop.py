"""minidl.interop: to_torch, from_torch and to_onnx give the same outputs (and, for
PyTorch, the same gradients) as the minidl model, for every layer both sides have."""

import numpy as np
import pytest

import minidl
from minidl import interop, nn
from tests.helpers import raises, randn, random_dy

torch = pytest.importorskip("torch", reason="PyTorch is needed for the interop tests (pip install torch)")

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}


def every_layer(dropout=0.25):
    """(N, 2, 8, 8) -> (N, 1, 2, 3): every layer minidl shares with PyTorch, and both skips."""
    minidl.seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh())),
        nn.Concat(nn.Sequential(nn.Conv2d(4, 2, 1), nn.Sigmoid())),  # 6 channels
        nn.MaxPool2d(2),  # 4x4
        nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1),  # 8x8
        nn.AvgPool2d(3, stride=2, padding=1),  # 4x4
        nn.Upsample(scale_factor=(1, 2)),  # 4x8
        nn.LeakyReLU(0.1),
        nn.Dropout(dropout),
        nn.Flatten(),  # 96
        nn.Linear(96, 12),
        nn.BatchNorm1d(12),
        nn.Linear(12, 6, bias=False),
        nn.Unflatten(1, (1, 2, 3)),
    )


def trained_batchnorm(model, dtype):
    """Running statistics that are not the initial zeros and ones."""
    model.to(dtype).train()
    for seed in range(3):
        model(randn(5, 2, 8, 8, seed=seed, dtype=dtype) * 2 + 1)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_torch_same_outputs_in_eval_mode(dtype):
    model = trained_batchnorm(every_layer(), dtype).eval()
    theirs = interop.to_torch(model)
    assert not theirs.training and next(theirs.parameters()).dtype == (
        torch.float64 if dtype == np.float64 else torch.float32
    )
    x = randn(3, 2, 8, 8, seed=9, dtype=dtype)
    np.testing.assert_allclose(model(x), theirs(torch.from_numpy(x)).detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_torch_same_outputs_and_gradients_in_training_mode(dtype):
    """Without dropout (the two libraries draw different masks): batch statistics, the
    running statistics they update, and every parameter's gradient."""
    model = trained_batchnorm(every_layer(dropout=0.0), dtype)
    theirs = interop.to_torch(model)
    assert theirs.training
    x, dy = randn(4, 2, 8, 8, seed=3, dtype=dtype), random_dy((4, 1, 2, 3), seed=4).astype(dtype)
    y_theirs = theirs(torch.from_numpy(x))
    y_theirs.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(model(x), y_theirs.detach().numpy(), **TOL[dtype])
    model.backward(dy)
    loose = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else TOL[dtype]
    for (key, p), (key_t, q) in zip(model.named_parameters(), theirs.named_parameters()):
        assert key == key_t
        np.testing.assert_allclose(p.grad, q.grad.numpy(), err_msg=key, **loose)
    for key, value in theirs.state_dict().items():
        if "running" in key:
            np.testing.assert_allclose(model.state_dict()[key], value.numpy(), err_msg=key, **TOL[dtype])


def test_from_torch_loads_weights_and_statistics_and_ignores_num_batches_tracked():
    T = torch.nn
    torch.manual_seed(0)
    theirs = T.Sequential(
        T.Conv2d(1, 3, 3, padding=1),
        T.BatchNorm2d(3),
        T.ReLU(),
        T.MaxPool2d(2),
        T.Sequential(T.Conv2d(3, 3, (1, 3), padding=(0, 1), bias=False), T.LeakyReLU(0.2)),
        T.Flatten(),
        T.Dropout(0.1),
        T.Linear(27, 4),
    ).double()
    theirs(torch.randn(6, 1, 6, 6, dtype=torch.float64))  # running statistics, num_batches_tracked = 1
    theirs.eval()
    model = interop.from_torch(theirs)
    assert not model.training and model[0].weight.dtype == np.float64
    assert isinstance(model[4], nn.Sequential) and model[4][0].bias is None
    x = randn(2, 1, 6, 6, seed=5)
    np.testing.assert_allclose(model(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-10)
    back = interop.to_torch(model)
    for key, value in theirs.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(back.state_dict()[key].numpy(), value.numpy(), err_msg=key)


def test_round_trip_of_every_layer():
    model = trained_batchnorm(every_layer(), np.float32).eval()
    again = interop.from_torch(interop.to_torch(model))
    assert repr(again) == repr(model)
    x = randn(2, 2, 8, 8, dtype=np.float32)
    np.testing.assert_array_equal(again(x), model(x))


def test_unsupported_layers_and_settings_are_named():
    T = torch.nn
    with raises(ValueError, "from_torch: module[1] is a torch.nn.GELU, which minidl does not have"):
        interop.from_torch(T.Sequential(T.Linear(2, 2), T.GELU()))
    with raises(ValueError, "from_torch: module[0] (Conv2d) has dilation=(2, 2), which minidl does not implement"):
        interop.from_torch(T.Sequential(T.Conv2d(1, 1, 3, dilation=2)))
    with raises(ValueError, "from_torch: module[0][1] (MaxPool2d) has dilation, ceil_mode or return_indices"):
        interop.from_torch(T.Sequential(T.Sequential(T.ReLU(), T.MaxPool2d(2, ceil_mode=True))))
    with raises(ValueError, "from_torch: module[0] (Upsample) has size=None, mode='bilinear'"):
        interop.from_torch(T.Sequential(T.Upsample(scale_factor=2, mode="bilinear")))
    with raises(TypeError, "from_torch: expected a torch.nn.Module, got list"):
        interop.from_torch([T.ReLU()])
    with raises(ValueError, "to_torch: model[1] is a SoftmaxCrossEntropy, which has no PyTorch counterpart here"):
        interop.to_torch(nn.Sequential(nn.Linear(2, 2), nn.SoftmaxCrossEntropy()))


def mlp():
    minidl.seed(1)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(128, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(), nn.Linear(16, 3)
    )


@pytest.mark.parametrize(
    "make, dtype",
    [(every_layer, np.float32), (mlp, np.float64)],  # onnxruntime has no float64 Conv on the CPU
    ids=["every-layer-float32", "mlp-float64"],
)
def test_to_onnx_same_outputs_in_onnxruntime(tmp_path, make, dtype):
    pytest.importorskip("onnx", reason="the onnx package is needed to write ONNX (pip install -e '.[onnx]')")
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime is needed to run the ONNX file (pip install -e '.[onnx]')"
    )
    model = trained_batchnorm(make(), dtype)
    path = interop.to_onnx(model, tmp_path / "model.onnx", (1, 2, 8, 8))
    assert model.training  # the export ran in eval mode and put the mode back
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = randn(5, 2, 8, 8, seed=6, dtype=dtype)  # another batch size than the one exported with
    (y,) = session.run(["y"], {"x": x})
    np.testing.assert_allclose(y, model.eval()(x), **TOL[dtype])


def test_to_onnx_refuses_what_it_cannot_write(tmp_path):
    pytest.importorskip("onnx", reason="the onnx package is needed to write ONNX (pip install -e '.[onnx]')")
    with raises(ValueError, "to_onnx: model[1][0] is a SoftmaxCrossEntropy, which has no ONNX operator here"):
        interop.to_onnx(
            nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.SoftmaxCrossEntropy())), tmp_path / "m.onnx", (1, 2)
        )
    with raises(ValueError, "Linear: expected an input of shape (N, 2)"):
        interop.to_onnx(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.onnx", (1, 3))
