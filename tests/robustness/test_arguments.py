"""Every public constructor and function checks its numeric arguments: a NaN, an
infinity, a bool, a string or a value out of range is a TypeError/ValueError naming the
function and the argument, never accepted (today's examples: ``LeakyReLU(negative_slope=
nan)``, ``BatchNorm(eps=inf)``, ``nms(iou_threshold=-1)``, ``Adam(eps=0)``,
``check_layer(h=0)``)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidl
from minidl import detection, nn, optim
from minidl.data import DataLoader, make_shapes_detection, make_shapes_segmentation, train_val_test_split, transforms
from minidl.gradcheck import check_layer
from minidl.profiler import gemm_peak, memory_bandwidth

NOT_NUMBERS = [math.nan, True, "1", None, [1]]
INFINITIES = [math.inf, -math.inf]
NEGATIVE = [-1, -1e9]


def params():
    return nn.Linear(2, 2).parameters()


def boxes():
    return np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([0.5])


XY = (np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]))

# (what the error names, argument, a call taking the argument, bad values beyond NOT_NUMBERS and INFINITIES)
CASES = [
    ("Linear", "in_features", lambda v: nn.Linear(v, 2), [0, -3, 2.5]),
    ("Conv2d", "kernel_size", lambda v: nn.Conv2d(1, 1, v), [0, 2.0]),
    ("Conv2d", "stride", lambda v: nn.Conv2d(1, 1, 3, stride=v), [0]),
    ("Conv2d", "padding", lambda v: nn.Conv2d(1, 1, 3, padding=v), NEGATIVE),
    ("MaxPool2d", "kernel_size", lambda v: nn.MaxPool2d(v), [0]),
    ("BatchNorm2d", "eps", lambda v: nn.BatchNorm2d(2, eps=v), [0, *NEGATIVE]),
    ("BatchNorm2d", "momentum", lambda v: nn.BatchNorm2d(2, momentum=v), [1.5, *NEGATIVE]),
    ("LeakyReLU", "negative_slope", lambda v: nn.LeakyReLU(v), []),
    ("Dropout", "p", lambda v: nn.Dropout(v), [1.01, *NEGATIVE]),
    ("Upsample", "scale_factor", lambda v: nn.Upsample(v), [0]),
    ("YOLOLoss", "S", lambda v: nn.YOLOLoss(v, 2, 3), [0]),
    ("YOLOLoss", "lambda_coord", lambda v: nn.YOLOLoss(7, 2, 3, lambda_coord=v), NEGATIVE),
    ("YOLOLoss", "lambda_noobj", lambda v: nn.YOLOLoss(7, 2, 3, lambda_noobj=v), NEGATIVE),
    ("MultiBoxLoss", "neg_pos_ratio", lambda v: nn.MultiBoxLoss(neg_pos_ratio=v), [0, 2.5]),
    ("MultiBoxLoss", "beta", lambda v: nn.MultiBoxLoss(beta=v), NEGATIVE),
    ("SGD", "lr", lambda v: optim.SGD(params(), lr=v), [0, *NEGATIVE]),
    ("SGD", "momentum", lambda v: optim.SGD(params(), lr=0.1, momentum=v), NEGATIVE),
    ("SGD", "weight_decay", lambda v: optim.SGD(params(), lr=0.1, weight_decay=v), NEGATIVE),
    ("Adam", "lr", lambda v: optim.Adam(params(), lr=v), [0, *NEGATIVE]),
    ("Adam", "beta1", lambda v: optim.Adam(params(), betas=(v, 0.999)), [1, *NEGATIVE]),
    ("Adam", "eps", lambda v: optim.Adam(params(), eps=v), [0, *NEGATIVE]),
    ("CosineAnnealingLR", "T_max", lambda v: optim.CosineAnnealingLR(optim.SGD(params(), lr=0.1), v), [0]),
    ("CosineAnnealingLR", "eta_min", lambda v: optim.CosineAnnealingLR(optim.SGD(params(), lr=0.1), 5, v), NEGATIVE),
    ("AdamW", "weight_decay", lambda v: optim.AdamW(params(), weight_decay=v), NEGATIVE),
    ("StepLR", "step_size", lambda v: optim.StepLR(optim.SGD(params(), lr=0.1), v), [0, 2.0]),
    ("StepLR", "gamma", lambda v: optim.StepLR(optim.SGD(params(), lr=0.1), 2, v), NEGATIVE),
    ("RandomCrop", "size", lambda v: transforms.RandomCrop(v), [0]),
    ("RandomCrop", "padding", lambda v: transforms.RandomCrop(3, padding=v), NEGATIVE),
    ("RandomHorizontalFlip", "p", lambda v: transforms.RandomHorizontalFlip(v), [1.5, *NEGATIVE]),
    ("RandomAffine", "degrees", lambda v: transforms.RandomAffine(v), NEGATIVE),
    ("RandomAffine", "scale", lambda v: transforms.RandomAffine(0, scale=(v, 1.0)), [0, *NEGATIVE]),
    ("GaussianNoise", "sigma", lambda v: transforms.GaussianNoise(sigma=v), NEGATIVE),
    ("nms", "iou_threshold", lambda v: detection.nms(*boxes(), v), [1.5, *NEGATIVE]),
    ("decode_yolo", "conf_threshold", lambda v: detection.decode_yolo(np.zeros((1, 13)), 1, 2, 3, v), []),
    ("decode_ssd", "conf_threshold", lambda v: detection.decode_ssd(np.zeros((1, 6, 1)), boxes()[0], v), []),
    ("decode_ssd", "nms_threshold", lambda v: detection.decode_ssd(np.zeros((1, 6, 1)), boxes()[0], 0.1, v), [1.5]),
    (
        "decode_fast_rcnn",
        "nms_threshold",
        lambda v: detection.decode_fast_rcnn(np.zeros((1, 2)), np.zeros((1, 8)), boxes()[0], 0.1, v),
        [1.5, *NEGATIVE],
    ),
    ("sliding_windows", "stride", lambda v: detection.sliding_windows([2], v, image_size=8), [0, *NEGATIVE]),
    ("sliding_windows", "sizes", lambda v: detection.sliding_windows([v], 1, image_size=8), [0, *NEGATIVE]),
    ("paste_masks", "size", lambda v: detection.paste_masks(np.ones((1, 2, 2)), boxes()[0], v), [0, *NEGATIVE]),
    (
        "average_precision_per_class",
        "iou_threshold",
        lambda v: detection.mean_average_precision([], [], iou_threshold=v),
        [1.5, *NEGATIVE],
    ),
    ("DataLoader", "batch_size", lambda v: DataLoader(*XY, batch_size=v), [0]),
    ("DataLoader", "seed", lambda v: DataLoader(*XY, seed=v), NEGATIVE),
    ("make_shapes_detection", "n", lambda v: make_shapes_detection(v), NEGATIVE),
    ("make_shapes_detection", "seed", lambda v: make_shapes_detection(1, seed=v), NEGATIVE),
    ("make_shapes_segmentation", "size", lambda v: make_shapes_segmentation(1, size=v), [4]),
    ("train_val_test_split", "val", lambda v: train_val_test_split(*XY, val=v), [1.0, *NEGATIVE]),
    (
        "fit",
        "epochs",
        lambda v: minidl.fit(nn.Linear(2, 2), nn.SoftmaxCrossEntropy(), optim.SGD(params(), lr=0.1), XY, epochs=v),
        [0],
    ),
    ("predict", "batch_size", lambda v: minidl.predict(nn.Linear(2, 2), XY[0], batch_size=v), [0]),
    ("check_layer", "h", lambda v: check_layer(nn.Linear(2, 2), np.zeros((1, 2)), h=v), [0, *NEGATIVE]),
    ("check_layer", "tol", lambda v: check_layer(nn.Linear(2, 2), np.zeros((1, 2)), tol=v), NEGATIVE),
    ("minidl.seed", "n", lambda v: minidl.seed(v), NEGATIVE),
    ("profile", "steps", lambda v: minidl.profile(nn.Linear(2, 2), XY[0], steps=v), [0]),
    ("gemm_peak", "n", lambda v: gemm_peak(n=v), [0]),
    ("memory_bandwidth", "megabytes", lambda v: memory_bandwidth(megabytes=v), [0]),
    ("minidl.save", "epoch", lambda v: minidl.save(nn.Linear(2, 2), "/nonexistent/x", epoch=v), NEGATIVE),
]

OPTIONAL = {("DataLoader", "seed"), ("minidl.save", "epoch")}  # None is their default: no seed, no epoch
INFINITY_OK = {("decode_yolo", "conf_threshold"), ("decode_ssd", "conf_threshold")}  # -inf keeps every box, +inf none


@pytest.mark.parametrize("where, arg, call, bad", CASES, ids=[f"{w}-{a}" for w, a, _, _ in CASES])
@given(data=st.data())
def test_a_bad_numeric_argument_is_an_error_naming_the_function_and_the_argument(where, arg, call, bad, data):
    candidates = NOT_NUMBERS + bad + ([] if (where, arg) in INFINITY_OK else INFINITIES)
    value = data.draw(st.sampled_from([v for v in candidates if v is not None or (where, arg) not in OPTIONAL]))
    if arg in ("kernel_size", "stride", "padding", "scale_factor", "size") and isinstance(value, list):
        value = [value]  # a list of one is also not a pair
    with pytest.raises((TypeError, ValueError)) as info:
        call(value)
    message = str(info.value)
    assert where in message and arg in message, message
