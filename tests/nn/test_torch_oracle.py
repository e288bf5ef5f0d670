"""Every layer and loss against PyTorch, forward and backward, in float64: the same
weights go into both, and the outputs, the input gradients and every parameter gradient
agree with rtol 1e-7; batch norm's running statistics after several training steps too;
the state-dict keys of equivalent models are the same; and a whole LeNet-5 training step
(forward, cross-entropy, backward, SGD with momentum) ends with the same weights.
"""

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from tests.helpers import lenet5, randn

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for these tests (pip install torch)")

RTOL, ATOL = 1e-7, 1e-10  # atol: entries that are zero up to round-off


def leaf(a):
    """A float64 torch tensor that records its gradient."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(ours, theirs, what=""):
    theirs = theirs.detach().numpy() if torch.is_tensor(theirs) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


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


class TorchResidual(torch.nn.Module):
    """What nn.Residual computes, as a torch module with the same attribute name."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return x + self.inner(x)


class TorchConcat(torch.nn.Module):
    """What nn.Concat computes, as a torch module with the same attribute name."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.cat([x, self.inner(x)], dim=1)


def torch_state(ours):
    """minidl's state dict as torch tensors (for theirs.load_state_dict(..., strict=False))."""
    return {k: torch.tensor(v) for k, v in ours.state_dict().items()}


def copy_into_torch(ours, theirs):
    """Load every parameter and buffer of ``ours`` into ``theirs``; only torch's
    ``num_batches_tracked`` (which minidl does not have) may be left out."""
    result = theirs.load_state_dict(torch_state(ours), strict=False)
    assert not result.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in result.missing_keys), result.missing_keys


def keys_without_counters(theirs):
    return [k for k in theirs.state_dict() if not k.endswith("num_batches_tracked")]


def compare_step(ours, theirs, x, dy, what=""):
    """One forward and backward of both on the same x and dy: y, dx and every parameter
    gradient agree (the gradients are zeroed first on both sides)."""
    ours.zero_grad()
    theirs.zero_grad()
    xt = leaf(x)
    yt = theirs(xt)
    yt.backward(torch.tensor(dy))
    y = ours(x)
    close(y, yt, f"{what} y")
    close(ours.backward(dy), xt.grad, f"{what} dx")
    ours_params, their_params = ours.named_parameters(), list(theirs.named_parameters())
    assert [k for k, _ in ours_params] == [k for k, _ in their_params]
    for (key, p), (_, tp) in zip(ours_params, their_params):
        close(p.grad, tp.grad, f"{what} d{key}")


# --- Conv2d -------------------------------------------------------------------------------------

CONV_CASES = [
    # (C_in, C_out, kwargs, x shape)
    (3, 4, dict(kernel_size=3), (2, 3, 7, 7)),
    (3, 4, dict(kernel_size=3, padding=1, bias=False), (2, 3, 6, 5)),
    (2, 5, dict(kernel_size=5, stride=2, padding=2), (3, 2, 9, 8)),
    (2, 3, dict(kernel_size=(3, 1), stride=(2, 1), padding=(1, 0)), (2, 2, 7, 5)),
    (2, 3, dict(kernel_size=(2, 4), stride=(1, 3), padding=(0, 2), bias=False), (2, 2, 4, 9)),
    (1, 6, dict(kernel_size=5, padding=2), (5, 1, 12, 12)),  # LeNet's first layer: more images than threads
    (4, 2, dict(kernel_size=1, stride=2), (2, 4, 5, 5)),
    (2, 2, dict(kernel_size=4, padding=1), (1, 2, 2, 2)),  # the kernel fits only with the padding
]


@pytest.mark.parametrize("C_in, C_out, kwargs, shape", CONV_CASES, ids=[str(c[2]) for c in CONV_CASES])
def test_conv2d_against_torch(C_in, C_out, kwargs, shape):
    minidl.seed(0)
    ours = nn.Conv2d(C_in, C_out, **kwargs).to(np.float64)
    theirs = torch.nn.Conv2d(C_in, C_out, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_into_torch(ours, theirs)
    x = randn(*shape)
    y_shape = theirs(torch.tensor(x)).shape
    compare_step(ours, theirs, x, randn(*y_shape, seed=1))


def test_conv2d_initialisation_has_the_distribution_of_torch():
    """Kaiming-uniform with a = sqrt(5): weight and bias uniform in +-1/sqrt(fan_in),
    fan_in = C_in*KH*KW; the weights' spread is torch's (2400 draws: std within 5%)."""
    minidl.seed(0)
    torch.manual_seed(0)
    ours, theirs = nn.Conv2d(6, 16, 5), torch.nn.Conv2d(6, 16, 5)
    bound = 1 / np.sqrt(6 * 5 * 5)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        assert np.abs(p.data).max() <= bound and np.abs(tp.detach().numpy()).max() <= bound
    assert ours.weight.data.std() == pytest.approx(theirs.weight.detach().numpy().std(), rel=0.05)
    assert ours.weight.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)


# --- pooling ------------------------------------------------------------------------------------

POOL_CASES = [
    # (kwargs, x shape)
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=2), (2, 3, 7, 5)),  # odd sizes: the last row / column is dropped
    (dict(kernel_size=3, stride=1, padding=1), (2, 2, 5, 5)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 6)),
    (dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)), (1, 2, 5, 7)),
    (dict(kernel_size=(3, 1)), (2, 2, 6, 4)),
    (dict(kernel_size=4, stride=3, padding=2), (2, 1, 4, 4)),
]


@pytest.mark.parametrize("kwargs, shape", POOL_CASES, ids=[str(c[0]) for c in POOL_CASES])
@pytest.mark.parametrize(
    "ours, theirs", [(nn.MaxPool2d, torch.nn.MaxPool2d), (nn.AvgPool2d, torch.nn.AvgPool2d)], ids=["max", "avg"]
)
def test_pool_against_torch(ours, theirs, kwargs, shape):
    ours, theirs = ours(**kwargs), theirs(**kwargs)  # torch's defaults: stride = kernel, zero padding counted
    x = randn(*shape)
    y_shape = theirs(torch.tensor(x)).shape
    compare_step(ours, theirs, x, randn(*y_shape, seed=1))


def test_max_pool_ties_route_the_gradient_as_torch_does():
    """After a ReLU, whole windows are zero: both send the gradient to the first zero."""
    x = np.maximum(randn(2, 3, 6, 6), 0)
    x[0, 0, :2, :2] = 0.0
    x[1, 2, 2:4, 2:4] = 1.5
    compare_step(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x, randn(2, 3, 3, 3, seed=1))


# --- BatchNorm ----------------------------------------------------------------------------------

BN_CASES = [
    # (ours, theirs, x shape, momentum)
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 3), 0.1),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5), 0.1),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6), 0.1),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (2, 2, 3, 3), 0.5),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (2, 4), 1.0),  # m = 2 values per channel: the smallest batch
]


def random_affine(ours, C, seed=5):
    rng = np.random.default_rng(seed)
    ours.weight.data = rng.uniform(0.5, 2.0, C)
    ours.bias.data = rng.standard_normal(C)


@pytest.mark.parametrize(
    "ours, theirs, shape, momentum", BN_CASES, ids=[f"{c[0].__name__}-{c[2]}-{c[3]}" for c in BN_CASES]
)
def test_batchnorm_training_steps_running_statistics_and_eval_against_torch(ours, theirs, shape, momentum):
    C = shape[1]
    ours = ours(C, momentum=momentum).to(np.float64)
    theirs = theirs(C, momentum=momentum).double()
    assert list(ours.state_dict()) == keys_without_counters(theirs)
    random_affine(ours, C)
    copy_into_torch(ours, theirs)
    for step in range(4):  # several training steps on batches of different statistics
        x = (step + 1) * randn(*shape, seed=step) + step
        compare_step(ours, theirs, x, randn(*shape, seed=10 + step), f"training step {step}")
        close(ours.running_mean, theirs.running_mean, f"running_mean after step {step}")
        close(ours.running_var, theirs.running_var, f"running_var after step {step}")
    ours.eval()
    theirs.eval()
    compare_step(ours, theirs, 2 * randn(*shape, seed=20) + 1, randn(*shape, seed=21), "eval")
    compare_step(ours, theirs, randn(1, *shape[1:], seed=22), randn(1, *shape[1:], seed=23), "eval, one sample")
    close(ours.running_mean, theirs.running_mean, "running_mean after eval")  # eval() leaves them alone
    close(ours.running_var, theirs.running_var, "running_var after eval")


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_batchnorm_eps_against_torch(eps):
    ours = nn.BatchNorm2d(3, eps=eps).to(np.float64)
    theirs = torch.nn.BatchNorm2d(3, eps=eps).double()
    random_affine(ours, 3)
    copy_into_torch(ours, theirs)
    x = 0.05 * randn(3, 3, 2, 2)  # a small variance, where eps matters
    compare_step(ours, theirs, x, randn(3, 3, 2, 2, seed=1))


# --- Residual, Concat, and a model with everything ------------------------------------------------


def test_residual_block_against_torch():
    minidl.seed(0)
    ours = nn.Residual(
        nn.Sequential(
            nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1)
        )
    ).to(np.float64)
    theirs = TorchResidual(
        torch.nn.Sequential(
            torch.nn.Conv2d(3, 3, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(3),
            torch.nn.ReLU(),
            torch.nn.Conv2d(3, 3, 3, padding=1),
        )
    ).double()
    assert list(ours.state_dict()) == keys_without_counters(theirs)
    copy_into_torch(ours, theirs)
    compare_step(ours, theirs, randn(2, 3, 5, 5), randn(2, 3, 5, 5, seed=1))
    close(ours.inner[1].running_var, theirs.inner[1].running_var)


def test_concat_against_torch():
    minidl.seed(0)
    ours = nn.Concat(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh())).to(np.float64)
    theirs = TorchConcat(torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Tanh())).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_into_torch(ours, theirs)
    compare_step(ours, theirs, randn(2, 2, 4, 5), randn(2, 5, 4, 5, seed=1))


def make_pair():
    """A model using every layer of the issue, in minidl and in torch, same keys."""
    minidl.seed(0)
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())),
        nn.Concat(nn.Conv2d(4, 2, 1)),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 5),
        nn.BatchNorm1d(5),
        nn.Tanh(),
        nn.Linear(5, 3),
    )
    T = torch.nn
    theirs = T.Sequential(
        T.Conv2d(1, 4, 3, padding=1),
        T.BatchNorm2d(4),
        T.ReLU(),
        T.MaxPool2d(2),
        TorchResidual(T.Sequential(T.Conv2d(4, 4, 3, padding=1, bias=False), T.BatchNorm2d(4), T.ReLU())),
        TorchConcat(T.Conv2d(4, 2, 1)),
        T.AvgPool2d(3, stride=2, padding=1),
        T.Flatten(),
        T.Linear(6 * 2 * 2, 5),
        T.BatchNorm1d(5),
        T.Tanh(),
        T.Linear(5, 3),
    )
    return ours, theirs


def test_parameters_and_state_dict_keys_match_torch():
    ours, theirs = make_pair()
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert list(ours.state_dict()) == keys_without_counters(theirs)  # same keys, same order
    assert [v.shape for v in ours.state_dict().values()] == [
        tuple(v.shape) for k, v in theirs.state_dict().items() if not k.endswith("num_batches_tracked")
    ]
    # and the other way: torch's weights load into minidl by key
    theirs_state = {k: v.numpy() for k, v in theirs.state_dict().items() if not k.endswith("num_batches_tracked")}
    ours.load_state_dict(theirs_state)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, theirs_state[key].astype(np.float32), err_msg=key)


def test_model_with_every_layer_against_torch_in_training_and_eval():
    ours, theirs = make_pair()
    ours.to(np.float64)
    theirs.double()
    copy_into_torch(ours, theirs)
    for step in range(3):
        compare_step(ours, theirs, randn(4, 1, 8, 8, seed=step) + step, randn(4, 3, seed=10 + step), f"step {step}")
    for key, value in ours.state_dict().items():  # the running statistics of all three batch norms
        close(value, theirs.state_dict()[key], key)
    ours.eval()
    theirs.eval()
    compare_step(ours, theirs, randn(2, 1, 8, 8, seed=7), randn(2, 3, seed=8), "eval")


# --- a whole LeNet-5 training step ----------------------------------------------------------------


def lenet_pair():
    minidl.seed(0)
    ours = lenet5()
    T = torch.nn
    theirs = T.Sequential(
        T.Conv2d(1, 6, kernel_size=5, padding=2),
        T.ReLU(),
        T.MaxPool2d(2),
        T.Conv2d(6, 16, 5),
        T.ReLU(),
        T.MaxPool2d(2),
        T.Flatten(),
        T.Linear(16 * 5 * 5, 120),
        T.ReLU(),
        T.Linear(120, 84),
        T.ReLU(),
        T.Linear(84, 10),
    )
    return ours.to(np.float64), theirs.double()


def test_lenet5_training_steps_against_torch():
    """Batch of 8 at 1x28x28, cross-entropy, SGD with momentum (and weight decay): the loss,
    every gradient and every updated weight agree. Two steps, so that the second uses the
    momentum buffer."""
    ours, theirs = lenet_pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_into_torch(ours, theirs)
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    their_opt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    rng = np.random.default_rng(0)
    for step in range(2):
        x = rng.uniform(0, 1, (8, 1, 28, 28))
        labels = rng.integers(0, 10, 8)

        opt.zero_grad()
        loss = loss_fn(ours(x), labels)
        dx = ours.backward(loss_fn.backward())
        opt.step()

        their_opt.zero_grad()
        xt = leaf(x)
        their_loss = torch.nn.functional.cross_entropy(theirs(xt), torch.tensor(labels))
        their_loss.backward()
        their_opt.step()

        assert loss == pytest.approx(their_loss.item(), rel=RTOL)
        close(dx, xt.grad, f"step {step}: dx")
        for (key, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            close(p.grad, tp.grad, f"step {step}: d{key}")
            close(p.data, tp, f"step {step}: {key} after the update")
    assert ours.state_dict()["0.weight"].dtype == np.float64
