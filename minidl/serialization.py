"""Checkpoints: a model's ``state_dict`` (and optionally an optimizer's and a scheduler's
state and the epoch) in one NumPy ``.npz`` file, written so that it cannot be torn, read
so that a bad file changes nothing.

The file is a zip of ``.npy`` arrays, no pickle. Its keys:

    "0.weight", "3.running_mean", ...      the model's state dict, as ``state_dict()`` has it
    "optimizer/param_groups.0.lr", ...     the optimizer's ``state_dict()``, when saved
    "scheduler/t", ...                     the scheduler's ``state_dict()``, when saved
    "meta/optimizer", "meta/scheduler"     their class names ("Adam"), when saved
    "meta/epoch"                           the epoch, when saved
    "fit/..."                              what ``fit(checkpoint=...)`` adds to resume
                                           exactly: the random generators' states and
                                           the history (see ``minidl/train.py``)

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

OPTIMIZER, SCHEDULER, META, FIT = "optimizer/", "scheduler/", "meta/", "fit/"
UNREADABLE = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError, NotImplementedError)


def save(model, path, *, optimizer=None, scheduler=None, epoch=None):
    """Write ``model.state_dict()`` (and ``optimizer.state_dict()``,
    ``scheduler.state_dict()`` and ``epoch`` when given) to ``path``, atomically. Returns
    ``path``."""
    path = os.fspath(path)
    write_atomically(path, checkpoint_arrays(model, optimizer, scheduler, epoch))
    return path


def checkpoint_arrays(model, optimizer=None, scheduler=None, epoch=None):
    """The arrays ``save`` writes, ``{key: array}`` (keys in the module docstring)."""
    arrays = dict(model.state_dict())
    for prefix, part, kind, attr in (
        (OPTIMIZER, optimizer, "optimizer", "params"),
        (SCHEDULER, scheduler, "scheduler", "base_lrs"),
    ):
        if part is None:
            continue
        if not hasattr(part, "state_dict") or not hasattr(part, attr):
            raise TypeError(f"minidl.save: {kind} must be a minidl {kind}, got {type(part).__name__}")
        arrays.update({prefix + key: value for key, value in part.state_dict().items()})
        arrays[META + kind] = np.array(type(part).__name__)
    if epoch is not None:
        arrays[META + "epoch"] = np.array(integer("minidl.save", "epoch", epoch, 0), dtype=np.int64)
    return arrays


def write_atomically(path, arrays):
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
    str or None, "scheduler": ..., "scheduler_type": ..., "epoch": int or None, "fit":
    {key: array} or None}``.

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
    parts = {"model": {}, "epoch": None}
    parts.update(dict.fromkeys(("optimizer", "optimizer_type", "scheduler", "scheduler_type", "fit")))
    for key, value in arrays.items():
        prefix = next((p for p in (OPTIMIZER, SCHEDULER, FIT) if key.startswith(p)), None)
        if prefix is not None:
            part = prefix[:-1]
            parts[part] = parts[part] or {}
            parts[part][key[len(prefix) :]] = value
        elif key in (META + "optimizer", META + "scheduler"):
            parts[key[len(META) :] + "_type"] = str(value)
        elif key == META + "epoch":
            if value.shape != () or not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"minidl.load: {path!r}: 'meta/epoch' must be one integer, got {value!r}")
            parts["epoch"] = int(value)
        else:
            parts["model"][key] = value
    return parts


def load(model, path, *, optimizer=None, scheduler=None):
    """Load a file written by ``save`` into ``model`` (and ``optimizer``, ``scheduler``);
    returns the model.

    Everything is checked before anything is written (keys, shapes, real and finite
    values, the optimizer's and scheduler's types and hyper-parameters), so a failed load
    leaves the model, the optimizer and the scheduler exactly as they were. Raises
    ``FileNotFoundError`` for a missing file, ``ValueError`` for an unreadable file,
    ``KeyError`` for keys that do not match, ``ValueError``/``TypeError`` for shapes and
    values, each naming the key. The epoch of a checkpoint is
    ``read_checkpoint(path)["epoch"]``.
    """
    checked_load(os.fspath(path), read_checkpoint(path), model, optimizer, scheduler)()
    return model


def checked_load(path, parts, model, optimizer=None, scheduler=None):
    """Check the ``parts`` of a checkpoint (from ``read_checkpoint``) against the model,
    the optimizer and the scheduler without changing any; return a function that loads
    them all."""
    appliers = [model.checked_state(parts["model"])]
    for kind, part in (("optimizer", optimizer), ("scheduler", scheduler)):
        if part is None:
            continue
        if parts[kind] is None:
            raise KeyError(f"minidl.load: {path!r} holds no {kind} state (saved without {kind}=)")
        if parts[kind + "_type"] != type(part).__name__:
            raise TypeError(
                f"minidl.load: {path!r} holds the state of a {parts[kind + '_type']}, not of a {type(part).__name__}"
            )
        appliers.append(part.checked_state(parts[kind]))

    def apply():
        for apply_part in appliers:
            apply_part()

    return apply
