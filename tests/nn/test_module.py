"""The layer machinery: parameter discovery and order, modes, state dicts, save/load,
summary, the dispatch seam and the global RNG. Uses small layers defined here so that it
tests the base classes alone."""

import sys
import types

import numpy as np
import pytest

import minidl
from minidl import dispatch, nn
from minidl.nn.init import bias_uniform, fan_in, kaiming_uniform


class Affine(nn.Layer):
    """y = x * weight + bias, element-wise over features (N, F)."""

    def __init__(self, features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(kaiming_uniform((features, 1)))
        self.bias = nn.Parameter(bias_uniform(features, 1)) if bias else None
        self._x = None

    def forward(self, x):
        self._x = x
        y = x * self.weight.data[:, 0]
        return y + self.bias.data if self.bias is not None else y

    def backward(self, dy):
        self.weight.grad += (dy * self._x).sum(axis=0)[:, None]
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=0)
        return dy * self.weight.data[:, 0]

    def extra_repr(self):
        return f"{self.weight.shape[0]}"


class Stats(nn.Layer):
    """A layer with buffers, like batch norm's running statistics."""

    buffer_names = ("running_mean",)

    def __init__(self, features):
        super().__init__()
        self.gamma = nn.Parameter(np.ones(features, dtype=np.float32))
        self.running_mean = np.zeros(features, dtype=np.float32)

    def forward(self, x):
        if self.training:
            self.running_mean = 0.9 * self.running_mean + 0.1 * x.mean(axis=0)
        self._x = x
        return x * self.gamma.data

    def backward(self, dy):
        self.gamma.grad += (dy * self._x).sum(axis=0)
        return dy * self.gamma.data


def make_model():
    minidl.seed(0)
    return nn.Sequential(Affine(3), Stats(3), nn.Sequential(Affine(3, bias=False), Affine(3)))


def test_parameters_in_layer_order_weight_before_bias():
    model = make_model()
    keys = [k for k, _ in model.named_parameters()]
    assert keys == ["0.weight", "0.bias", "1.gamma", "2.0.weight", "2.1.weight", "2.1.bias"]
    assert model.parameters()[0] is model[0].weight


def test_state_dict_keys_buffers_and_copies():
    model = make_model()
    state = model.state_dict()
    # PyTorch's order: each layer's parameters, then its buffers, then the next layer's
    assert list(state) == ["0.weight", "0.bias", "1.gamma", "1.running_mean", "2.0.weight", "2.1.weight", "2.1.bias"]
    state["0.weight"][...] = 7  # a copy: the model is not changed
    assert not np.any(model[0].weight.data == 7)


def test_train_eval_propagate_to_children():
    model = make_model()
    assert model.eval() is model
    assert not model.training and not model[2][1].training
    model.train()
    assert model[2][1].training


def test_backward_accumulates_and_zero_grad_clears():
    model = make_model()
    x = np.ones((2, 3), dtype=np.float32)
    for _ in range(2):
        model.backward(np.ones_like(model(x)))
    first = make_model()
    first.backward(np.ones_like(first(x)))
    np.testing.assert_allclose(model[0].bias.grad, 2 * first[0].bias.grad, rtol=1e-6)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_parameter_grad_follows_replaced_data():
    p = nn.Parameter(np.zeros((2, 2), dtype=np.float32))
    p.data = np.zeros((3,), dtype=np.float64)
    assert p.grad.shape == (3,) and p.grad.dtype == np.float64


def test_parameter_rejects_integer_data():
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Parameter(np.zeros(3, dtype=np.int64))


def test_to_float64_converts_parameters_and_buffers():
    model = make_model().to(np.float64)
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        model.to(np.int32)


def test_load_state_dict_round_trip_and_keeps_dtype():
    source, target = make_model(), make_model()
    minidl.seed(1)
    target = nn.Sequential(Affine(3), Stats(3), nn.Sequential(Affine(3, bias=False), Affine(3)))
    state = {k: v.astype(np.float64) for k, v in source.state_dict().items()}
    target.load_state_dict(state)
    for (k, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(a, b, err_msg=k)


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda s: s.pop("2.1.bias"), KeyError, "missing keys \\['2.1.bias'\\]"),
        (lambda s: s.update(extra=np.zeros(1)), KeyError, "unexpected keys \\['extra'\\]"),
        (
            lambda s: s.update({"0.weight": np.zeros((4, 1))}),
            ValueError,
            "'0.weight' has shape \\(4, 1\\), expected \\(3, 1\\)",
        ),
        (lambda s: s.update({"2.1.bias": np.array(["a", "b", "c"])}), TypeError, "must hold real numbers"),
    ],
)
def test_bad_state_dict_raises_and_leaves_model_untouched(edit, error, message):
    model = make_model()
    before = model.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    edit(state)
    with pytest.raises(error, match=message):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_save_load_bit_exact(tmp_path):
    model = make_model()
    model.train()(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))  # move a buffer
    path = minidl.save(model, tmp_path / "model.npz")
    minidl.seed(5)
    other = nn.Sequential(Affine(3), Stats(3), nn.Sequential(Affine(3, bias=False), Affine(3)))
    assert minidl.load(other, path) is other
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert a.tobytes() == b.tobytes(), k


def test_load_corrupt_or_missing_file(tmp_path):
    model = make_model()
    before = model.state_dict()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="is not a minidl checkpoint"):
        minidl.load(model, bad)
    good = tmp_path / "good.npz"
    minidl.save(model, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="is not a minidl checkpoint"):
        minidl.load(model, truncated)
    with pytest.raises(FileNotFoundError):
        minidl.load(model, tmp_path / "absent.npz")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_mismatched_model_raises(tmp_path):
    path = minidl.save(make_model(), tmp_path / "m.npz")
    other = nn.Sequential(Affine(4))
    with pytest.raises(KeyError, match="missing|unexpected"):
        minidl.load(other, path)


def test_summary_prints_shapes_and_counts(capsys):
    model = make_model()
    model.train()
    total = model.summary((3,))
    out = capsys.readouterr().out
    assert total == 3 + 3 + 3 + 3 + 3 + 3
    assert "2.1" in out and "Affine(3)" in out and "(-1, 3)" in out and "Total params: 18" in out
    assert model.training  # mode restored


def test_sequential_rejects_non_layers_and_names_failing_layer():
    with pytest.raises(TypeError, match="argument 1 is a int"):
        nn.Sequential(Affine(2), 3)

    class Picky(nn.Layer):
        def forward(self, x):
            raise ValueError("Picky: expected 5 features, got 3")

    with pytest.raises(ValueError, match=r"Sequential\[1\] > Picky: expected 5 features, got 3"):
        nn.Sequential(Affine(3), Picky())(np.ones((1, 3), dtype=np.float32))


def test_repr_is_nested():
    text = repr(make_model())
    assert text.splitlines()[0] == "Sequential("
    assert "(2): Sequential(" in text and "(1): Affine(3)" in text


def test_kaiming_uniform_bounds_match_pytorch_rule():
    minidl.seed(0)
    w = kaiming_uniform((64, 16, 3, 3))
    assert fan_in(w.shape) == 16 * 9 and w.dtype == np.float32
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_seed_makes_runs_reproducible():
    a = make_model().state_dict()
    b = make_model().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(TypeError, match="minidl.seed: n must be an int"):
        minidl.seed(1.5)


def test_dispatch_routes_by_device(monkeypatch):
    cpu_module = types.ModuleType("minidl.ops.fake_op")
    gpu_module = types.ModuleType("minidl.cuda.fake_op")
    monkeypatch.setitem(sys.modules, "minidl.ops.fake_op", cpu_module)
    monkeypatch.setitem(sys.modules, "minidl.cuda.fake_op", gpu_module)
    monkeypatch.setattr(dispatch, "_modules", {})

    class DeviceArray:
        __cuda_array_interface__ = {}

    assert dispatch.device_of(np.zeros(2), None) == "cpu"
    assert dispatch.device_of(DeviceArray(), None, DeviceArray()) == "cuda"
    assert minidl.device_of(np.zeros(2)) == "cpu" and minidl.device_of(DeviceArray()) == "cuda"
    assert dispatch.op("fake_op", np.zeros(2)) is cpu_module
    assert dispatch.op("fake_op", DeviceArray()) is gpu_module


def test_dispatch_refuses_a_mix_of_devices():
    class DeviceArray:
        __cuda_array_interface__ = {}

    with pytest.raises(
        ValueError, match=r"op 'linear': arrays on different devices \(argument 0: cpu, argument 1: cuda\)"
    ):
        dispatch.op("linear", np.zeros(2), DeviceArray())


def test_dispatch_missing_cuda_op_is_clear(monkeypatch):
    monkeypatch.setattr(dispatch, "_modules", {})

    class DeviceArray:
        __cuda_array_interface__ = {}

    with pytest.raises(NotImplementedError, match="no CUDA implementation"):
        dispatch.op("definitely_missing_op", DeviceArray())


def test_to_cpu_is_a_no_op_and_cuda_without_a_device_is_clear(monkeypatch):
    model = make_model()
    before = model.state_dict()
    assert model.to("cpu") is model
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    monkeypatch.setattr(minidl.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"no CUDA device: minidl.cuda.is_available\(\) is False"):
        model.to("cuda")
    assert all(layer.device == "cpu" for layer in model.layers)
    with pytest.raises(TypeError, match="expected 'cpu', 'cuda' or a float dtype"):
        model.to("gpu")


def test_to_device_is_idempotent_on_the_host():
    a = np.arange(3.0)
    assert minidl.to_device(a, "cpu") is a
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        minidl.to_device(a, "tpu")
