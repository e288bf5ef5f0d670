"""Save and load a model's ``state_dict`` as a NumPy ``.npz`` file (no pickle).

The file holds one array per key (``"0.weight"``, ``"3.running_mean"``, ...). Loading reads
and checks every array before touching the model, so a missing key, a wrong shape or a
corrupt file raises and leaves the model as it was.
"""
import os
import zipfile

import numpy as np


def save(model, path):
    """Write ``model.state_dict()`` to ``path`` (``.npz``). Returns the path written."""
    path = os.fspath(path)
    np.savez(path, **model.state_dict())
    return path if path.endswith(".npz") else path + ".npz"


def load(model, path):
    """Load a file written by ``save`` into ``model``; returns the model.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for a file that is not
    a readable ``.npz`` of plain arrays, and ``KeyError``/``ValueError`` (from
    ``load_state_dict``) for keys or shapes that do not match the model.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ValueError(f"minidl.load: {path!r} is not a readable minidl .npz file ({err})") from err
    return model.load_state_dict(state)
