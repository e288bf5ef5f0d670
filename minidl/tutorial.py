"""The set-up every tutorial shares: its command line, its figure folder, quick mode.

    from minidl.tutorial import headline, save, setup
    args = setup("LeNet-5", epochs=10)        # --quick, --out, --seed, and --epochs 10
    ...
    save(fig, "05_learning_curves.png")       # into the --out folder
    headline("test_accuracy", acc)            # the number the tutorial is about

A tutorial runs as a script (``python tutorials/05_lenet.py --quick``) or as a notebook;
in a notebook the command line is the kernel's, so ``MINIDL_QUICK=1`` in the environment
selects quick mode instead. Quick mode is a smoke run (a slice of the data, an epoch or
two): it shows that the code runs, and says so, because its numbers mean nothing.
"""

import argparse
import json
import os
import sys
from pathlib import Path

QUICK_NOTICE = (
    "QUICK MODE: a smoke run on a slice of the data for an epoch or two. It checks that the code runs;"
    " its numbers and figures say nothing about the method. Run without --quick for the real results."
)


_out = Path("outputs")
_quick = False


def _in_notebook():
    """True inside a Jupyter kernel (whose argv are the kernel's, not the tutorial's
    options); merely having imported ipykernel, as a test process may, is not enough."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def setup(description, **options):
    """Parse the tutorial's options, seed minidl, make the figure folder; return the options.

    Every tutorial has ``--quick`` (also ``MINIDL_QUICK=1``), ``--out`` (the folder for its
    figures, made if missing; ``args.out`` is a Path) and ``--seed`` (default 0, or the
    ``seed`` keyword). Every other keyword adds an option with that default and its type,
    e.g. ``epochs=10``.
    """
    import matplotlib

    import minidl

    if not _in_notebook():
        matplotlib.use("Agg")  # scripts save figures; a notebook shows them inline
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (also MINIDL_QUICK=1)")
    parser.add_argument("--out", default="outputs", help="folder for the figures")
    parser.add_argument("--seed", type=int, default=options.pop("seed", 0))
    for name, default in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args, _ = parser.parse_known_args([] if _in_notebook() else None)
    args.quick = args.quick or os.environ.get("MINIDL_QUICK", "0") not in ("", "0")
    global _out, _quick
    args.out = _out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    _quick = args.quick
    minidl.seed(args.seed)
    if args.quick:
        print(QUICK_NOTICE)
    return args


def save(fig, name):
    """Save ``fig`` as ``name`` in the ``--out`` folder and say where; a script then closes
    it (a notebook keeps it open, to show it under the cell). ``figures.json`` in that
    folder records whether each figure came from a quick run (the docs say so)."""
    import matplotlib.pyplot as plt

    fig.savefig(_out / name, dpi=100, bbox_inches="tight")
    record_path = _out / "figures.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record[name] = "quick" if _quick else "full"
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True))
    print("saved", _out / name)
    if not _in_notebook():
        plt.close(fig)


FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def fashion_mnist(n_train=None, n_test=None):
    """The real images the later tutorials train on: ``(train, test, dataset, classes)``.

    ``train`` and ``test`` are ``(x, y)`` pairs, x float32 (N, 1, 28, 28) in [0, 1]: the
    first ``n_train`` / ``n_test`` images of Fashion-MNIST (all when None) when its files are
    installed (see ``minidl.data.load_mnist``), otherwise the embedded 8x8 digits scaled up
    to 28x28 (a fixed 80/20 split), and it says which.
    """
    import numpy as np

    from .data import load_digits, load_mnist, train_val_test_split

    try:
        train = load_mnist("fashion", "train", download=False, n=n_train)
        test = load_mnist("fashion", "test", download=False, n=n_test)
        return train, test, "Fashion-MNIST", list(FASHION_CLASSES)
    except FileNotFoundError as missing:
        print(f"Fashion-MNIST not found ({str(missing).splitlines()[0]}); using the embedded digits instead")
    x, y = load_digits()
    x = np.pad(x.repeat(3, axis=2).repeat(3, axis=3), ((0, 0), (0, 0), (2, 2), (2, 2)))  # 8x8 -> 24x24 -> 28x28
    train, _, test = train_val_test_split(x, y, val=0.0, test=0.2, seed=0)
    train, test = (train[0][:n_train], train[1][:n_train]), (test[0][:n_test], test[1][:n_test])
    return train, test, "digits (8x8 scaled to 28x28)", [str(k) for k in range(10)]


SHAPE_COLOURS = ("tab:red", "tab:green", "tab:blue")  # the detection tutorials' circle, square, triangle


def show_image(ax, image, title=None):
    """Draw a (3, H, W) image with axes in fractions of the image (x right, y down, 0 .. 1:
    the unit of minidl's boxes), without ticks."""
    ax.imshow(image.transpose(1, 2, 0), extent=(0, 1, 1, 0))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def draw_box(ax, box, colour, text=None, fontsize=7, **style):
    """A box (x1, y1, x2, y2) as a rectangle outline, with an optional label above it."""
    from matplotlib.patches import Rectangle

    x1, y1, x2, y2 = box
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, **style))
    if text:
        ax.text(x1, y1 - 0.01, text, color=colour, fontsize=fontsize, va="bottom")


def headline(name, value):
    """Print the tutorial's headline number as ``headline: name = value`` (the tests read it).

    A tutorial reports its result and does not assert it: change a hyper-parameter and the
    number changes, which is the point of trying.
    """
    print(f"headline: {name} = {value:.4f}")
