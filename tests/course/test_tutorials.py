"""Every tutorial and the demo run end to end in their --quick smoke mode: each says it is a
smoke run, saves its figures, and reports its headline number, which must clear a floor
that quick mode honestly reaches (well above what an untrained or broken model scores:
chance accuracy, an all-background mask)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

# headline name -> the floor its quick run must reach (seeded; the values measured in quick
# mode on 2 cores are in the comments; the full runs' figures are in the tutorials' text)
QUICK_FLOORS = {
    "01_perceptron.py": {"xor_accuracy": 1.0},  # 1.00: 4 of 4 XOR points
    "02_gradient_descent.py": {"r2_lr_0.3": 0.7},  # 0.75 (least squares: 0.75)
    "03_mlp_digits.py": {"test_accuracy": 0.8},  # 0.90 (chance 0.10)
    "04_convolution.py": {"test_accuracy": 0.4},  # 0.55 after one epoch (chance 0.10)
    "05_lenet.py": {"test_accuracy": 0.4},  # 0.73 on Fashion-MNIST after 2 epochs on 3000 images (chance 0.10)
    "06_batchnorm_dropout_resnet.py": {"batchnorm_test_accuracy": 0.7, "residual_val_accuracy": 0.5},  # 0.94, 0.77
    "07_transposed_convolution.py": {"nearest_mse_over_learned_k4_mse": 0.5},  # 0.78 after 20 steps
    "08_segmentation.py": {"unet_mean_iou": 0.28},  # 0.38 (an all-background mask: about 0.2)
    "09_autoencoder.py": {"pca_mse_over_autoencoder_mse": 0.6},  # 0.88
    "10_yolo.py": {"map50": 0.02},  # 0.07 after 4 epochs on 600 images (untrained: 0.001)
    "11_cuda_kernels.py": {"textbook_reads_over_tiled_reads": 4.0},  # = TILE, counted or by the formula
    "12_augmentation.py": {"test_accuracy_without": 0.2, "test_accuracy_with": 0.2},  # 0.43, 0.35 (chance 0.10)
    "13_transfer_learning.py": {  # 0.80, 0.77, 0.77 on 5 classes after 10 steps (chance 0.20)
        "from_scratch_10_per_class": 0.4,
        "linear_probe_10_per_class": 0.4,
        "fine_tuning_10_per_class": 0.4,
    },
    "14_two_stage_detection.py": {"map50": 0.5, "map75": 0.3},  # 0.99, 0.97 after 2 epochs on 600 images
    "15_single_shot_detection.py": {"map50": 0.4, "map75": 0.2},  # 0.87, 0.70 after 3 epochs on 600 images
    "16_instance_segmentation.py": {"mask_map50": 0.5, "box_map50": 0.5},  # 1.00, 1.00 after 2 epochs on 600
    "17_performance.py": {"lenet_mflop_per_image": 2.25},  # 2.29: a count, not a time
}


def headlines(stdout):
    return {name: float(value) for name, value in re.findall(r"^headline: (\S+) = (\S+)$", stdout, re.M)}


def run_script(args, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, *args, "--quick", "--out", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_quick(script, tmp_path):
    stdout = run_script([str(script)], tmp_path)
    assert "QUICK MODE" in stdout.splitlines()[0], "quick mode must say first that its numbers mean nothing"
    assert list(tmp_path.glob("*.png")), f"{script.name} saved no figure"
    reported = headlines(stdout)
    assert reported.keys() == QUICK_FLOORS[script.name].keys(), reported
    for name, floor in QUICK_FLOORS[script.name].items():
        assert reported[name] >= floor, f"{script.name}: {name} = {reported[name]:.4f} < {floor} in quick mode"


def test_demo_quick(tmp_path):
    stdout = run_script(["-m", "minidl.demo"], tmp_path)
    assert "test accuracy" in stdout
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.name in stdout for p in pngs)


def test_the_demo_knows_a_first_run_by_numba_s_empty_cache(tmp_path, monkeypatch):
    from minidl.demo import kernels_cached

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not kernels_cached()  # nothing compiled yet: the demo announces the compilation
    index = tmp_path / "work" / "minidl" / "ops" / "conv2d.conv2d_forward_kernel-99.py311.nbi"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"")
    assert kernels_cached()
