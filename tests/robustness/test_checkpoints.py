"""Checkpoints that cannot be torn and loads that change nothing unless they succeed.

Every bad file or value gets a clear error naming the key, and the model and the
optimizer are bit-identical afterwards (``snapshot``). Crash safety is tested the hard
way: a subprocess saving a large checkpoint over and over is killed (SIGKILL) at random
moments, and after each kill the file loads whole.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl import nn, optim
from tests.helpers import assert_same_snapshot, raises, snapshot


def small_model():
    minidl.seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def trained(model=None, optimizer=None, steps=2):
    """A few real steps, so the optimizer has state to save (a new model and Adam by default)."""
    model = small_model() if model is None else model
    optimizer = optim.Adam(model.parameters(), lr=3e-3) if optimizer is None else optimizer
    rng = np.random.default_rng(1)
    loss_fn = nn.SoftmaxCrossEntropy()
    for _ in range(steps):
        x = rng.standard_normal((8, 3)).astype(np.float32)
        y = rng.integers(0, 2, 8)
        loss_fn(model(x), y)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()
    return model, optimizer


def test_the_path_given_is_the_path_written_and_read(tmp_path):
    model = small_model()
    names = ("ckpt", "ckpt.npz", "weights.bin")
    for name in names:
        assert minidl.save(model, tmp_path / name) == str(tmp_path / name)
        minidl.load(small_model(), tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # no ".npz" added, no temporary file left


def test_a_missing_file_says_so_and_points_at_an_old_npz_name(tmp_path):
    np.savez(tmp_path / "old", **small_model().state_dict())  # NumPy adds .npz
    with raises(FileNotFoundError, "no file", "old'", "there is", "old.npz"):
        minidl.load(small_model(), tmp_path / "old")


def test_model_optimizer_and_epoch_round_trip(tmp_path):
    model, opt = trained()
    minidl.save(model, tmp_path / "c.npz", optimizer=opt, epoch=7)
    model2 = small_model()
    opt2 = optim.Adam(model2.parameters())
    minidl.load(model2, tmp_path / "c.npz", optimizer=opt2)
    assert_same_snapshot(
        snapshot(model, opt), {**snapshot(model2, opt2), **{f"grad:{k}": p.grad for k, p in model.named_parameters()}}
    )
    assert minidl.read_checkpoint(tmp_path / "c.npz")["epoch"] == 7
    # the next steps are the same steps
    trained(model, opt, 1)
    trained(model2, opt2, 1)
    for (key, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_sgd_momentum_state_round_trips(tmp_path):
    model = small_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    trained(model, opt)
    minidl.save(model, tmp_path / "c", optimizer=opt)
    model2 = small_model()
    opt2 = optim.SGD(model2.parameters(), lr=0.5)
    minidl.load(model2, tmp_path / "c", optimizer=opt2)
    group = opt2.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.1, 0.9, True)
    for a, b in zip(opt.state, opt2.state):
        np.testing.assert_array_equal(a["momentum_buffer"], b["momentum_buffer"])


@pytest.mark.parametrize(
    "make_opt, message",
    [
        (lambda ps: optim.SGD(ps, lr=0.1), "holds the state of a Adam, not of a SGD"),
    ],
)
def test_a_checkpoint_of_another_optimizer_is_refused_and_nothing_changes(tmp_path, make_opt, message):
    model, opt = trained()
    minidl.save(model, tmp_path / "c", optimizer=opt)
    other = small_model()
    other_opt = make_opt(other.parameters())
    before = snapshot(other, other_opt)
    with raises(TypeError, message):
        minidl.load(other, tmp_path / "c", optimizer=other_opt)
    assert_same_snapshot(before, snapshot(other, other_opt))


def test_loading_optimizer_state_from_a_model_only_checkpoint_is_refused(tmp_path):
    minidl.save(small_model(), tmp_path / "c")
    model = small_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with raises(KeyError, "holds no optimizer state"):
        minidl.load(model, tmp_path / "c", optimizer=opt)


BAD_VALUES = [
    (np.full((4, 3), np.nan, np.float32), ValueError, "'0.weight' holds 12 NaN or infinite values"),
    (np.full((4, 3), 1e300), ValueError, "'0.weight' holds 12 NaN or infinite values (as float32)"),  # inf on cast
    (np.ones((4, 3), np.complex64), TypeError, "'0.weight' must hold real numbers, got dtype complex64"),
    (np.ones((4, 3), bool), TypeError, "'0.weight' must hold real numbers, got dtype bool"),
    (np.full((4, 3), "x"), TypeError, "'0.weight' must hold real numbers"),
    (np.ones((3, 4), np.float32), ValueError, "'0.weight' has shape (3, 4), expected (4, 3)"),
]


@pytest.mark.parametrize("value, error, message", BAD_VALUES)
def test_bad_values_in_a_file_are_refused_by_key_and_change_nothing(tmp_path, value, error, message):
    state = small_model().state_dict()
    state["0.weight"] = value
    np.savez(tmp_path / "bad.npz", **state)
    model = small_model()
    before = snapshot(model)
    with raises(error, message):
        minidl.load(model, tmp_path / "bad.npz")
    assert_same_snapshot(before, snapshot(model))


def test_a_bad_optimizer_value_leaves_model_and_optimizer_unchanged(tmp_path):
    model, opt = trained()
    minidl.save(model, tmp_path / "c.npz", optimizer=opt)
    with np.load(tmp_path / "c.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["optimizer/state.1.exp_avg_sq"] = -np.inf * np.ones_like(arrays["optimizer/state.1.exp_avg_sq"])
    np.savez(tmp_path / "bad.npz", **arrays)
    target, target_opt = trained()
    before = snapshot(target, target_opt)
    with raises(ValueError, "Adam.load_state_dict: 'state.1.exp_avg_sq' holds 4 NaN or infinite values"):
        minidl.load(target, tmp_path / "bad.npz", optimizer=target_opt)
    assert_same_snapshot(before, snapshot(target, target_opt))
    arrays["optimizer/state.1.exp_avg_sq"] = np.zeros_like(arrays["optimizer/state.1.exp_avg_sq"])
    arrays["optimizer/param_groups.0.eps"] = np.array(0.0)
    np.savez(tmp_path / "bad.npz", **arrays)
    with raises(ValueError, "Adam: eps must be a finite number in (0, inf), got 0.0"):
        minidl.load(target, tmp_path / "bad.npz", optimizer=target_opt)
    assert_same_snapshot(before, snapshot(target, target_opt))


def test_random_bytes_get_a_message_about_the_file_not_about_pickle(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="is not a minidl checkpoint") as info:
        minidl.load(small_model(), path)
    assert "pickle" not in str(info.value)


def test_an_object_array_is_refused_by_key(tmp_path):
    state = small_model().state_dict()
    state["0.bias"] = np.array([{"a": 1}] * 4, dtype=object)
    np.savez(tmp_path / "obj.npz", **state)
    with raises(ValueError, "the entry '0.bias' cannot be read as a plain array"):
        minidl.load(small_model(), tmp_path / "obj.npz")


@given(cut=st.integers(0, 10**6), flips=st.lists(st.integers(0, 10**6), max_size=3))
def test_a_damaged_file_loads_exactly_or_raises_and_changes_nothing(tmp_path_factory, cut, flips):
    """Truncated or bit-flipped files: never a silently different model."""
    folder = tmp_path_factory.mktemp("damage")
    source = small_model()
    source.to(np.float64)
    good = minidl.save(source, folder / "good.npz")
    data = bytearray(open(good, "rb").read())
    data = data[: len(data) - cut % len(data)] if cut % 3 else data
    for f in flips:
        data[f % len(data)] ^= 0x5A
    (folder / "bad.npz").write_bytes(bytes(data))
    model = small_model()
    before = snapshot(model)
    try:
        minidl.load(model, folder / "bad.npz")
    except (ValueError, KeyError, TypeError):
        assert_same_snapshot(before, snapshot(model))
    else:  # the damage missed every array (zip CRCs guard the data)
        for key, value in source.state_dict().items():
            np.testing.assert_array_equal(model.state_dict()[key], value.astype(np.float32), err_msg=key)


def test_an_exception_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = small_model()
    path = minidl.save(model, tmp_path / "c.npz")
    previous = open(path, "rb").read()

    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(KeyboardInterrupt):
        minidl.save(small_model(), path)
    assert open(path, "rb").read() == previous
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file is gone too


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import minidl
    from minidl import nn
    path = sys.argv[1]
    model = nn.Sequential(nn.Linear(1000, 1000), nn.Linear(1000, 1000))  # 8 MB of float32
    print("ready", flush=True)
    value = 0.0
    while True:
        value += 1.0
        for p in model.parameters():
            p.data[...] = value
        minidl.save(model, path, epoch=int(value))
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killing_a_save_at_random_moments_never_tears_the_checkpoint(tmp_path):
    """SIGKILL a process that saves an 8 MB checkpoint in a loop, 12 times at random
    moments; after each kill the checkpoint loads whole: one version in every array."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    versions = set()
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        model = nn.Sequential(nn.Linear(1000, 1000), nn.Linear(1000, 1000))
        minidl.load(model, path)  # raises if torn
        values = {float(v) for v in np.unique(np.concatenate([p.data.ravel() for p in model.parameters()]))}
        assert len(values) == 1, f"a mix of versions: {sorted(values)[:5]}"
        epoch = minidl.read_checkpoint(path)["epoch"]
        assert values == {float(epoch)}
        versions.add(epoch)
        path.unlink()  # the next run starts from nothing again
        for stray in tmp_path.glob("big.npz.*.tmp"):  # what a kill can leave: never the checkpoint itself
            stray.unlink()


def test_every_single_byte_flip_loads_exactly_or_raises_and_changes_nothing(tmp_path):
    """Exhaustive for one damaged byte: each position of a small checkpoint in turn."""
    source = small_model()
    data = open(minidl.save(source, tmp_path / "good.npz"), "rb").read()
    expected = source.state_dict()
    model = small_model()
    before = snapshot(model)
    outcomes = {"raised": 0, "loaded": 0}
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0xFF
        (tmp_path / "bad.npz").write_bytes(bytes(damaged))
        try:
            minidl.load(model, tmp_path / "bad.npz")
        except (ValueError, KeyError, TypeError):
            assert_same_snapshot(before, snapshot(model))
            outcomes["raised"] += 1
        else:  # a byte no value depends on (a timestamp, header padding): the zip CRCs guard the data
            for key, value in expected.items():
                np.testing.assert_array_equal(model.state_dict()[key], value, err_msg=f"byte {i}: {key}")
            outcomes["loaded"] += 1
    assert outcomes["raised"] > len(data) / 2  # measured: 1656 of 2184 flips raise, 528 leave every value intact
