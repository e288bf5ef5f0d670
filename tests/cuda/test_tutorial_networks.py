"""The networks of the tutorials, at tiny sizes, train on "cuda" as on the CPU: one
``fit`` epoch of two samples (one step through every layer, the loss and the optimizer)
ends with the CPU's parameters, in float64. Dropout is left out here (the two targets
draw different masks; tests/cuda/test_layers.py checks it). The step is SGD's: Adam
divides by sqrt(v), which blows the round-off of a zero gradient (a bias before a batch
norm has one) up to 1e-10 on either target, differently on each."""

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from tests.helpers import randn

from .helpers import assert_same


def conv_block(c_in, c_out):
    """Tutorials 08 and 10: 3x3 convolution, batch norm, a ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1))


def segmentation_labels(N, K, side):
    return np.random.default_rng(1).integers(0, K, (N, side, side))


NETWORKS = {
    # name: (make the model, input shape, loss, target)
    "03 MLP": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)),
        (2, 1, 4, 4),
        nn.SoftmaxCrossEntropy,
        np.array([0, 2]),
    ),
    "06 deep MLP with batch norm": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)),
        (2, 1, 4, 4),
        nn.SoftmaxCrossEntropy,
        np.array([1, 2]),
    ),
    "06 residual net": (
        lambda: nn.Sequential(
            nn.Flatten(),
            nn.Linear(16, 4),
            nn.Tanh(),
            nn.Residual(nn.Sequential(nn.Linear(4, 4), nn.Tanh())),
            nn.Linear(4, 3),
        ),
        (2, 1, 4, 4),
        nn.SoftmaxCrossEntropy,
        np.array([0, 1]),
    ),
    "07 learned upsampling": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1),
        ),
        (2, 1, 4, 4),
        nn.MSELoss,
        randn(2, 1, 4, 4, seed=2, dtype=np.float64),
    ),
    "08 FCN": (
        lambda: nn.Sequential(
            conv_block(3, 2), nn.MaxPool2d(2), nn.Conv2d(2, 3, 1), nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1)
        ),
        (2, 3, 4, 4),
        nn.SoftmaxCrossEntropy,
        segmentation_labels(2, 3, 4),
    ),
    "08 U-Net": (
        lambda: nn.Sequential(
            conv_block(3, 1),
            nn.Concat(nn.Sequential(nn.MaxPool2d(2), conv_block(1, 2), nn.ConvTranspose2d(2, 1, 2, stride=2))),
            conv_block(2, 1),
            nn.Conv2d(1, 3, 1),
        ),
        (2, 3, 4, 4),
        nn.SoftmaxCrossEntropy,
        segmentation_labels(2, 3, 4),
    ),
    "09 autoencoder": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8, 2),
            nn.Linear(2, 8),
            nn.ReLU(),
            nn.Unflatten(1, (2, 2, 2)),
            nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        ),
        (2, 1, 4, 4),
        nn.MSELoss,
        None,
    ),  # the target is the input
    "10 YOLO": (
        lambda: nn.Sequential(conv_block(3, 2), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2 * 2 * 7), nn.Sigmoid()),
        (2, 3, 4, 4),
        lambda: nn.YOLOLoss(S=2, B=1, C=2),
        None,
    ),
}


def yolo_target():
    target = np.zeros((2, 2, 2, 7))
    target[0, 1, 0] = [0.5, 0.4, 0.3, 0.2, 1, 1, 0]
    target[1, 0, 1] = [0.2, 0.7, 0.6, 0.5, 1, 0, 1]
    return target


@pytest.mark.parametrize("name", list(NETWORKS))
def test_tutorial_network_trains_on_cuda_as_on_the_cpu(name):
    make, shape, make_loss, target = NETWORKS[name]
    x = randn(*shape, dtype=np.float64)
    if target is None:
        target = yolo_target() if name == "10 YOLO" else x
    minidl.seed(0)
    cpu = make().to(np.float64)
    gpu = make().to(np.float64)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    histories = []
    for model in (cpu, gpu):
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        histories.append(
            minidl.fit(model, make_loss(), opt, (x, target), epochs=1, batch_size=2, shuffle=False, verbose=False)
        )
    assert_same(histories[0].train_loss[0], histories[1].train_loss[0], np.float64, "loss")
    assert_same(cpu.state_dict(), gpu.state_dict(), np.float64)
