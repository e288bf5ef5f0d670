"""One layer object at several places of a network (weight sharing), and the containers
that register lists and dicts of layers."""

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.gradcheck import check_layer
from tests.helpers import raises


def shared_net():
    minidl.seed(0)
    block = nn.Linear(3, 3)
    return nn.Sequential(block, nn.Tanh(), block, nn.Tanh(), nn.Linear(3, 2)), block


def test_shared_weights_get_the_sum_of_both_places_gradients_by_finite_differences():
    model, _ = shared_net()
    x = np.random.default_rng(0).standard_normal((4, 3))
    report = check_layer(model, x)
    assert report.ok, report
    assert set(report.errors) == {"input", "0.weight", "0.bias", "4.weight", "4.bias"}


def test_a_shared_layer_is_listed_once():
    model, block = shared_net()
    assert [k for k, _ in model.named_parameters()] == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    optim.SGD(model.parameters(), lr=0.1)  # no "appears twice" error


def test_inference_keeps_a_bounded_number_of_caches():
    model, block = shared_net()
    for _ in range(50):
        model(np.zeros((2, 3), np.float32))
    assert len(block._saved.entries) == 2 + block.extra_saved and len(model[4]._saved.entries) == 1 + block.extra_saved
    model.backward(np.ones((2, 2), np.float32))
    model(np.zeros((2, 3), np.float32))  # a new pass drops the last one's caches
    assert len(block._saved.entries) == 2 and len(model[4]._saved.entries) == 1


def test_a_shared_network_trains_and_round_trips(tmp_path):
    model, _ = shared_net()
    x = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    history = minidl.fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.Adam(model.parameters(), lr=0.05),
        (x, y),
        epochs=20,
        batch_size=8,
        seed=0,
        verbose=False,
    )
    assert history.train_loss[-1] < history.train_loss[0]
    other, _ = shared_net()
    minidl.load(other, minidl.save(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(minidl.predict(other, x), minidl.predict(model, x))


@pytest.mark.parametrize("value", [[nn.ReLU()], (nn.Linear(2, 2),), {"a": nn.Linear(2, 2)}])
def test_a_plain_list_or_dict_of_layers_is_refused(value):
    class Model(nn.Layer):
        def __init__(self):
            super().__init__()
            self.parts = value

    with raises(TypeError, "Model.parts: a plain", "is not registered", "nn.ModuleList"):
        Model()


def test_modulelist_and_moduledict_register_their_layers():
    class Model(nn.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.heads = nn.ModuleDict({"cls": nn.Linear(2, 3)})

    model = Model()
    assert list(model.state_dict()) == [
        "blocks.0.weight",
        "blocks.0.bias",
        "blocks.1.weight",
        "blocks.1.bias",
        "heads.cls.weight",
        "heads.cls.bias",
    ]
    model.eval()
    assert not model.blocks[1].training and not model.heads["cls"].training
    with raises(ValueError, "ModuleDict: keys must be identifiers"):
        nn.ModuleDict({"a.b": nn.ReLU()})
    with raises(TypeError, "ModuleList: item 1 is a int, not a minidl layer"):
        nn.ModuleList([nn.ReLU(), 3])


class Reuse(nn.Layer):
    """A model class that calls one activation object at ``uses`` places of its forward
    (a habit from PyTorch): the containers know of one place only."""

    def __init__(self, uses):
        super().__init__()
        self.fc, self.act, self.uses = nn.Linear(3, 3), nn.Tanh(), uses

    def forward(self, x):
        for _ in range(self.uses):
            x = self.act(self.fc(x))
        return x

    def backward(self, dy):
        for _ in range(self.uses):
            dy = self.fc.backward(self.act.backward(dy))
        return dy


def test_a_layer_called_at_two_places_by_hand_gets_each_calls_cache():
    model = Reuse(2).to(np.float64)
    report = check_layer(model, np.random.default_rng(0).standard_normal((2, 3)))
    assert report.ok, report


def test_more_calls_in_one_pass_than_a_layer_keeps_is_an_error_not_a_wrong_gradient():
    model = Reuse(12)
    y = model(np.ones((2, 3), np.float32))
    with raises(RuntimeError, "Tanh: this backward() has no forward call left to undo: forward was called 12 times"):
        model.backward(np.ones_like(y))


def test_a_second_backward_of_one_forward_still_adds_up():
    layer = nn.Linear(2, 2)
    layer(np.ones((1, 2), np.float32))
    layer.backward(np.ones((1, 2), np.float32))
    first = layer.weight.grad.copy()
    layer.backward(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(layer.weight.grad, 2 * first)
