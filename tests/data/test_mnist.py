"""load_mnist: the IDX parser, the checksums, the search order, the download path (against a
server on 127.0.0.1, never the internet), the errors, and the real Fashion-MNIST files of
Debian's dataset-fashion-mnist when they are installed."""

import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest

from minidl.data import mnist
from minidl.data.mnist import IMAGE_MAGIC, LABEL_MAGIC, load_mnist, parse_idx, read_idx_bytes

REAL_FASHION = mnist.SYSTEM_FOLDERS["fashion"][0]  # read before the fixture below empties the list
NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ---------------------------------------------------------------- helpers


def idx_bytes(array, magic):
    """The IDX encoding of a uint8 array: magic, one big-endian size per dimension, the bytes."""
    header = magic.to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def tiny_set(N=6, seed=0):
    """N random 28x28 images (with a 0 and a 255 in them) and labels 0..N-1."""
    images = np.random.default_rng(seed).integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return images, np.arange(N, dtype=np.uint8) % 10


def write(folder, name, data, gz=False):
    """Write ``data`` to folder/name (or folder/name.gz, compressed); return the path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + (".gz" if gz else ""))
    with open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_split(folder, images_data, labels_data, split="train", gz=False):
    write(folder, NAMES[split][0], images_data, gz)
    write(folder, NAMES[split][1], labels_data, gz)


def pin_digests(monkeypatch, kind, split, images_data, labels_data):
    """Make the expected SHA-256 of ``split``'s two files those of the given (decompressed) bytes."""
    for name, data in zip(NAMES[split], (images_data, labels_data)):
        monkeypatch.setitem(mnist.SHA256[kind], name, hashlib.sha256(data).hexdigest())


def dead_url():
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/"mirror"; yields (folder, base URL)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield str(folder), f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Every test: an empty cache folder, no system folder, and mirrors where nothing answers.
    Returns the cache base folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MINIDL_DATA", str(cache))
    monkeypatch.setattr(mnist, "SYSTEM_FOLDERS", {"digits": [], "fashion": []})
    monkeypatch.setattr(mnist, "MIRRORS", {"digits": [dead_url()], "fashion": [dead_url()]})
    monkeypatch.setattr(mnist, "TIMEOUT", 2)
    return str(cache)


# ---------------------------------------------------------------- the IDX parser


def test_parse_idx_reads_images_and_labels():
    images, labels = tiny_set()
    np.testing.assert_array_equal(parse_idx(idx_bytes(images, IMAGE_MAGIC), IMAGE_MAGIC), images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels, LABEL_MAGIC), LABEL_MAGIC), labels)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_bytes_plain_and_gzip(tmp_path, gz):
    images, _ = tiny_set()
    data = idx_bytes(images, IMAGE_MAGIC)
    path = write(str(tmp_path), "x-idx3-ubyte", data, gz=gz)
    assert read_idx_bytes(path) == data
    np.testing.assert_array_equal(parse_idx(read_idx_bytes(path), IMAGE_MAGIC), images)


def test_parse_idx_wrong_magic():
    _, labels = tiny_set()
    with pytest.raises(
        ValueError,
        match=r"f: wrong magic number 0x00000801, expected 0x00000803 "
        r"\(unsigned bytes, 3 dimensions\) \(an images file where",
    ):
        parse_idx(idx_bytes(labels, LABEL_MAGIC), IMAGE_MAGIC, name="f")
    with pytest.raises(ValueError, match="wrong magic number 0x12345678, expected 0x00000801"):
        parse_idx(b"\x12\x34\x56\x78" + bytes(8), LABEL_MAGIC)


def test_parse_idx_gzip_bytes_says_so():
    images, _ = tiny_set()
    with pytest.raises(ValueError, match="it is gzip-compressed: decompress it first"):
        parse_idx(gzip.compress(idx_bytes(images, IMAGE_MAGIC)), IMAGE_MAGIC)


def test_parse_idx_truncated_data():
    images, _ = tiny_set(N=6)
    data = idx_bytes(images, IMAGE_MAGIC)
    with pytest.raises(
        ValueError,
        match=r"f: truncated IDX file: the header promises 6 x 28 x 28 values "
        r"\(4720 bytes in all\) but the file has only 4719 bytes",
    ):
        parse_idx(data[:-1], IMAGE_MAGIC, name="f")


def test_parse_idx_truncated_header():
    images, _ = tiny_set()
    data = idx_bytes(images, IMAGE_MAGIC)
    with pytest.raises(ValueError, match="truncated IDX file: 10 bytes, shorter than its 16-byte header"):
        parse_idx(data[:10], IMAGE_MAGIC)
    with pytest.raises(ValueError, match="truncated IDX file: 3 bytes, too short for a magic number"):
        parse_idx(data[:3], IMAGE_MAGIC)
    with pytest.raises(ValueError, match="truncated IDX file: 0 bytes"):
        parse_idx(b"", LABEL_MAGIC)


def test_parse_idx_trailing_garbage():
    _, labels = tiny_set(N=6)
    with pytest.raises(
        ValueError,
        match=r"f: 2 bytes of trailing garbage after the 6 values the header "
        r"promises \(14 bytes expected, 16 found\)",
    ):
        parse_idx(idx_bytes(labels, LABEL_MAGIC) + b"\x00\x00", LABEL_MAGIC, name="f")


def test_corrupt_gzip_file(tmp_path):
    images, _ = tiny_set()
    path = write(str(tmp_path), "x-idx3-ubyte", idx_bytes(images, IMAGE_MAGIC), gz=True)
    with open(path, "rb") as f:
        compressed = f.read()
    with open(path, "wb") as f:
        f.write(compressed[: len(compressed) // 2])  # cut in the middle of the deflate stream
    with pytest.raises(ValueError, match="x-idx3-ubyte.gz: corrupt gzip file .*; delete it"):
        read_idx_bytes(path)


# ---------------------------------------------------------------- load_mnist on tiny files


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("kind, sub", [("digits", "mnist"), ("fashion", "fashion-mnist")])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_from_cache(offline, monkeypatch, gz, kind, sub, split):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(os.path.join(offline, sub), images_data, labels_data, split, gz=gz)
    pin_digests(monkeypatch, kind, split, images_data, labels_data)

    x, y = load_mnist(kind, split, download=False)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (6,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, labels)


def test_load_first_n(offline, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(os.path.join(offline, "mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "digits", "train", images_data, labels_data)

    x, y = load_mnist("digits", "train", n=3)
    assert x.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(y, labels[:3])
    assert load_mnist("digits", "train", n=0)[0].shape == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="load_mnist: n=7 but the digits train split has 6 examples"):
        load_mnist("digits", "train", n=7)


@pytest.mark.parametrize("n", [-1, 2.5, "3", True])
def test_bad_n(n):
    with pytest.raises(ValueError, match=r"load_mnist: n must be None or an int >= 0, got"):
        load_mnist("digits", "train", n=n)


def test_bad_kind_and_split():
    with pytest.raises(ValueError, match=r"load_mnist: kind must be one of \['digits', 'fashion'\], got 'kmnist'"):
        load_mnist("kmnist")
    with pytest.raises(ValueError, match=r"load_mnist: split must be one of \['test', 'train'\], got 'val'"):
        load_mnist("digits", "val")


def test_root_overrides_cache_folder(tmp_path, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(str(tmp_path / "elsewhere" / "fashion-mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "fashion", "train", images_data, labels_data)

    x, _ = load_mnist("fashion", "train", root=tmp_path / "elsewhere", download=False)
    assert x.shape == (6, 1, 28, 28)


def test_default_cache_folder_without_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIDL_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mnist.cache_folder("fashion") == os.path.join(str(tmp_path), ".cache", "minidl", "fashion-mnist")


def test_count_mismatch(offline, monkeypatch):
    images, labels = tiny_set(N=6)
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels[:5], LABEL_MAGIC)
    write_split(os.path.join(offline, "mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "digits", "train", images_data, labels_data)
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte holds 6 images but .*train-labels-idx1-ubyte "
        r"holds 5 labels",
    ):
        load_mnist("digits", "train")


def test_label_out_of_range(offline, monkeypatch):
    images, labels = tiny_set(N=6)
    labels[2] = 10
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(os.path.join(offline, "mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "digits", "train", images_data, labels_data)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte has label 10 at index 2; labels must be in 0..9"):
        load_mnist("digits", "train")


def test_images_not_28x28(offline, monkeypatch):
    images = np.zeros((4, 32, 32), dtype=np.uint8)
    labels = np.zeros(4, dtype=np.uint8)
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(os.path.join(offline, "mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "digits", "train", images_data, labels_data)
    with pytest.raises(ValueError, match="holds images of 32x32 pixels, expected 28x28"):
        load_mnist("digits", "train")


@pytest.mark.parametrize("cut", ["truncated", "garbage", "magic"])
def test_corrupt_file_in_cache_is_reported(offline, monkeypatch, cut):
    """A corrupt file whose digest still matches (pinned here) reaches the parser's checks."""
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    images_data = {
        "truncated": images_data[:-5],
        "garbage": images_data + b"junk",
        "magic": b"\x00\x00\x08\x04" + images_data[4:],
    }[cut]
    write_split(os.path.join(offline, "mnist"), images_data, labels_data, gz=True)
    pin_digests(monkeypatch, "digits", "train", images_data, labels_data)
    message = {
        "truncated": "truncated IDX file",
        "garbage": "4 bytes of trailing garbage",
        "magic": "wrong magic number 0x00000804",
    }[cut]
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: " + message):
        load_mnist("digits", "train")


# ---------------------------------------------------------------- checksums


def test_checksum_mismatch_names_file_digests_and_remedy(offline, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(os.path.join(offline, "fashion-mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "fashion", "train", images_data, labels_data)
    expected = "0" * 64
    monkeypatch.setitem(mnist.SHA256["fashion"], "train-labels-idx1-ubyte", expected)
    actual = hashlib.sha256(labels_data).hexdigest()
    path = os.path.join(offline, "fashion-mnist", "train-labels-idx1-ubyte")
    with pytest.raises(ValueError) as info:
        load_mnist("fashion", "train")
    message = str(info.value)
    assert f"checksum mismatch for {path} (fashion train-labels-idx1-ubyte)" in message
    assert f"is {actual}, expected {expected}" in message
    assert "Delete it and call load_mnist again to download a fresh copy" in message


def test_checksum_is_of_the_decompressed_bytes(offline, monkeypatch):
    """Two different .gz encodings of the same IDX bytes both pass: the digest is of what is inside."""
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    pin_digests(monkeypatch, "digits", "train", images_data, labels_data)
    folder = os.path.join(offline, "mnist")
    write(folder, NAMES["train"][1], labels_data)
    first = None
    for level in (1, 9):
        with open(os.path.join(folder, NAMES["train"][0] + ".gz"), "wb") as f:
            f.write(gzip.compress(images_data, compresslevel=level, mtime=level))
        with open(os.path.join(folder, NAMES["train"][0] + ".gz"), "rb") as f:
            gz_digest = hashlib.sha256(f.read()).hexdigest()
        assert gz_digest != first
        first = gz_digest
        np.testing.assert_array_equal(load_mnist("digits", "train")[1], labels)


def test_checksum_mismatch_in_system_folder_says_reinstall(tmp_path, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    system = str(tmp_path / "system")
    write_split(system, images_data, labels_data, gz=True)
    monkeypatch.setitem(mnist.SYSTEM_FOLDERS, "fashion", [system])
    with pytest.raises(
        ValueError,
        match=r"checksum mismatch for .*system.*train-images-idx3-ubyte\.gz.*"
        r"reinstall that package",
    ):
        load_mnist("fashion", "train")  # the real Fashion-MNIST digests: the tiny files cannot match


def test_known_digests_are_sha256_hex():
    for kind in ("digits", "fashion"):
        assert sorted(mnist.SHA256[kind]) == sorted(n for pair in NAMES.values() for n in pair)
        for digest in mnist.SHA256[kind].values():
            assert len(digest) == 64 and int(digest, 16) >= 0


# ---------------------------------------------------------------- search order


def test_system_folder_is_used_when_cache_is_empty(tmp_path, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    system = str(tmp_path / "system")
    write_split(system, images_data, labels_data, "test", gz=True)
    monkeypatch.setitem(mnist.SYSTEM_FOLDERS, "fashion", [system])
    pin_digests(monkeypatch, "fashion", "test", images_data, labels_data)
    np.testing.assert_array_equal(load_mnist("fashion", "test", download=False)[1], labels)


def test_cache_comes_before_system_folder(offline, tmp_path, monkeypatch):
    images, labels = tiny_set(seed=1)
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    write_split(os.path.join(offline, "fashion-mnist"), images_data, labels_data)
    pin_digests(monkeypatch, "fashion", "train", images_data, labels_data)
    system = str(tmp_path / "system")
    write_split(system, b"not read", b"not read")  # would fail both checksum and parser if read
    monkeypatch.setitem(mnist.SYSTEM_FOLDERS, "fashion", [system])
    x, _ = load_mnist("fashion", "train", download=False)
    np.testing.assert_array_equal(x[:, 0], images / np.float32(255))


# ---------------------------------------------------------------- download


def test_download_from_local_http_mirror(offline, http_mirror, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    folder, url = http_mirror
    write_split(folder, images_data, labels_data, "test", gz=True)  # mirrors serve .gz
    pin_digests(monkeypatch, "digits", "test", images_data, labels_data)
    monkeypatch.setitem(mnist.MIRRORS, "digits", [dead_url(), url])  # the first mirror is down

    x, y = load_mnist("digits", "test")
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (6, 1, 28, 28)
    cache = os.path.join(offline, "mnist")
    assert sorted(os.listdir(cache)) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    with open(os.path.join(cache, "t10k-images-idx3-ubyte"), "rb") as f:
        assert f.read() == images_data  # saved decompressed

    monkeypatch.setitem(mnist.MIRRORS, "digits", [dead_url()])  # now offline: the cache serves
    np.testing.assert_array_equal(load_mnist("digits", "test", download=False)[1], labels)


def test_download_from_file_url(offline, tmp_path, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    mirror = tmp_path / "mirror"
    write_split(str(mirror), images_data, labels_data, gz=True)
    pin_digests(monkeypatch, "fashion", "train", images_data, labels_data)
    monkeypatch.setitem(mnist.MIRRORS, "fashion", [mirror.as_uri() + "/"])
    np.testing.assert_array_equal(load_mnist("fashion", "train")[1], labels)
    assert os.path.isfile(os.path.join(offline, "fashion-mnist", "train-labels-idx1-ubyte"))


def test_download_with_bad_checksum_is_not_saved(offline, http_mirror, monkeypatch):
    images, labels = tiny_set()
    images_data, labels_data = idx_bytes(images, IMAGE_MAGIC), idx_bytes(labels, LABEL_MAGIC)
    folder, url = http_mirror
    write_split(folder, images_data, labels_data, gz=True)
    monkeypatch.setitem(mnist.MIRRORS, "digits", [url])  # the real MNIST digests: cannot match
    with pytest.raises(
        FileNotFoundError,
        match=r"(?s)could not be downloaded.*train-images-idx3-ubyte\.gz: "
        r"load_mnist: checksum mismatch .*another mirror",
    ):
        load_mnist("digits", "train")
    assert not os.path.exists(os.path.join(offline, "mnist", "train-images-idx3-ubyte"))


def test_download_of_a_non_gzip_answer_fails_clearly(offline, http_mirror, monkeypatch):
    folder, url = http_mirror
    write(folder, "train-images-idx3-ubyte.gz", b"<html>not found</html>")
    monkeypatch.setitem(mnist.MIRRORS, "digits", [url])
    with pytest.raises(FileNotFoundError, match="the server did not send a gzip file"):
        load_mnist("digits", "train")


# ---------------------------------------------------------------- nothing available


def test_nothing_available_says_so_plainly(offline):
    cache = os.path.join(offline, "mnist")
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("digits", "train")
    message = str(info.value)
    assert f"train-images-idx3-ubyte (kind='digits') is not in {cache}" in message
    assert "could not be downloaded (no network, or every mirror failed)" in message
    assert "http://127.0.0.1:" in message  # each failed mirror is listed with its error
    assert f"in {cache} by hand" in message
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in message


def test_download_false_never_touches_the_network(offline, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("urlopen called with download=False")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", no_network)
    system = str(tmp_path / "system")
    monkeypatch.setitem(mnist.SYSTEM_FOLDERS, "fashion", [system])
    with pytest.raises(
        FileNotFoundError,
        match=r"t10k-images-idx3-ubyte \(kind='fashion'\) is not in "
        r".*fashion-mnist or .*system, and download=False\. "
        r"Put the files .* by hand",
    ):
        load_mnist("fashion", "test", download=False)


# ---------------------------------------------------------------- the real Fashion-MNIST


def real_fashion_files():
    """name -> path of the real file in the Debian folder, for the names present."""
    found = {}
    for name in mnist.SHA256["fashion"]:
        for ext in ("", ".gz"):
            if os.path.isfile(os.path.join(REAL_FASHION, name + ext)):
                found[name] = os.path.join(REAL_FASHION, name + ext)
                break
    return found


@pytest.mark.skipif(
    len(real_fashion_files()) < 4,
    reason=f"the real Fashion-MNIST files are not in {REAL_FASHION} "
    f"(apt-get install dataset-fashion-mnist to run this test)",
)
@pytest.mark.parametrize("split, N", [("train", 60000), ("test", 10000)])
def test_real_fashion_mnist(monkeypatch, split, N):
    monkeypatch.setitem(mnist.SYSTEM_FOLDERS, "fashion", [REAL_FASHION])
    for name in NAMES[split]:
        data = read_idx_bytes(real_fashion_files()[name])
        assert hashlib.sha256(data).hexdigest() == mnist.SHA256["fashion"][name]

    x, y = load_mnist("fashion", split, download=False)
    assert x.shape == (N, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (N,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    np.testing.assert_array_equal(np.bincount(y), np.full(10, N // 10))  # Fashion-MNIST is balanced
