"""LeNet-5 learns on the real Fashion-MNIST: trained briefly (2 epochs on the first 4000
training images, Adam lr 1e-3, batch 64) it is well above chance (0.1) on the first 1000
test images. Measured here over minidl seeds 0-5: 0.67-0.72 (a few seconds on 2 cores).

The files come from Debian's package ``dataset-fashion-mnist`` (which .ci/run installs);
without them the test is skipped, and it never downloads anything."""

import os

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.data import load_mnist
from tests.helpers import lenet5

FOLDER = "/usr/share/datasets/fashion-mnist"

pytestmark = pytest.mark.skipif(
    not os.path.isdir(FOLDER),
    reason=f"real Fashion-MNIST not found in {FOLDER} (apt-get install dataset-fashion-mnist)",
)


def test_lenet5_learns_fashion_mnist():
    x_train, y_train = load_mnist("fashion", "train", n=4000, download=False)
    x_test, y_test = load_mnist("fashion", "test", n=1000, download=False)
    assert x_train.shape == (4000, 1, 28, 28) and x_train.dtype == np.float32
    assert set(np.unique(y_test)) == set(range(10))

    minidl.seed(0)
    model = lenet5()
    loss_fn = nn.SoftmaxCrossEntropy()
    chance = minidl.evaluate(model, loss_fn, (x_test, y_test))
    assert chance["loss"] == pytest.approx(np.log(10), abs=0.2)  # untrained: about uniform

    history = minidl.fit(
        model,
        loss_fn,
        optim.Adam(model.parameters(), lr=1e-3),
        (x_train, y_train),
        epochs=2,
        batch_size=64,
        verbose=False,
    )
    result = minidl.evaluate(model, loss_fn, (x_test, y_test))

    assert history.train_loss[1] < history.train_loss[0] < np.log(10)
    assert result["loss"] < 1.2, result
    assert result["accuracy"] >= 0.6, result  # chance is 0.1
