r"""Data augmentation: random changes of the training images that keep their label.

A network that has seen a shirt only at one position and size may not know it shifted by
two pixels. Rather than collecting more photographs, augmentation makes new training
examples from the old ones, drawn afresh every epoch: shifted (``RandomCrop`` with
padding), mirrored (``RandomHorizontalFlip``), rotated, scaled and shifted (``RandomAffine``),
with noise added (``GaussianNoise``). It teaches the network the invariances we know the
task has, and a model that cannot memorise the exact pixels overfits less.
``Normalize`` is not random: it scales each channel to mean 0 and standard deviation 1.

The names and arguments are torchvision's. The difference: these work on a whole batch
at once, an (N, C, H, W) float NumPy array, drawing each image's own random numbers from
``rng`` (a ``numpy.random.Generator``; minidl's global one when None), so a seed makes
every augmented batch reproducible. ``DataLoader(..., transform=...)`` and
``fit(..., transform=...)`` apply them to every training batch with the loader's
generator. They return a new array; the input is never changed.

    augment = transforms.Compose([
        transforms.RandomCrop(28, padding=2),
        transforms.RandomHorizontalFlip(),
        transforms.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
    ])
    xb = augment(xb, rng)

RandomAffine's resampling is the op ``minidl/ops/warp_affine.py`` (bilinear interpolation,
written out as a loop over the output pixels, with its CUDA twin).
"""

import math
import numbers

import numpy as np

from .. import dispatch
from ..device import is_device_array
from ..nn.checks import FLOAT_DTYPES, real_number, to_pair
from ..rng import get_rng


class Transform:
    """Base class: ``transform(x, rng=None)`` checks the batch and the generator, then calls
    ``apply(x, rng)``, which subclasses implement."""

    def __call__(self, x, rng=None):
        name = type(self).__name__
        if is_device_array(x):
            raise TypeError(
                f"{name}: transforms work on host (NumPy) batches; the DataLoader applies them before a batch "
                f"moves to the device"
            )
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype not in FLOAT_DTYPES:
            what = f"shape {x.shape}, dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"{name}: expected a float32/float64 batch of images (N, C, H, W), got {what}")
        if rng is None:
            rng = get_rng()
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{name}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return self.apply(x, rng)

    def apply(self, x, rng):
        raise NotImplementedError(f"{type(self).__name__} does not implement apply")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` one after the other, all drawing from the same generator."""

    def __init__(self, transforms):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transform {i} is a {type(t).__name__}, not callable")
        self.transforms = transforms

    def apply(self, x, rng):
        for t in self.transforms:
            x = t(x, rng)
        return x


class RandomCrop(Transform):
    """Pad every image with ``padding`` zeros on each side, then cut a ``size`` window
    at a random position (each image its own, uniform over all positions).

    ``size``: int or (h, w); ``padding``: int or (ph, pw). ``RandomCrop(28, padding=2)`` on
    28 x 28 images shifts each by up to 2 pixels in each direction, the gap filled with 0.
    """

    def __init__(self, size, padding=0):
        self.size = to_pair("RandomCrop", "size", size, 1)
        self.padding = to_pair("RandomCrop", "padding", padding, 0)

    def apply(self, x, rng):
        N, C, H, W = x.shape
        (h, w), (ph, pw) = self.size, self.padding
        if h > H + 2 * ph or w > W + 2 * pw:
            raise ValueError(
                f"RandomCrop: a {h}x{w} window does not fit in images of {H}x{W} padded by {self.padding} "
                f"({H + 2 * ph}x{W + 2 * pw})"
            )
        padded = np.zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
        padded[:, :, ph : ph + H, pw : pw + W] = x
        top = rng.integers(0, H + 2 * ph - h + 1, size=N)
        left = rng.integers(0, W + 2 * pw - w + 1, size=N)
        y = np.empty((N, C, h, w), x.dtype)
        for n in range(N):
            y[n] = padded[n, :, top[n] : top[n] + h, left[n] : left[n] + w]
        return y


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (its columns reversed)."""

    def __init__(self, p=0.5):
        self.p = real_number("RandomHorizontalFlip", "p", p, 0.0, 1.0)

    def apply(self, x, rng):
        flip = rng.random(len(x)) < self.p
        y = x.copy()
        y[flip] = x[flip][:, :, :, ::-1]
        return y


class RandomAffine(Transform):
    r"""Rotate, scale and shift each image by its own random amounts, about the image's
    centre, with bilinear interpolation (zeros come in from outside).

    ``degrees``: the angle is drawn uniformly from (-degrees, degrees), or from (a, b) when
    a pair (positive: counter-clockwise on the screen). ``translate=(a, b)``: the shift is
    drawn from (-a W, a W) columns and (-b H, b H) rows and rounded to whole pixels (as
    torchvision). ``scale=(lo, hi)``: the scale factor is drawn from (lo, hi). None: no shift,
    no scaling.

    Each image's transform sends an input point p to c + t + s R(angle) (p - c), c the
    centre ((W - 1) / 2, (H - 1) / 2). The warp needs the way back (every output pixel asks
    where it comes from, see ``minidl/ops/warp_affine.py``):

    $$p_{\text{in}} = c + \tfrac{1}{s} R(-\alpha)\,(p_{\text{out}} - c - t), \qquad
      R(\alpha) = \begin{pmatrix} \cos\alpha & \sin\alpha \\ -\sin\alpha & \cos\alpha \end{pmatrix}$$

    (R in (column, row) coordinates, rows pointing down) which ``theta()`` writes as a
    2 x 3 matrix per image.
    """

    def __init__(self, degrees, translate=None, scale=None):
        name = "RandomAffine"
        if isinstance(degrees, numbers.Real):
            d = real_number(name, "degrees", degrees, 0.0)
            self.degrees = (-d, d)
        else:
            self.degrees = _interval(name, "degrees", degrees, -math.inf)
        self.translate = None if translate is None else _interval(name, "translate", translate, 0.0, 1.0, ordered=False)
        self.scale = None if scale is None else _interval(name, "scale", scale, 0.0, low_open=True)

    def theta(self, N, H, W, rng):
        """(N, 2, 3) float64: for each image, the matrix sending an output pixel (col, row, 1)
        to the input point it reads, from freshly drawn angle, shift and scale."""
        angle = np.radians(rng.uniform(*self.degrees, size=N))
        if self.translate is not None:
            tx = np.round(rng.uniform(-self.translate[0] * W, self.translate[0] * W, size=N))
            ty = np.round(rng.uniform(-self.translate[1] * H, self.translate[1] * H, size=N))
        else:
            tx = ty = np.zeros(N)
        s = rng.uniform(*self.scale, size=N) if self.scale is not None else np.ones(N)
        cu, cv = (W - 1) / 2, (H - 1) / 2
        theta = np.empty((N, 2, 3))
        for n in range(N):
            cos, sin = math.cos(angle[n]), math.sin(angle[n])
            A = np.array([[cos, -sin], [sin, cos]]) / s[n]  # R(-angle) / s
            theta[n, :, :2] = A
            theta[n, :, 2] = np.array([cu, cv]) - A @ np.array([cu + tx[n], cv + ty[n]])
        return theta

    def apply(self, x, rng):
        N, C, H, W = x.shape
        theta = self.theta(N, H, W, rng).astype(x.dtype)
        return dispatch.op("warp_affine", x, theta).forward(x, theta)


class Normalize(Transform):
    """y[n, c] = (x[n, c] - mean[c]) / std[c]: each channel to mean 0, standard deviation 1
    when ``mean`` and ``std`` are the training data's (one number per channel, or one for
    all). Not random."""

    def __init__(self, mean, std):
        self.mean = [real_number("Normalize", "mean", m) for m in np.atleast_1d(mean).tolist()]
        self.std = [real_number("Normalize", "std", s, 0.0, low_open=True) for s in np.atleast_1d(std).tolist()]
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean has {len(self.mean)} values and std {len(self.std)}")

    def apply(self, x, rng):
        C = x.shape[1]
        if len(self.mean) not in (1, C):
            raise ValueError(f"Normalize: {len(self.mean)} means and stds for a batch with {C} channels")
        mean = np.asarray(self.mean, x.dtype).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, x.dtype).reshape(1, -1, 1, 1)
        return (x - mean) / std


class GaussianNoise(Transform):
    """y = x + e, e ~ Normal(mean, sigma^2) drawn for every pixel; with ``clip`` the result
    is kept in [0, 1] (images scaled to [0, 1], as torchvision's ``GaussianNoise``)."""

    def __init__(self, mean=0.0, sigma=0.1, clip=True):
        self.mean = real_number("GaussianNoise", "mean", mean)
        self.sigma = real_number("GaussianNoise", "sigma", sigma, 0.0)
        self.clip = bool(clip)

    def apply(self, x, rng):
        y = (x + rng.normal(self.mean, self.sigma, size=x.shape)).astype(x.dtype)
        return np.clip(y, 0.0, 1.0) if self.clip else y


def _interval(where, name, value, low, high=math.inf, low_open=False, ordered=True):
    """A pair (a, b) of numbers in the range, with a <= b when ``ordered``."""
    try:
        a, b = value
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a pair of numbers, got {value!r}") from None
    a = real_number(where, f"{name}[0]", a, low, high, low_open=low_open)
    b = real_number(where, f"{name}[1]", b, low, high, low_open=low_open)
    if ordered and a > b:
        raise ValueError(f"{where}: {name} must be (low, high) with low <= high, got {value!r}")
    return (a, b)
