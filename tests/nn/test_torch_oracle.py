"""Every dense-network layer and loss against PyTorch, forward and backward, in float64.

The same weights go into both; we compare the output, the input gradient and every
parameter gradient with rtol 1e-7.
"""

import numpy as np
import pytest

import minidl
from minidl import nn

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for these tests (pip install torch)")

RTOL, ATOL = 1e-7, 1e-12


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(a):
    """A float64 torch tensor that records its gradient."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(ours, theirs):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def compare_layer(ours, theirs, x, dy):
    """Forward and backward of a minidl layer and a torch module on the same x and dy."""
    xt = leaf(x)
    yt = theirs(xt)
    yt.backward(torch.tensor(dy))
    y = ours(x)
    close(y, yt)
    close(ours.backward(dy), xt.grad)
    return xt


@pytest.mark.parametrize("bias", [True, False])
def test_linear_against_torch(bias):
    ours = nn.Linear(5, 3, bias=bias).to(np.float64)
    theirs = torch.nn.Linear(5, 3, bias=bias).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        if bias:
            theirs.bias.copy_(torch.tensor(ours.bias.data))
    compare_layer(ours, theirs, randn(4, 5), randn(4, 3, seed=1))
    close(ours.weight.grad, theirs.weight.grad)
    if bias:
        close(ours.bias.grad, theirs.bias.grad)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.LeakyReLU(), torch.nn.LeakyReLU()),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Dropout(0.3).eval(), torch.nn.Dropout(0.3).eval()),
    ],
    ids=["relu", "leaky_relu", "leaky_relu-0.2", "sigmoid", "tanh", "flatten", "dropout-eval"],
)
def test_parameter_free_layer_against_torch(ours, theirs):
    x = 4 * randn(2, 3, 4, 5)
    x[0, 0, 0, :3] = [0.0, 40.0, -40.0]  # the kink, and saturation
    compare_layer(
        ours, theirs, x, randn(*x.shape, seed=1) if not isinstance(ours, nn.Flatten) else randn(2, 60, seed=1)
    )


@pytest.mark.parametrize("dim, size", [(1, (3, 2)), (-1, (5, 1)), (2, (2, 2))], ids=["dim1", "dim-1", "dim2"])
def test_unflatten_against_torch(dim, size):
    x = randn(2, 6, 4, 5) if dim == 1 else randn(2, 3, 4, 5)
    ours, theirs = nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size)
    shape = tuple(theirs(torch.tensor(x)).shape)
    compare_layer(ours, theirs, x, randn(*shape, seed=1))
    assert repr(ours) == repr(theirs)


def test_dropout_in_training_scales_the_kept_elements_as_torch_does():
    """The masks cannot coincide (two generators), but what is done with one can."""
    p = 0.3
    x = randn(50, 40) + 5  # no zeros
    dy = randn(50, 40, seed=1)
    minidl.seed(0)
    ours = nn.Dropout(p)
    y = ours(x)
    torch.manual_seed(0)
    xt = leaf(x)
    yt = torch.nn.Dropout(p)(xt)
    yt.backward(torch.tensor(dy))
    for out, grad in ((y, ours.backward(dy)), (yt.detach().numpy(), xt.grad.numpy())):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=RTOL)
        np.testing.assert_allclose(grad[kept], dy[kept] / (1 - p), rtol=RTOL)
        assert not grad[~kept].any()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 5)], ids=["2d", "4d"])
def test_softmax_cross_entropy_against_torch(shape, weighted):
    logits = 3 * randn(*shape)
    t = np.random.default_rng(1).integers(0, shape[1], (shape[0],) + shape[2:])
    w = np.array([0.5, 2.0, 1.0, 3.0]) if weighted else None
    ours = nn.SoftmaxCrossEntropy(weight=w)
    theirs = torch.nn.CrossEntropyLoss(weight=None if w is None else torch.tensor(w))
    zt = leaf(logits)
    lt = theirs(zt, torch.tensor(t))
    lt.backward()
    loss = ours(logits, t)
    assert loss == pytest.approx(lt.item(), rel=RTOL)
    close(ours.backward(), zt.grad)
    close(nn.SoftmaxCrossEntropy.probabilities(logits), torch.softmax(torch.tensor(logits), dim=1))


def test_softmax_cross_entropy_with_huge_logits_against_torch():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 5e3], [3.0, 3.0, 3.0]])
    t = np.array([1, 2, 0])
    zt = leaf(logits)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(t))
    lt.backward()
    ours = nn.SoftmaxCrossEntropy()
    assert ours(logits, t) == pytest.approx(lt.item(), rel=RTOL)
    close(ours.backward(), zt.grad)


@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 1, 3, 3)])
def test_mse_against_torch(shape):
    pred, target = randn(*shape), randn(*shape, seed=1)
    pt = leaf(pred)
    lt = torch.nn.MSELoss()(pt, torch.tensor(target))
    lt.backward()
    ours = nn.MSELoss()
    assert ours(pred, target) == pytest.approx(lt.item(), rel=RTOL)
    close(ours.backward(), pt.grad)


def test_mlp_against_torch():
    """A small MLP, same weights: logits, loss, every parameter gradient and dx agree."""
    minidl.seed(0)
    ours = nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 8),
        nn.ReLU(),
        nn.Linear(8, 8),
        nn.LeakyReLU(0.1),
        nn.Linear(8, 8, bias=False),
        nn.Tanh(),
        nn.Linear(8, 5),
        nn.Sigmoid(),
        nn.Linear(5, 3),
    ).to(np.float64)
    theirs = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(6, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 8),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Linear(8, 8, bias=False),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 5),
        torch.nn.Sigmoid(),
        torch.nn.Linear(5, 3),
    ).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x, t = randn(10, 2, 3), np.random.default_rng(1).integers(0, 3, 10)

    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn(ours(x), t)
    dx = ours.backward(loss_fn.backward())
    xt = leaf(x)
    lt = torch.nn.CrossEntropyLoss()(theirs(xt), torch.tensor(t))
    lt.backward()

    assert loss == pytest.approx(lt.item(), rel=RTOL)
    close(dx, xt.grad)
    for (key, p), (tkey, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert key == tkey
        close(p.grad, tp.grad)
