"""Data augmentation: what each transform does to an image, its statistics over many
draws, reproducibility from a seed, the DataLoader applying it, and its errors."""

import numpy as np
import pytest

from minidl.data import DataLoader, transforms
from tests.helpers import labels, raises, randn


def images(N=4, C=2, H=5, W=6, seed=0):
    return np.random.default_rng(seed).random((N, C, H, W)).astype(np.float32)


ALL = [
    transforms.RandomCrop(5, padding=2),
    transforms.RandomHorizontalFlip(),
    transforms.RandomAffine(20, translate=(0.2, 0.1), scale=(0.8, 1.2)),
    transforms.Normalize([0.5, 0.2], [0.25, 0.1]),
    transforms.GaussianNoise(sigma=0.2),
]


@pytest.mark.parametrize("t", ALL, ids=lambda t: type(t).__name__)
def test_same_seed_same_batch_and_the_input_is_left_alone(t):
    x = images(H=5, W=5)
    before = x.copy()
    a, b = t(x, np.random.default_rng(3)), t(x, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)
    assert a.dtype == x.dtype and a.shape == x.shape and a is not x


def test_random_crop_shifts_each_image_by_its_own_offset_uniformly():
    """Padding 2 on a 5x5 image, crop 5x5: every output is one of the 25 windows of the
    padded image (shifts -2..2 in each direction), each drawn about 1/25 of the time."""
    N = 5000
    x = np.tile(np.arange(1.0, 26.0).reshape(1, 1, 5, 5), (N, 1, 1, 1))  # no two windows alike
    y = transforms.RandomCrop(5, padding=2)(x, np.random.default_rng(0))
    padded = np.zeros((9, 9))
    padded[2:7, 2:7] = x[0, 0]
    window_of = {padded[i : i + 5, j : j + 5].tobytes(): (i, j) for i in range(5) for j in range(5)}
    drawn = [window_of[y[n, 0].tobytes()] for n in range(N)]  # a KeyError if a crop is no window
    counts = np.bincount([5 * i + j for i, j in drawn], minlength=25)
    expected = N / 25
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), counts


def test_random_crop_to_a_smaller_size():
    x = images(N=3, C=1, H=8, W=8)
    y = transforms.RandomCrop((4, 6))(x, np.random.default_rng(1))
    assert y.shape == (3, 1, 4, 6)
    for n in range(3):
        assert any(np.array_equal(y[n, 0], x[n, 0, i : i + 4, j : j + 6]) for i in range(5) for j in range(3))


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_flip_probability(p):
    N = 4000
    x = images(N=N, C=1, H=2, W=3)
    y = transforms.RandomHorizontalFlip(p)(x, np.random.default_rng(2))
    flipped = np.array([np.array_equal(y[n], x[n, :, :, ::-1]) for n in range(N)])
    kept = np.array([np.array_equal(y[n], x[n]) for n in range(N)])
    assert np.all(flipped | kept)
    assert abs(flipped.mean() - p) < 4 * np.sqrt(p * (1 - p) / N) + 1e-12


def test_random_affine_draws_angle_shift_and_scale_in_their_ranges():
    t = transforms.RandomAffine((-30, 10), translate=(0.25, 0.5), scale=(0.5, 2.0))
    theta = t.theta(3000, 8, 12, np.random.default_rng(0))
    A = theta[:, :, :2]
    s = 1 / np.sqrt(np.abs(np.linalg.det(A)))  # A = R(-angle) / s
    angle = np.degrees(np.arctan2(A[:, 1, 0], A[:, 0, 0]))
    assert s.min() >= 0.5 - 1e-9 and s.max() <= 2.0 + 1e-9 and abs(np.mean(s) - 1.25) < 0.03
    assert angle.min() >= -30 - 1e-9 and angle.max() <= 10 + 1e-9 and abs(np.mean(angle) + 10) < 0.6
    # the centre goes to centre + t: recover t, whole pixels within the ranges
    c = np.array([(12 - 1) / 2, (8 - 1) / 2])
    t_shift = np.linalg.solve(A, (c - theta[:, :, 2])[..., None])[..., 0] - c
    np.testing.assert_allclose(t_shift, np.round(t_shift), atol=1e-9)
    t_shift = np.round(t_shift)
    assert np.abs(t_shift[:, 0]).max() <= 3 and np.abs(t_shift[:, 1]).max() <= 4
    assert len(np.unique(t_shift[:, 0])) == 7  # -3..3


def test_random_affine_with_nothing_to_draw_is_the_identity():
    x = images()
    np.testing.assert_array_equal(transforms.RandomAffine(0)(x, np.random.default_rng(0)), x)


def test_normalize_gives_mean_0_std_1_with_the_datas_statistics():
    x = images(N=50, C=3, H=4, W=4) * np.array([1.0, 3.0, 0.5], np.float32).reshape(1, 3, 1, 1)
    mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
    y = transforms.Normalize(mean, std)(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-5)


def test_gaussian_noise_statistics_and_clipping():
    x = np.full((200, 1, 10, 10), 0.5, np.float32)
    e = transforms.GaussianNoise(mean=0.01, sigma=0.05, clip=False)(x, np.random.default_rng(0)) - x
    assert abs(e.mean() - 0.01) < 0.001 and abs(e.std() - 0.05) < 0.001
    y = transforms.GaussianNoise(sigma=1.0)(x, np.random.default_rng(0))
    assert y.min() == 0.0 and y.max() == 1.0


def test_compose_applies_in_order_with_one_generator():
    t = transforms.Compose([transforms.RandomHorizontalFlip(1.0), transforms.Normalize(0.5, 0.5)])
    x = images()
    np.testing.assert_allclose(t(x), (x[..., ::-1] - 0.5) / 0.5, rtol=1e-6)
    assert "RandomHorizontalFlip(p=1.0)" in repr(t)


def test_the_loader_augments_every_epoch_anew_and_reproducibly():
    x, y = images(N=10, C=1, H=4, W=4), labels((10,), 3)
    augment = transforms.Compose([transforms.RandomCrop(4, padding=1), transforms.GaussianNoise(sigma=0.1)])

    def epochs(seed):
        loader = DataLoader(x, y, batch_size=4, shuffle=True, seed=seed, transform=augment)
        return [[xb.copy() for xb, _ in loader] for _ in range(2)]

    a, b = epochs(7), epochs(7)
    for ea, eb in zip(a, b):
        for xa, xb in zip(ea, eb):
            np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(a[0][0], a[1][0])  # a new draw every epoch
    np.testing.assert_array_equal(x, images(N=10, C=1, H=4, W=4))  # the data is never changed


@pytest.mark.parametrize(
    "make, x, error, message",
    [
        (
            lambda: transforms.RandomCrop(9, padding=1),
            images(H=5, W=5),
            ValueError,
            "RandomCrop: a 9x9 window does not fit in images of 5x5 padded by (1, 1) (7x7)",
        ),
        (
            lambda: transforms.RandomHorizontalFlip(),
            images()[0],
            ValueError,
            "RandomHorizontalFlip: expected a float32/float64 batch of images (N, C, H, W), got shape (2, 5, 6)",
        ),
        (lambda: transforms.RandomHorizontalFlip(), images().astype(np.int64), ValueError, "dtype int64"),
        (
            lambda: transforms.RandomHorizontalFlip(1.5),
            images(),
            ValueError,
            "RandomHorizontalFlip: p must be a finite number in [0, 1], got 1.5",
        ),
        (
            lambda: transforms.RandomAffine((10, -10)),
            images(),
            ValueError,
            "RandomAffine: degrees must be (low, high) with low <= high",
        ),
        (
            lambda: transforms.RandomAffine(5, scale=(0, 1)),
            images(),
            ValueError,
            "RandomAffine: scale[0] must be a finite number in (0, inf)",
        ),
        (
            lambda: transforms.RandomAffine(5, translate=0.1),
            images(),
            TypeError,
            "RandomAffine: translate must be a pair of numbers",
        ),
        (
            lambda: transforms.Normalize([0.5] * 3, [0.2] * 3),
            images(),
            ValueError,
            "Normalize: 3 means and stds for a batch with 2 channels",
        ),
        (
            lambda: transforms.Normalize(0.5, 0.0),
            images(),
            ValueError,
            "Normalize: std must be a finite number in (0, inf)",
        ),
        (
            lambda: transforms.GaussianNoise(sigma=-1),
            images(),
            ValueError,
            "GaussianNoise: sigma must be a finite number in [0, inf)",
        ),
        (
            lambda: transforms.Compose([transforms.RandomHorizontalFlip(), "flip"]),
            images(),
            TypeError,
            "Compose: transform 1 is a str, not callable",
        ),
    ],
)
def test_errors(make, x, error, message):
    with raises(error, message):
        make()(x)


def test_rng_and_loader_argument_errors():
    with raises(TypeError, "RandomHorizontalFlip: rng must be a numpy.random.Generator, got int"):
        transforms.RandomHorizontalFlip()(images(), 3)
    with raises(TypeError, "DataLoader: transform must be callable as transform(xb, rng)"):
        DataLoader(images(), labels((4,), 2), transform="augment")
    assert "transform=RandomHorizontalFlip(p=0.5)" in repr(
        DataLoader(randn(4, 1, 2, 2), labels((4,), 2), transform=transforms.RandomHorizontalFlip())
    )
