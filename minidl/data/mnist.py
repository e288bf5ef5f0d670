"""MNIST and Fashion-MNIST: 28x28 grey images in ten classes, read from IDX files.

    from minidl.data import load_mnist
    x, y = load_mnist("digits", "train")       # x (60000, 1, 28, 28) float32 in [0, 1]
    x, y = load_mnist("fashion", "test")       # y (10000,) int64 in 0..9
    x, y = load_mnist("digits", "train", n=1000)   # the first 1000, for a quick run

The IDX format
--------------
Both data sets ship as four IDX files (often gzip-compressed, ``.gz``)::

    train-images-idx3-ubyte   60000 images      train-labels-idx1-ubyte   60000 labels
    t10k-images-idx3-ubyte    10000 images      t10k-labels-idx1-ubyte    10000 labels

An IDX file is a tiny header followed by raw bytes, all integers big-endian::

    offset 0   magic number   0x00 0x00 TYPE NDIM   TYPE 0x08 = unsigned byte
    offset 4   size of dimension 0 (the number of items N)
    offset 8   size of dimension 1 ...                 (one 4-byte integer per dimension)
    offset 4 + 4*NDIM   the N * d1 * ... values, one byte each, row-major

So an images file has magic 0x00000803 (bytes, 3 dimensions: N, 28, 28) and
16 + N*28*28 bytes; a labels file has magic 0x00000801 (bytes, 1 dimension: N) and
8 + N bytes. ``parse_idx`` checks all of that and raises ``ValueError`` for a wrong
magic number, a file shorter than its header promises, or extra bytes after the data.

Where the files are looked for, in order
----------------------------------------
1. The cache folder: ``root`` if given, else ``$MINIDL_DATA`` if set, else
   ``~/.cache/minidl``; inside it one subfolder per kind: ``mnist/`` for the digits,
   ``fashion-mnist/`` for Fashion-MNIST.
2. For Fashion-MNIST, ``/usr/share/datasets/fashion-mnist/``, where Debian's package
   ``dataset-fashion-mnist`` installs the real files (``apt-get install
   dataset-fashion-mnist``).
3. If ``download=True``: the public mirrors in ``MIRRORS``, fetched with ``urllib``
   (short timeouts), decompressed, checked, and saved into the cache folder.

In a folder, each file may be plain (``train-images-idx3-ubyte``) or gzip-compressed
(``train-images-idx3-ubyte.gz``); gzip is recognised by its first two bytes.

Checksums
---------
Every file is checked against the SHA-256 of its *decompressed* IDX bytes (``SHA256``
below). Digests of the ``.gz`` files are useless for this: recompressing the same bytes
(as Debian did) gives a different ``.gz``. The Fashion-MNIST digests were computed here
from the files of Debian's ``dataset-fashion-mnist``; the MNIST digests are the ones
published in many independent projects for the decompressed files of the standard
mirrors (their sizes 47040016, 60008, 7840016, 10008 bytes match the headers). A
mismatch raises ``ValueError`` naming the file, both digests, and what to do.
"""

import gzip
import hashlib
import math
import os
import sys
import urllib.request
import zlib

import numpy as np

# kind -> name of its subfolder in the cache folder
SUBFOLDERS = {"digits": "mnist", "fashion": "fashion-mnist"}

# kind -> folders a system package installs the files into (searched after the cache)
SYSTEM_FOLDERS = {"digits": [], "fashion": ["/usr/share/datasets/fashion-mnist"]}

# kind -> base URLs; the file fetched is base + name + ".gz"
MIRRORS = {
    "digits": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

TIMEOUT = 10  # seconds a download may wait on the network before a mirror counts as failed

# split -> (images file, labels file)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# kind -> file name -> SHA-256 of the decompressed IDX bytes
SHA256 = {
    "digits": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

GZIP_MAGIC = b"\x1f\x8b"
IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
NUM_CLASSES = 10


def load_mnist(kind="digits", split="train", *, root=None, download=True, n=None):
    """Load MNIST (``kind="digits"``) or Fashion-MNIST (``kind="fashion"``).

    Returns ``(x, y)``: ``x`` of shape (N, 1, 28, 28), float32, pixel / 255 in [0, 1];
    ``y`` of shape (N,), int64, the class 0..9. N is 60000 for ``split="train"`` and
    10000 for ``split="test"``, or ``n`` if given (the first ``n`` examples).

    ``root`` replaces the cache folder (default ``$MINIDL_DATA`` or ``~/.cache/minidl``);
    the files are looked for in its subfolder ``mnist/`` or ``fashion-mnist/``, then in
    the system folder (Fashion-MNIST), then downloaded into it unless ``download=False``.
    See the module docstring for the IDX format, the search order and the checksums.

    Raises ``FileNotFoundError`` when a file is nowhere and cannot be downloaded (the
    message names the folder to put it in), and ``ValueError`` for a file whose
    checksum or IDX content is wrong.
    """
    if kind not in SUBFOLDERS:
        raise ValueError(f"load_mnist: kind must be one of {sorted(SUBFOLDERS)}, got {kind!r}")
    if split not in FILES:
        raise ValueError(f"load_mnist: split must be one of {sorted(FILES)}, got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise ValueError(f"load_mnist: n must be None or an int >= 0, got {n!r}")

    cache = cache_folder(kind, root)
    images_name, labels_name = FILES[split]
    images_path, images_bytes = _find_or_download(kind, images_name, cache, download)
    labels_path, labels_bytes = _find_or_download(kind, labels_name, cache, download)

    images = parse_idx(images_bytes, IMAGE_MAGIC, name=images_path)  # (N, rows, cols) uint8
    labels = parse_idx(labels_bytes, LABEL_MAGIC, name=labels_path)  # (N,) uint8
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"load_mnist: {images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels, expected 28x28"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"load_mnist: {images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels; the two files must come from the same split"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise ValueError(
            f"load_mnist: {labels_path} has label {labels[bad]} at index {bad}; labels must be in 0..{NUM_CLASSES - 1}"
        )

    if n is not None:
        if n > len(labels):
            raise ValueError(f"load_mnist: n={n} but the {kind} {split} split has {len(labels)} examples")
        images, labels = images[:n], labels[:n]
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(len(images), 1, 28, 28)
    y = labels.astype(np.int64)
    return x, y


def cache_folder(kind, root=None):
    """The folder the files of ``kind`` are cached in: ``<base>/mnist`` or ``<base>/fashion-mnist``,
    with ``<base>`` = ``root``, else ``$MINIDL_DATA``, else ``~/.cache/minidl``."""
    if root is None:
        root = os.environ.get("MINIDL_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "minidl")
    return os.path.join(os.fspath(root), SUBFOLDERS[kind])


def parse_idx(data, magic, name="IDX data"):
    """Read the bytes of an (uncompressed) IDX file into a uint8 array of its dimensions.

    ``magic`` is the expected magic number: 0x00000803 for images (N, rows, cols),
    0x00000801 for labels (N,). Its last byte is the number of dimensions. ``name``
    (usually the file's path) starts every error message. The array is a read-only view
    of ``data``.
    """
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < 4:
        raise ValueError(f"{name}: truncated IDX file: {len(data)} bytes, too short for a magic number")
    actual_magic = int.from_bytes(data[0:4], "big")
    if actual_magic != magic:
        hint = ""
        if data[:2] == GZIP_MAGIC:
            hint = " (it is gzip-compressed: decompress it first)"
        elif actual_magic in (IMAGE_MAGIC, LABEL_MAGIC):
            hint = " (an images file where a labels file was expected, or the reverse?)"
        raise ValueError(
            f"{name}: wrong magic number 0x{actual_magic:08x}, expected 0x{magic:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}){hint}"
        )
    if len(data) < header_size:
        raise ValueError(f"{name}: truncated IDX file: {len(data)} bytes, shorter than its {header_size}-byte header")
    # the size of each dimension: NDIM big-endian 4-byte integers after the magic number
    shape = tuple(int.from_bytes(data[4 + 4 * d : 8 + 4 * d], "big") for d in range(ndim))
    expected_size = header_size + math.prod(shape)  # Python ints: a forged header cannot overflow them
    dims = " x ".join(str(s) for s in shape)
    if len(data) < expected_size:
        raise ValueError(
            f"{name}: truncated IDX file: the header promises {dims} values "
            f"({expected_size} bytes in all) but the file has only {len(data)} bytes"
        )
    if len(data) > expected_size:
        raise ValueError(
            f"{name}: {len(data) - expected_size} bytes of trailing garbage after the "
            f"{dims} values the header promises ({expected_size} bytes expected, "
            f"{len(data)} found)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx_bytes(path):
    """The IDX bytes of the file at ``path``, gunzipped if the file is gzip-compressed."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data, path, todo="; delete it (or replace it with a good copy) and try again")
    return data


def sha256_hex(data):
    """The SHA-256 digest of ``data`` as 64 hex characters."""
    return hashlib.sha256(data).hexdigest()


def _gunzip(data, name, todo=""):
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{name}: corrupt gzip file ({err}){todo}") from err


def _find_or_download(kind, name, cache, download):
    """Return ``(path, idx_bytes)`` for file ``name``, checksum verified, searching the cache
    folder, then the system folders, then the mirrors (saving into the cache)."""
    folders = [cache] + SYSTEM_FOLDERS[kind]
    for folder in folders:
        for filename in (name, name + ".gz"):
            path = os.path.join(folder, filename)
            if os.path.isfile(path):
                data = read_idx_bytes(path)
                _verify(kind, name, data, path, in_cache=(folder == cache))
                return path, data

    where = " or ".join(folders)
    by_hand = (
        f"Put the files {', '.join(_all_file_names())} (each plain or .gz) in {cache} "
        f"by hand, or pass root= / set MINIDL_DATA to a folder whose {SUBFOLDERS[kind]}/ "
        f"subfolder holds them."
    )
    if not download:
        raise FileNotFoundError(f"load_mnist: {name} (kind={kind!r}) is not in {where}, and download=False. {by_hand}")

    failures = []
    for base in MIRRORS[kind]:
        url = base + name + ".gz"
        try:
            print(f"minidl: downloading {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                compressed = response.read()
            if compressed[:2] != GZIP_MAGIC:
                raise ValueError("the server did not send a gzip file")
            data = _gunzip(compressed, url)
            _verify(kind, name, data, url, in_cache=False)
        except (OSError, ValueError) as err:  # URLError, timeouts and HTTP errors are OSErrors
            failures.append(f"  {url}: {err}")
            continue
        path = os.path.join(cache, name)
        os.makedirs(cache, exist_ok=True)
        partial = path + ".part"
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)  # a file appears in the cache only once it is complete
        return path, data

    raise FileNotFoundError(
        f"load_mnist: {name} (kind={kind!r}) is not in {where}, and it could not be downloaded "
        f"(no network, or every mirror failed):\n" + "\n".join(failures) + f"\n{by_hand}"
    )


def _verify(kind, name, data, source, in_cache):
    expected = SHA256[kind][name]
    actual = sha256_hex(data)
    if actual == expected:
        return
    if in_cache:
        todo = "Delete it and call load_mnist again to download a fresh copy."
    elif "://" in source:
        todo = "The mirror sent a damaged or different file; try again later or another mirror."
    else:
        todo = (
            "It comes from a system package: reinstall that package (for Fashion-MNIST: "
            "apt-get install --reinstall dataset-fashion-mnist), or put a good copy in the "
            "cache folder, which is searched first."
        )
    raise ValueError(
        f"load_mnist: checksum mismatch for {source} ({kind} {name}): the SHA-256 of "
        f"its decompressed bytes is {actual}, expected {expected}. {todo}"
    )


def _all_file_names():
    return [name for pair in FILES.values() for name in pair]
