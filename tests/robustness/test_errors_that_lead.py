"""Errors that say what is wrong, where the first probe found misleading ones."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl import nn, optim
from minidl.data import mnist
from tests.helpers import assert_same_snapshot, raises, snapshot


def test_an_idx_header_whose_sizes_overflow_is_a_truncated_file_not_a_reshape_error():
    header = mnist.IMAGE_MAGIC.to_bytes(4, "big") + b"\xff\xff\xff\xff" * 3
    with raises(ValueError, "forged: truncated IDX file: the header promises 4294967295 x 4294967295 x 4294967295"):
        mnist.parse_idx(header + bytes(100), mnist.IMAGE_MAGIC, "forged")


def test_a_scheduler_without_step_is_refused_before_any_training():
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    data = (np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]))
    before = snapshot(model)
    with raises(TypeError, "fit: scheduler must have a step() method", "got float"):
        minidl.fit(model, nn.SoftmaxCrossEntropy(), opt, data, scheduler=0.5, verbose=False)
    assert_same_snapshot(before, snapshot(model))


@given(
    dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 5), min_size=3, max_size=3),
    body=st.binary(max_size=80),
    magic=st.sampled_from([mnist.IMAGE_MAGIC, mnist.LABEL_MAGIC, 0x1F8B0803]),
)
def test_any_idx_bytes_give_the_array_or_an_error_naming_the_file(dims, body, magic):
    data = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + body
    try:
        images = mnist.parse_idx(data, mnist.IMAGE_MAGIC, "f.idx")
    except ValueError as err:
        assert str(err).startswith("f.idx: "), err
        return
    assert images.shape == tuple(dims) and images.tobytes() == body
