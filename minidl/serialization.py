"""Checkpoints: a model's ``state_dict`` (and optionally an optimizer's state and the
epoch) in one NumPy ``.npz`` file, written so that it cannot be torn, read so that a
bad file changes nothing.

The file is a zip of ``.npy`` arrays, no pickle. Its keys:

    "0.weight", "3.running_mean", ...      the model's state dict, as ``state_dict()`` has it
    "optimizer/lr", "optimizer/m.0", ...   the optimizer's ``state_dict()``, when saved
    "meta/optimizer"                       the optimizer's class name ("Adam"), when saved
    "meta/epoch"                           the epoch, when saved

(a layer attribute cannot hold a "/", so the model's keys never collide with the others).

Writing is atomic: the arrays go to a temporary file in the target's folder, which is
flushed and fsync'ed and then renamed over the target with ``os.replace`` (an atomic
rename on POSIX and Windows). A crash, an exception or a kill at any moment leaves
either the previous checkpoint or the new one, never a mix; at worst a stray
``<name>.<random>.tmp`` file stays behind. The path is used exactly as given: ``save(model,
"ckpt")`` writes ``ckpt`` and ``load(model, "ckpt")`` reads it (NumPy's own ``np.savez``
would have written ``ckpt.npz``).
"""

import os
import secrets
import struct
import zipfile
import zlib

import numpy as np

from .nn.checks import integer

OPTIMIZER, META = "optimizer/", "meta/"
UNREADABLE = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError, NotImplementedError)


def save(model, path, *, optimizer=None, epoch=None):
    """Write ``model.state_dict()`` (and ``optimizer.state_dict()`` and ``epoch`` when given)
    to ``path``, atomically. Returns ``path``."""
    path = os.fspath(path)
    arrays = dict(model.state_dict())
    if optimizer is not None:
        if not hasattr(optimizer, "state_dict") or not hasattr(optimizer, "params"):
            raise TypeError(f"minidl.save: optimizer must be a minidl optimizer, got {type(optimizer).__name__}")
        arrays.update({OPTIMIZER + key: value for key, value in optimizer.state_dict().items()})
        arrays[META + "optimizer"] = np.array(type(optimizer).__name__)
    if epoch is not None:
        arrays[META + "epoch"] = np.array(integer("minidl.save", "epoch", epoch, 0), dtype=np.int64)
    _write_atomically(path, arrays)
    return path


def _write_atomically(path, arrays):
    """np.savez into ``<path>.<random>.tmp`` beside ``path``, fsync, then rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"minidl.save: the folder {folder!r} does not exist")
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:  # "x": never overwrite another writer's file
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_checkpoint(path):
    """The parts of a checkpoint, read and checked for readability (not yet against a
    model): ``{"model": {key: array}, "optimizer": {key: array} or None, "optimizer_type":
    str or None, "epoch": int or None}``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is
    not a readable ``.npz`` of plain arrays (a torn or foreign file, an array that needs
    pickle), naming the key where one is at fault.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        hint = (
            f"; there is {path + '.npz'!r} (older minidl versions added .npz)" if os.path.exists(path + ".npz") else ""
        )
        raise FileNotFoundError(f"minidl.load: no file {path!r}{hint}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"minidl.load: {path!r} is not a minidl checkpoint (a .npz file is a zip archive; this "
            f"one is not: a foreign file, or one cut short)"
        )
    key, arrays = None, {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                arrays[key] = archive[key]
    except UNREADABLE as err:  # what a damaged archive raises, from zipfile, zlib or NumPy's .npy reader
        where = "its list of entries" if key is None else f"the entry {key!r}"
        raise ValueError(
            f"minidl.load: {path!r} is not a readable minidl checkpoint: {where} cannot be read as a "
            f"plain array ({type(err).__name__}: {err}); a damaged file, or one that needs pickle"
        ) from err
    parts = {"model": {}, "optimizer": None, "optimizer_type": None, "epoch": None}
    for key, value in arrays.items():
        if key.startswith(OPTIMIZER):
            parts["optimizer"] = parts["optimizer"] or {}
            parts["optimizer"][key[len(OPTIMIZER) :]] = value
        elif key == META + "optimizer":
            parts["optimizer_type"] = str(value)
        elif key == META + "epoch":
            if value.shape != () or not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"minidl.load: {path!r}: 'meta/epoch' must be one integer, got {value!r}")
            parts["epoch"] = int(value)
        else:
            parts["model"][key] = value
    return parts


def load(model, path, *, optimizer=None):
    """Load a file written by ``save`` into ``model`` (and ``optimizer``); returns the model.

    Everything is checked before anything is written (keys, shapes, real and finite
    values, the optimizer's type and hyper-parameters), so a failed load leaves the model
    and the optimizer exactly as they were. Raises ``FileNotFoundError`` for a missing
    file, ``ValueError`` for an unreadable file, ``KeyError`` for keys that do not match,
    ``ValueError``/``TypeError`` for shapes and values, each naming the key. The epoch of a
    checkpoint is ``read_checkpoint(path)["epoch"]``.
    """
    parts = read_checkpoint(path)
    apply_model = model.checked_state(parts["model"])
    apply_optimizer = None
    if optimizer is not None:
        if parts["optimizer"] is None:
            raise KeyError(f"minidl.load: {os.fspath(path)!r} holds no optimizer state (saved without optimizer=)")
        if parts["optimizer_type"] != type(optimizer).__name__:
            raise TypeError(
                f"minidl.load: {os.fspath(path)!r} holds the state of a {parts['optimizer_type']}, "
                f"not of a {type(optimizer).__name__}"
            )
        apply_optimizer = optimizer.checked_state(parts["optimizer"])
    apply_model()
    if apply_optimizer is not None:
        apply_optimizer()
    return model
