"""The training loop, written out once: ``fit``, ``evaluate``, ``predict``.

One training step on a mini-batch (xb, yb) is the five lines every deep-learning program
repeats:

    logits = model(xb)                        # forward: the layers cache what backward needs
    loss = loss_fn(logits, yb)                # a float, the mean loss over the batch
    optimizer.zero_grad()                     # backward *adds* into .grad: clear it first
    model.backward(loss_fn.backward())        # d(loss)/d(every parameter), by the chain rule
    optimizer.step()                          # move every parameter against its gradient

``fit`` writes the fourth line ``model.backward_params(loss_fn.backward())``: the same
parameter gradients, without the gradient with respect to the images, which nothing
uses (the first layer then skips its input-gradient product; PyTorch skips it too).

An epoch is one pass over the training data in mini-batches (a new order each epoch);
after it, the model is measured on the validation data in evaluation mode (dropout off,
batch norm on its running statistics). ``fit`` records both in a ``History``.

Devices. Each batch is moved to the model's device (``model.to("cuda")`` is all it takes
to train on the GPU); what comes back (losses, accuracies, ``predict``'s outputs) is on
the host.

Checkpoints and resuming. ``fit(..., checkpoint="run.npz")`` saves, after every epoch, the
model, the optimizer, the scheduler, the epoch, the history and the state of every random
generator in play (minidl's global one, which draws dropout masks, and the loader's own
when ``seed`` is given, which draws the order and the augmentations). ``fit(...,
resume_from="run.npz")`` loads all of it and goes on with the next epoch, so 2 epochs,
then 2 more resumed from the checkpoint, end with the same bits as 4 epochs in one go.

Accuracy is reported when the targets are integer class labels: the predicted class is
the argmax of the outputs over axis 1 (the class axis of (N, K) logits, or of (N, K, H, W)
per-pixel logits). For regression targets (float ``y``, e.g. with ``MSELoss``) it is None.
"""

import contextlib
import json
import os
import time

import numpy as np
from tqdm import tqdm

from . import anomaly, rng, serialization
from .data.loader import DataLoader
from .device import to_device, to_host


def _accuracy_counts(outputs, y):
    """(number correct, number of predictions) when ``y`` holds class labels, else None."""
    outputs, y = to_host(outputs), to_host(y)
    if not np.issubdtype(y.dtype, np.integer) or outputs.ndim != y.ndim + 1:
        return None
    predicted = outputs.argmax(axis=1)
    return int(np.sum(predicted == y)), y.size


def _check_data(where, name, data):
    """``data`` must be an ``(x, y)`` pair of arrays with as many rows each."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{where}: {name} must be an (x, y) tuple of arrays, got {type(data).__name__}")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"{where}: {name} has x of shape {x.shape} and y of shape {y.shape}; "
            f"they need the same number of samples (first axis)"
        )
    if len(x) == 0:
        raise ValueError(f"{where}: {name} is empty")
    return x, y


class History:
    """What ``fit`` measured, one entry per epoch, in lists:

    ``train_loss``, ``train_acc``   means over the epoch's training batches (taken in training
                                    mode while the weights were changing, as Keras reports)
    ``val_loss``, ``val_acc``       on the validation data after the epoch, in eval mode
    ``epoch_time``                  seconds for the epoch (training + validation)

    An entry is None where nothing was measured: ``val_*`` without validation data,
    ``*_acc`` for targets that are not class labels.
    """

    FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_time")

    def __init__(self):
        for field in self.FIELDS:
            setattr(self, field, [])

    def __len__(self):
        return len(self.train_loss)

    def append(self, **values):
        """Record one epoch: a value (or None) for each field."""
        for field in self.FIELDS:
            getattr(self, field).append(values.get(field))

    def as_dict(self):
        """``{field: list}``, copies."""
        return {field: list(getattr(self, field)) for field in self.FIELDS}

    def plot(self, path=None):
        """Learning curves: loss (and accuracy when measured), train vs validation, per epoch.

        Returns the matplotlib ``Figure``; saves it to ``path`` too when given (e.g.
        ``"curves.png"``). On a machine without a display matplotlib falls back to its Agg
        backend by itself, so this works on servers and in CI.
        """
        import matplotlib.pyplot as plt

        epochs = np.arange(1, len(self) + 1)
        has_acc = any(a is not None for a in self.train_acc + self.val_acc)
        fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 4), squeeze=False)
        panels = [(axes[0, 0], "loss", self.train_loss, self.val_loss)]
        if has_acc:
            panels.append((axes[0, 1], "accuracy", self.train_acc, self.val_acc))
        for ax, what, train, val in panels:
            for label, values, style in (("train", train, "o-"), ("validation", val, "s--")):
                if any(v is not None for v in values):
                    ax.plot(epochs, [np.nan if v is None else v for v in values], style, label=label)
            ax.set_xlabel("epoch")
            ax.set_ylabel(what)
            ax.set_title(what)
            ax.grid(True, alpha=0.3)
            ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig

    def __repr__(self):
        if not len(self):
            return "History(0 epochs)"
        last = ", ".join(
            f"{f}={getattr(self, f)[-1]:.4g}"
            for f in self.FIELDS
            if f != "epoch_time" and getattr(self, f)[-1] is not None
        )
        return f"History({len(self)} epochs, last: {last})"


def fit(
    model,
    loss_fn,
    optimizer,
    train_data,
    val_data=None,
    epochs=10,
    batch_size=32,
    shuffle=True,
    seed=None,
    verbose=True,
    scheduler=None,
    detect_anomaly=False,
    transform=None,
    checkpoint=None,
    resume_from=None,
):
    """Train ``model`` for ``epochs`` passes over ``train_data``; return a ``History``.

    ``train_data`` and ``val_data`` are ``(x, y)`` tuples of arrays. Each epoch goes over
    the training data in mini-batches of ``batch_size`` (a new order per epoch when
    ``shuffle``; ``seed`` fixes that order, otherwise it comes from ``minidl.seed``),
    doing the five-line step of the module docstring on each, then evaluates on
    ``val_data`` if given. With ``verbose``, a progress bar shows the running loss (only
    when stderr is a terminal) and one summary line per epoch is printed. The model is
    in training mode while it trains, in eval mode while it is validated, and is left in
    the mode it had before. A ``scheduler`` (e.g. ``optim.CosineAnnealingLR``) gets one
    ``step()`` at the end of every epoch. With ``detect_anomaly``, training runs inside
    ``minidl.detect_anomaly()``: the first NaN or inf in a layer's output or gradient stops
    it with an error naming the layer (slower: every array is checked). ``transform``
    (e.g. ``minidl.data.transforms.Compose([...])``) augments every training batch, never
    the validation data.

    ``checkpoint`` (a path) saves everything needed to resume after every epoch;
    ``resume_from`` (a path written that way) loads it into ``model``, ``optimizer`` and
    ``scheduler`` and trains from the epoch after the saved one up to ``epochs`` (the same
    arguments as the first run give the same bits as one uninterrupted run); the returned
    history holds the earlier epochs too.
    """
    x, y = _check_data("fit", "train_data", train_data)
    if val_data is not None:
        _check_data("fit", "val_data", val_data)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise TypeError(f"fit: epochs must be an int, got {type(epochs).__name__}")
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    params = getattr(optimizer, "params", None)
    if params is not None:
        own = {id(p) for p in model.parameters()}
        if not any(id(p) in own for p in params):
            raise ValueError(
                "fit: the optimizer holds none of this model's parameters; "
                "make it with optim.SGD(model.parameters(), ...) for this model"
            )
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(
            f"fit: scheduler must have a step() method (e.g. optim.CosineAnnealingLR), got {type(scheduler).__name__}"
        )
    if checkpoint is not None or resume_from is not None:
        for kind, part in (("optimizer", optimizer), ("scheduler", scheduler)):
            if part is not None and not callable(getattr(part, "state_dict", None)):
                raise TypeError(
                    f"fit: checkpoint/resume_from need a {kind} with state_dict(), got {type(part).__name__}"
                )
    if checkpoint is not None and not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
        raise FileNotFoundError(f"fit: the folder of checkpoint={os.fspath(checkpoint)!r} does not exist")
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=transform)
    history = History()
    done = 0 if resume_from is None else _resume(resume_from, model, optimizer, scheduler, loader, history, epochs)
    with anomaly.detect_anomaly() if detect_anomaly else contextlib.nullcontext():
        _fit_epochs(
            model,
            loss_fn,
            optimizer,
            loader,
            val_data,
            range(done + 1, epochs + 1),
            verbose,
            scheduler,
            history,
            checkpoint,
        )
    return history


def _save_checkpoint(path, model, optimizer, scheduler, epoch, loader, history):
    """``minidl.save``'s arrays plus what resuming exactly needs: the generators' states
    (as JSON strings) and the history (None as NaN)."""
    arrays = serialization.checkpoint_arrays(model, optimizer, scheduler, epoch)
    arrays[serialization.FIT + "rng"] = np.array(json.dumps(rng.get_state()))
    if loader.seed is not None:
        arrays[serialization.FIT + "loader_rng"] = np.array(json.dumps(loader.generator().bit_generator.state))
    for field in History.FIELDS:
        values = [np.nan if v is None else v for v in getattr(history, field)]
        arrays[f"{serialization.FIT}history.{field}"] = np.array(values, dtype=np.float64)
    serialization.write_atomically(os.fspath(path), arrays)


def _generator_state(path, parts, key):
    """The generator state stored under ``fit/<key>``, checked by setting it on a scratch
    generator (so a bad one raises before anything is loaded)."""
    try:
        state = json.loads(str(parts[key]))
        np.random.default_rng().bit_generator.state = state
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"fit: {path!r}: 'fit/{key}' is not a random generator's state ({err})") from None
    return state


def _resume(path, model, optimizer, scheduler, loader, history, epochs):
    """Load a checkpoint of ``fit(checkpoint=...)``: everything is checked first, then the
    model, optimizer, scheduler, generators and ``history`` are set. Returns the number of
    epochs done."""
    path = os.fspath(path)
    parts = serialization.read_checkpoint(path)
    if parts["fit"] is None or parts["epoch"] is None:
        raise ValueError(
            f"fit: {path!r} was not written by fit(checkpoint=...): it lacks the random generators' states that "
            f"resuming exactly needs (minidl.load(model, path) loads its weights)"
        )
    if parts["scheduler"] is not None and scheduler is None:
        raise ValueError(f"fit: {path!r} holds the state of a {parts['scheduler_type']}; pass it as scheduler=")
    done, fit_parts = parts["epoch"], parts["fit"]
    if done >= epochs:
        raise ValueError(f"fit: {path!r} has {done} epochs done and epochs={epochs}; ask for more epochs to resume")
    if (loader.seed is not None) != ("loader_rng" in fit_parts):
        raise ValueError(
            f"fit: {path!r} was written by a fit {'with' if 'loader_rng' in fit_parts else 'without'} a seed, "
            f"this one has seed={loader.seed}; resume with the arguments of the first run"
        )
    apply = serialization.checked_load(path, parts, model, optimizer, scheduler)
    global_state = _generator_state(path, fit_parts, "rng")
    loader_state = _generator_state(path, fit_parts, "loader_rng") if loader.seed is not None else None
    past = {}
    for field in History.FIELDS:
        values = np.asarray(fit_parts.get(f"history.{field}"))
        if values.shape != (done,) or not np.issubdtype(values.dtype, np.floating):
            raise ValueError(f"fit: {path!r}: 'fit/history.{field}' must hold {done} numbers, got {values!r}")
        past[field] = [None if np.isnan(v) else float(v) for v in values]
    apply()
    rng.set_state(global_state)
    if loader_state is not None:
        loader.generator().bit_generator.state = loader_state
    for epoch in range(done):
        history.append(**{field: past[field][epoch] for field in History.FIELDS})
    return done


def _fit_epochs(model, loss_fn, optimizer, loader, val_data, epoch_numbers, verbose, scheduler, history, checkpoint):
    """The epochs of ``fit``, appending to ``history`` (and saving to ``checkpoint``)."""
    was_training = model.training
    epochs = epoch_numbers.stop - 1
    try:
        for epoch in epoch_numbers:
            start = time.perf_counter()
            model.train()
            loss_sum, n_seen, n_correct, n_predicted = 0.0, 0, 0, 0
            bar = tqdm(
                loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=None if verbose else True
            )  # None: off when not a terminal
            for xb, yb in bar:
                xb, yb = to_device(xb, model.device), to_device(yb, model.device)
                logits = model(xb)
                loss = float(loss_fn(logits, yb))
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"fit: the loss is {loss} at epoch {epoch}, after {n_seen} samples; "
                        f"the training diverged (try a smaller learning rate)"
                    )
                counts = _accuracy_counts(logits, yb)  # before the step changes anything
                optimizer.zero_grad()
                model.backward_params(loss_fn.backward())  # no gradient for the images (docstring)
                optimizer.step()

                loss_sum += loss * xb.shape[0]  # the batch loss is a mean: weight it by the batch size
                n_seen += xb.shape[0]
                if counts is not None:
                    n_correct += counts[0]
                    n_predicted += counts[1]
                bar.set_postfix(loss=f"{loss_sum / n_seen:.4f}", refresh=False)
            bar.close()

            train_loss = loss_sum / n_seen
            train_acc = n_correct / n_predicted if n_predicted else None
            val = evaluate(model, loss_fn, val_data) if val_data is not None else {}
            history.append(
                train_loss=train_loss,
                train_acc=train_acc,
                val_loss=val.get("loss"),
                val_acc=val.get("accuracy"),
                epoch_time=time.perf_counter() - start,
            )
            if verbose:
                print(_summary_line(history, epoch, epochs))
            if scheduler is not None:
                scheduler.step()
            if checkpoint is not None:
                _save_checkpoint(checkpoint, model, optimizer, scheduler, epoch, loader, history)
    finally:
        model.train(was_training)


def _summary_line(history, epoch, epochs):
    """``epoch 3/10  train loss 0.1234 acc 0.9650  val loss 0.2345 acc 0.9400  (1.2 s)``"""
    parts = [f"epoch {epoch}/{epochs}"]
    for split in ("train", "val"):
        loss, acc = getattr(history, f"{split}_loss")[-1], getattr(history, f"{split}_acc")[-1]
        if loss is not None:
            parts.append(f"{split} loss {loss:.4f}" + (f" acc {acc:.4f}" if acc is not None else ""))
    parts.append(f"({history.epoch_time[-1]:.1f} s)")
    return "  ".join(parts)


def evaluate(model, loss_fn, data, batch_size=256):
    """Mean loss (and accuracy for class labels, else None) of ``model`` on ``data = (x, y)``.

    Returns ``{"loss": float, "accuracy": float or None}``. Runs in eval mode; the model's
    previous mode is restored afterwards. Nothing is trained.
    """
    x, y = _check_data("evaluate", "data", data)
    was_training = model.training
    model.eval()
    try:
        loss_sum, n_correct, n_predicted, is_classification = 0.0, 0, 0, True
        for xb, yb in DataLoader(x, y, batch_size=batch_size):
            xb, yb = to_device(xb, model.device), to_device(yb, model.device)
            outputs = model(xb)
            loss_sum += float(loss_fn(outputs, yb)) * xb.shape[0]
            counts = _accuracy_counts(outputs, yb)
            if counts is None:
                is_classification = False
            else:
                n_correct += counts[0]
                n_predicted += counts[1]
    finally:
        model.train(was_training)
    accuracy = n_correct / n_predicted if is_classification else None
    return {"loss": loss_sum / len(x), "accuracy": accuracy}


def predict(model, x, batch_size=256):
    """The model's outputs on ``x``, computed in batches in eval mode and concatenated.

    For a classifier these are the logits (N, K); the predicted classes are
    ``predict(model, x).argmax(axis=1)`` (or ``predict_classes``). The model's previous
    mode is restored afterwards.
    """
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"predict: x must hold at least one sample, got shape {x.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"predict: batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        outputs = [to_host(model(to_device(x[i : i + batch_size], model.device))) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outputs)


def predict_classes(model, x, batch_size=256):
    """The predicted class of each sample: ``predict(model, x).argmax(axis=1)`` (int64)."""
    return predict(model, x, batch_size).argmax(axis=1)
