"""fit(checkpoint=...) and fit(resume_from=...): an interrupted run resumed from its
checkpoint ends with the same bits as one uninterrupted run."""

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.data import transforms
from tests.helpers import assert_same_snapshot, labels, raises, randn, snapshot


def data():
    x = randn(60, 1, 6, 6, seed=1, dtype=np.float32)
    return x, labels((60,), 3, seed=2)


def make_run(seed=None, schedule=True):
    """A model with dropout and batch norm (the global generator and running statistics
    both matter), AdamW, and a StepLR schedule; the same weights for every call."""
    minidl.seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 3)
    )
    head = model[1].parameters() + model[5].parameters()
    opt = optim.AdamW([{"params": model[0].parameters(), "lr": 3e-3}, {"params": head}], lr=1e-2)
    sched = optim.StepLR(opt, step_size=1, gamma=0.7) if schedule else None
    return model, opt, sched


AUGMENT = transforms.Compose([transforms.RandomCrop(6, padding=1), transforms.RandomHorizontalFlip()])


def train(model, opt, sched, epochs, seed, **kwargs):
    x, y = data()
    return minidl.fit(
        model,
        nn.SoftmaxCrossEntropy(),
        opt,
        (x, y),
        (x[:20], y[:20]),
        epochs=epochs,
        batch_size=16,
        seed=seed,
        verbose=False,
        scheduler=sched,
        transform=AUGMENT,
        **kwargs,
    )


@pytest.mark.parametrize("seed", [5, None], ids=["loader-seed", "global-generator"])
def test_two_plus_two_epochs_resumed_are_bit_identical_to_four(tmp_path, seed):
    model, opt, sched = make_run()
    minidl.seed(123)  # the order (seed=None), dropout and augmentation draw from here on
    whole = train(model, opt, sched, 4, seed)

    first, opt1, sched1 = make_run()
    minidl.seed(123)
    train(first, opt1, sched1, 2, seed, checkpoint=tmp_path / "run.npz")
    assert minidl.read_checkpoint(tmp_path / "run.npz")["epoch"] == 2

    minidl.seed(999)  # another process: other weights, another generator state
    resumed, opt2, sched2 = make_run()
    minidl.seed(7)
    history = train(resumed, opt2, sched2, 4, seed, resume_from=tmp_path / "run.npz", checkpoint=tmp_path / "run.npz")

    assert_same_snapshot(snapshot(model, opt), snapshot(resumed, opt2))
    assert sched2.t == sched.t == 4 and sched2.get_last_lr() == sched.get_last_lr()
    for field in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert getattr(history, field) == getattr(whole, field), field
    assert len(history) == 4 and minidl.read_checkpoint(tmp_path / "run.npz")["epoch"] == 4


def test_a_save_then_load_carries_the_scheduler(tmp_path):
    model, opt, sched = make_run()
    train(model, opt, sched, 2, 0)
    minidl.save(model, tmp_path / "c", optimizer=opt, scheduler=sched, epoch=2)
    model2, opt2, sched2 = make_run()
    minidl.load(model2, tmp_path / "c", optimizer=opt2, scheduler=sched2)
    assert sched2.t == 2 and sched2.base_lrs == sched.base_lrs
    for ours, theirs in ((model.state_dict(), model2.state_dict()), (opt.state_dict(), opt2.state_dict())):
        assert_same_snapshot(ours, theirs)
    with raises(TypeError, "holds the state of a StepLR, not of a CosineAnnealingLR"):
        minidl.load(model2, tmp_path / "c", scheduler=optim.CosineAnnealingLR(opt2, T_max=3))
    minidl.save(model, tmp_path / "d", optimizer=opt)
    with raises(KeyError, "holds no scheduler state (saved without scheduler=)"):
        minidl.load(model2, tmp_path / "d", scheduler=sched2)
    with raises(TypeError, "minidl.save: scheduler must be a minidl scheduler, got str"):
        minidl.save(model, tmp_path / "e", scheduler="cosine")


def test_resuming_refuses_what_would_not_resume_exactly(tmp_path):
    model, opt, sched = make_run()
    train(model, opt, sched, 2, 5, checkpoint=tmp_path / "run.npz")
    minidl.save(model, tmp_path / "plain.npz", optimizer=opt, epoch=2)
    target, opt2, sched2 = make_run()
    before = snapshot(target, opt2)
    with raises(ValueError, "was not written by fit(checkpoint=...)"):
        train(target, opt2, sched2, 4, 5, resume_from=tmp_path / "plain.npz")
    with raises(ValueError, "has 2 epochs done and epochs=2; ask for more epochs"):
        train(target, opt2, sched2, 2, 5, resume_from=tmp_path / "run.npz")
    with raises(ValueError, "written by a fit with a seed, this one has seed=None"):
        train(target, opt2, sched2, 4, None, resume_from=tmp_path / "run.npz")
    with raises(ValueError, "holds the state of a StepLR; pass it as scheduler="):
        train(target, opt2, None, 4, 5, resume_from=tmp_path / "run.npz")
    sgd = optim.SGD(target.parameters(), lr=0.1)
    with raises(TypeError, "holds the state of a AdamW, not of a SGD"):
        train(target, sgd, optim.StepLR(sgd, 1), 4, 5, resume_from=tmp_path / "run.npz")
    other = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    other_opt = optim.AdamW(other.parameters())
    with raises(KeyError, "missing keys"):
        train(other, other_opt, optim.StepLR(other_opt, 1), 4, 5, resume_from=tmp_path / "run.npz")
    assert_same_snapshot(before, snapshot(target, opt2))


def test_a_damaged_generator_state_loads_nothing(tmp_path):
    model, opt, sched = make_run()
    train(model, opt, sched, 1, 5, checkpoint=tmp_path / "run.npz")
    with np.load(tmp_path / "run.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["fit/loader_rng"] = np.array('{"bit_generator": "PCG64"}')
    np.savez(tmp_path / "bad.npz", **arrays)
    target, opt2, sched2 = make_run()
    before = snapshot(target, opt2)
    with raises(ValueError, "'fit/loader_rng' is not a random generator's state"):
        train(target, opt2, sched2, 3, 5, resume_from=tmp_path / "bad.npz")
    assert_same_snapshot(before, snapshot(target, opt2))


def test_checkpoint_needs_state_dicts(tmp_path):
    class Halve:
        def __init__(self, opt):
            self.opt = opt

        def step(self):
            self.opt.lr /= 2

    model, opt, _ = make_run()
    with raises(TypeError, "fit: checkpoint/resume_from need a scheduler with state_dict(), got Halve"):
        train(model, opt, Halve(opt), 1, 0, checkpoint=tmp_path / "c.npz")
    before = snapshot(model, opt)
    with raises(FileNotFoundError, "fit: the folder of checkpoint="):
        train(model, opt, None, 1, 0, checkpoint=tmp_path / "no" / "c.npz")
    assert_same_snapshot(before, snapshot(model, opt))  # refused before training
