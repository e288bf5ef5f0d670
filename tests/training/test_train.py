"""fit / evaluate / predict / History: training works, is reproducible, measures what it
says, keeps the model's mode, and is silent when asked."""

import matplotlib

matplotlib.use("Agg")  # tests never open a window

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.train import History, evaluate, fit, predict, predict_classes


def blobs(n_per_class=60, seed=0):
    """Three well separated Gaussian blobs in 2-D: x (N, 2) float32, y (N,) int64."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    x = np.concatenate([c + 0.5 * rng.standard_normal((n_per_class, 2)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def mlp(dropout=0.0):
    layers = [nn.Linear(2, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 3))


class ModeRecorder(nn.Layer):
    """The identity, remembering whether it was in training mode at each forward."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(self.training)
        return x

    def backward(self, dy):
        return dy


@pytest.fixture
def data():
    x, y = blobs()
    return (x[:120], y[:120]), (x[120:], y[120:])


def test_fit_learns_a_separable_problem(data):
    train, val = data
    minidl.seed(0)
    model = mlp()
    loss_fn = nn.SoftmaxCrossEntropy()
    before = evaluate(model, loss_fn, train)
    history = fit(
        model, loss_fn, optim.Adam(model.parameters(), lr=0.05), train, val, epochs=15, batch_size=16, verbose=False
    )
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    assert history.train_loss[-1] < 0.2 * before["loss"]
    assert history.train_acc[-1] >= 0.95 and history.val_acc[-1] >= 0.95
    assert evaluate(model, loss_fn, val)["accuracy"] >= 0.95


def test_fit_with_sgd_momentum_and_dropout(data):
    train, val = data
    minidl.seed(1)
    model = mlp(dropout=0.2)
    history = fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        train,
        val,
        epochs=15,
        batch_size=16,
        verbose=False,
    )
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_acc[-1] >= 0.95


def test_history_has_one_entry_per_epoch(data):
    train, val = data
    minidl.seed(0)
    model = mlp()
    h = fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()), train, val, epochs=3, verbose=False)
    assert len(h) == 3
    for field in History.FIELDS:
        values = getattr(h, field)
        assert len(values) == 3 and all(isinstance(v, float) for v in values), field
    assert all(0.0 <= a <= 1.0 for a in h.train_acc + h.val_acc)
    assert all(t > 0 for t in h.epoch_time)
    assert h.as_dict()["val_loss"] == h.val_loss
    assert repr(h).startswith("History(3 epochs, last: train_loss=")


def test_without_validation_data_val_entries_are_none(data):
    train, _ = data
    minidl.seed(0)
    model = mlp()
    h = fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()), train, epochs=2, verbose=False)
    assert h.val_loss == [None, None] and h.val_acc == [None, None]
    assert len(h.train_loss) == 2 and None not in h.train_acc


def test_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)  # (N, 1) targets
    minidl.seed(0)
    model = nn.Sequential(nn.Linear(3, 1))
    loss_fn = nn.MSELoss()
    h = fit(
        model,
        loss_fn,
        optim.SGD(model.parameters(), lr=0.1),
        (x[:80], y[:80]),
        (x[80:], y[80:]),
        epochs=20,
        batch_size=10,
        verbose=False,
    )
    assert h.train_acc == [None] * 20 and h.val_acc == [None] * 20
    assert h.val_loss[-1] < 1e-3 < h.val_loss[0]
    result = evaluate(model, loss_fn, (x, y))
    assert result["accuracy"] is None and result["loss"] < 1e-3


def test_history_plot_writes_a_png(data, tmp_path):
    train, val = data
    minidl.seed(0)
    model = mlp()
    h = fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()), train, val, epochs=2, verbose=False)
    path = tmp_path / "curves.png"
    fig = h.plot(path)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2  # loss and accuracy
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "validation"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    matplotlib.pyplot.close(fig)


def test_history_plot_regression_without_validation(tmp_path):
    h = History()
    for loss in (1.0, 0.5, 0.25):
        h.append(train_loss=loss, epoch_time=0.1)
    fig = h.plot(tmp_path / "loss.png")
    assert len(fig.axes) == 1 and [line.get_label() for line in fig.axes[0].lines] == ["train"]
    assert (tmp_path / "loss.png").stat().st_size > 0
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("initially_training", [True, False])
def test_evaluate_and_predict_run_in_eval_mode_and_restore_it(data, initially_training):
    _, (x, y) = data
    recorder = ModeRecorder()
    model = nn.Sequential(mlp(), recorder).train(initially_training)
    evaluate(model, nn.SoftmaxCrossEntropy(), (x, y), batch_size=7)
    predict(model, x, batch_size=7)
    predict_classes(model, x)
    assert recorder.seen and not any(recorder.seen)
    assert model.training is initially_training and recorder.training is initially_training


def test_fit_trains_in_train_mode_validates_in_eval_mode_and_restores(data):
    train, val = data
    recorder = ModeRecorder()
    model = nn.Sequential(mlp(), recorder).eval()
    fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.Adam(model.parameters()),
        train,
        val,
        epochs=1,
        batch_size=40,
        verbose=False,
    )
    # 3 training batches (120 / 40), then 1 validation batch (60 <= 256)
    assert recorder.seen == [True, True, True, False]
    assert model.training is False


def test_mode_is_restored_when_training_fails(data):
    train, _ = data
    model = mlp().eval()
    with pytest.raises(ValueError):
        fit(
            model,
            nn.SoftmaxCrossEntropy(),
            optim.Adam(model.parameters()),
            (train[0], train[1] + 5),
            epochs=1,
            verbose=False,
        )  # labels out of range: the loss raises
    assert model.training is False


def test_predict_concatenates_the_batches(data):
    _, (x, _) = data
    model = mlp(dropout=0.5)
    out = predict(model, x, batch_size=7)  # 60 = 8 * 7 + 4
    model.eval()
    np.testing.assert_array_equal(out, model(x))
    np.testing.assert_array_equal(predict_classes(model, x, batch_size=7), model(x).argmax(axis=1))


def test_evaluate_matches_the_whole_batch_loss(data):
    _, (x, y) = data
    model = mlp().eval()
    loss_fn = nn.SoftmaxCrossEntropy()
    full = loss_fn(model(x), y)
    result = evaluate(model, loss_fn, (x, y), batch_size=7)  # uneven batches, weighted by size
    assert result["loss"] == pytest.approx(full, rel=1e-5)
    assert result["accuracy"] == np.mean(model(x).argmax(axis=1) == y)


def run_seeded(train, val, seed=None):
    minidl.seed(123)
    model = mlp(dropout=0.3)
    h = fit(
        model,
        nn.SoftmaxCrossEntropy(),
        optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        train,
        val,
        epochs=3,
        batch_size=16,
        seed=seed,
        verbose=False,
    )
    return h, [p.data.copy() for p in model.parameters()]


def test_reproducible_given_minidl_seed(data):
    train, val = data
    (h1, w1), (h2, w2) = run_seeded(train, val), run_seeded(train, val)
    assert h1.train_loss == h2.train_loss and h1.val_acc == h2.val_acc
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_shuffle_seed_fixes_the_batch_order(data):
    train, val = data
    (h1, _), (h2, _) = run_seeded(train, val, seed=5), run_seeded(train, val, seed=6)
    assert h1.train_loss != h2.train_loss
    assert run_seeded(train, val, seed=5)[0].train_loss == h1.train_loss


def test_verbose_false_prints_nothing(data, capsys):
    train, val = data
    model = mlp()
    fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()), train, val, epochs=2, verbose=False)
    evaluate(model, nn.SoftmaxCrossEntropy(), val)
    predict(model, val[0])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_prints_one_summary_line_per_epoch(data, capsys):
    train, val = data
    model = mlp()
    fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()), train, val, epochs=2, verbose=True)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  train loss ") and " acc " in lines[0] and "val loss" in lines[0]
    assert captured.err == ""  # no progress bar when stderr is not a terminal


def test_progress_bar_on_a_terminal(data, monkeypatch, capsys):
    """With a terminal on stderr the tqdm bar shows the epoch and the running loss (redrawn
    at every batch here: tqdm normally redraws at most every 0.1 s)."""
    import functools
    import sys

    import tqdm

    train, _ = data
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(minidl.train, "tqdm", functools.partial(tqdm.tqdm, mininterval=0))
    model = mlp()
    fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters()), train, epochs=1, verbose=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err


def test_fit_digits_end_to_end():
    x, y = minidl.data.load_digits()
    train, val, test = minidl.data.train_val_test_split(x, y, seed=0)
    minidl.seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    loss_fn = nn.SoftmaxCrossEntropy()
    h = minidl.fit(
        model, loss_fn, optim.Adam(model.parameters(), lr=1e-2), train, val, epochs=10, batch_size=32, verbose=False
    )
    assert h.val_acc[-1] >= 0.93
    assert minidl.evaluate(model, loss_fn, test)["accuracy"] >= 0.93


# --- errors ------------------------------------------------------------------------------------


def test_bad_arguments(data):
    train, val = data
    model = mlp()
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.Adam(model.parameters())
    with pytest.raises(TypeError, match=r"fit: train_data must be an \(x, y\) tuple of arrays, got ndarray"):
        fit(model, loss_fn, opt, train[0], verbose=False)
    with pytest.raises(ValueError, match=r"fit: val_data has x of shape \(60, 2\) and y of shape \(59,\)"):
        fit(model, loss_fn, opt, train, (val[0], val[1][:-1]), verbose=False)
    with pytest.raises(ValueError, match=r"fit: epochs must be >= 1, got 0"):
        fit(model, loss_fn, opt, train, epochs=0, verbose=False)
    with pytest.raises(TypeError, match=r"fit: epochs must be an int, got float"):
        fit(model, loss_fn, opt, train, epochs=2.0, verbose=False)
    with pytest.raises(ValueError, match=r"evaluate: data is empty"):
        evaluate(model, loss_fn, (train[0][:0], train[1][:0]))
    with pytest.raises(ValueError, match=r"predict: batch_size must be >= 1, got 0"):
        predict(model, val[0], batch_size=0)
    with pytest.raises(TypeError, match=r"predict: batch_size must be an int, got float"):
        predict(model, val[0], batch_size=2.5)


def test_optimizer_of_another_model_is_an_error(data):
    train, _ = data
    model, other = mlp(), mlp()
    with pytest.raises(ValueError, match=r"fit: the optimizer holds none of this model's parameters"):
        fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(other.parameters()), train, verbose=False)


def test_a_non_finite_loss_stops_training(data):
    class NanLoss(nn.Layer):
        def forward(self, pred, target):
            self.shape = pred.shape
            return float("nan")

        def backward(self):
            return np.zeros(self.shape, dtype=np.float32)

    train, _ = data
    model = mlp()
    with pytest.raises(FloatingPointError, match=r"fit: the loss is nan at epoch 1, after 0 samples"):
        fit(model, NanLoss(), optim.Adam(model.parameters()), train, verbose=False)


def test_fit_steps_the_scheduler_once_per_epoch(data):
    train, val = data
    minidl.seed(0)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=3)
    fit(model, nn.SoftmaxCrossEntropy(), opt, train, epochs=3, verbose=False, scheduler=sched)
    assert sched.t == 3 and opt.lr == pytest.approx(0.0, abs=1e-15)
