"""The YOLO v1 loss: its gradient against central differences, against a plain-Python
reference written from the formula of issue 5, on a case worked by hand, its special
cases (a perfect prediction, an image without objects), its layout, and the layer's
errors."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidl import nn
from minidl.gradcheck import numerical_gradient
from minidl.ops import yolo_loss
from tests.helpers import assert_gradient, raises
from tests.strategies import seeds

grids = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))  # N, S, B, C
lambdas = st.floats(0.0, 10.0)


def draw(N, S, B, C, seed, p_obj=0.5):
    """A random target (objects in about a fraction p_obj of the cells) and a random
    float64 pred (N, S, S, 5B + C) whose boxes lie near the targets' (so that IoUs are
    mostly > 0); the predicted square roots of w, h may be negative."""
    rng = np.random.default_rng(seed)
    target = np.zeros((N, S, S, 5 + C))
    target[..., 0:2] = rng.uniform(0.0, 1.0, (N, S, S, 2))
    target[..., 2:4] = rng.uniform(0.15, 0.9, (N, S, S, 2))
    target[..., 4] = rng.random((N, S, S)) < p_obj
    classes = rng.integers(0, C, (N, S, S))
    for c in range(C):
        target[..., 5 + c] = (classes == c) & (target[..., 4] == 1)
    pred = rng.standard_normal((N, S, S, 5 * B + C))
    for b in range(B):
        pred[..., 5 * b : 5 * b + 2] = target[..., 0:2] + 0.15 * rng.standard_normal((N, S, S, 2))
        pred[..., 5 * b + 2 : 5 * b + 4] = np.sqrt(target[..., 2:4]) + 0.15 * rng.standard_normal((N, S, S, 2))
    return pred, target


# --- an independent reference, straight from the formula ---------------------------------------


def reference_iou(a, b):
    """IoU of two boxes given as (centre x, centre y, w, h)."""
    overlap = 1.0
    for centre, size in ((0, 2), (1, 3)):
        low = max(a[centre] - a[size] / 2, b[centre] - b[size] / 2)
        high = min(a[centre] + a[size] / 2, b[centre] + b[size] / 2)
        overlap *= max(0.0, high - low)
    union = a[2] * a[3] + b[2] * b[3] - overlap
    return overlap / union if union > 0 else 0.0


def reference_ious(pred, target, S, B, C):
    """{(n, i, j): [IoU of box b with the target, b = 0 .. B-1]} for the cells with an object."""
    P = pred.reshape(pred.shape[0], S, S, 5 * B + C)
    ious = {}
    for (n, i, j), obj in np.ndenumerate(target[..., 4]):
        if obj == 1:
            x, y, w, h = target[n, i, j, :4].tolist()
            truth = ((j + x) / S, (i + y) / S, w, h)
            ious[n, i, j] = [
                reference_iou(((j + bx) / S, (i + by) / S, bw**2, bh**2), truth)
                for bx, by, bw, bh in (P[n, i, j, 5 * b : 5 * b + 4].tolist() for b in range(B))
            ]
    return ious


def reference_loss(pred, target, S, B, C, lambda_coord, lambda_noobj):
    """Issue 5's loss in plain Python floats, as its four terms."""
    N = pred.shape[0]
    P = pred.reshape(N, S, S, 5 * B + C).astype(np.float64).tolist()
    T = target.astype(np.float64).tolist()
    ious = reference_ious(pred.astype(np.float64), target.astype(np.float64), S, B, C)
    coord = obj = noobj = classes = 0.0
    for n in range(N):
        for i in range(S):
            for j in range(S):
                t, cell = T[n][i][j], P[n][i][j]
                r = None
                if t[4] == 1:
                    iou = ious[n, i, j]
                    r = iou.index(max(iou))  # the first of the highest
                for b in range(B):
                    x, y, sqrt_w, sqrt_h, conf = cell[5 * b : 5 * b + 5]
                    if b == r:
                        coord += (
                            (t[0] - x) ** 2
                            + (t[1] - y) ** 2
                            + (math.sqrt(t[2]) - sqrt_w) ** 2
                            + (math.sqrt(t[3]) - sqrt_h) ** 2
                        )
                        obj += (iou[r] - conf) ** 2
                    else:
                        noobj += conf**2
                if r is not None:
                    classes += sum((t[5 + c] - cell[5 * B + c]) ** 2 for c in range(C))
    return {"coord": lambda_coord * coord / N, "obj": obj / N, "noobj": lambda_noobj * noobj / N, "class": classes / N}


def assignment_is_stable(pred, target, S, B, C, gap=1e-3):
    """No cell's best IoU is within ``gap`` of its second best: a 1e-6 perturbation of pred
    cannot change which box is responsible."""
    for iou in reference_ious(pred, target, S, B, C).values():
        ranked = sorted(iou, reverse=True)
        if len(ranked) > 1 and ranked[0] - ranked[1] < gap:
            return False
    return True


# --- gradients -----------------------------------------------------------------------------------


@given(grid=grids, p_obj=st.floats(0.0, 1.0), lambda_coord=lambdas, lambda_noobj=lambdas, seed=seeds)
def test_backward_is_the_derivative_with_the_assignment_held_fixed(grid, p_obj, lambda_coord, lambda_noobj, seed):
    # The loss as the spec defines its gradient: the responsible boxes and their IoUs are
    # constants (computed once), every element of pred is perturbed.
    N, S, B, C = grid
    pred, target = draw(N, S, B, C, seed, p_obj)
    responsible, iou = yolo_loss.assign(pred, target, S, B, C)
    dpred = yolo_loss.backward(pred, target, responsible, iou, S, B, C, lambda_coord, lambda_noobj)

    def loss(p):
        return sum(yolo_loss.loss_terms(p, target, responsible, iou, S, B, C, lambda_coord, lambda_noobj).values())

    assert_gradient(dpred, loss, pred, name="pred")


@given(grid=grids, lambda_coord=lambdas, lambda_noobj=lambdas, seed=seeds)
def test_backward_matches_the_full_loss_everywhere_but_through_the_iou(grid, lambda_coord, lambda_noobj, seed):
    # Central differences of the whole forward (which picks the boxes again at every
    # evaluation) agree with backward on every element, except the 4 coordinates of each
    # responsible box: there the full derivative also goes through the IoU (the
    # confidence's target), which the spec keeps constant. Cases where two boxes nearly
    # tie are skipped: there the choice would flip within the perturbation.
    N, S, B, C = grid
    pred, target = draw(N, S, B, C, seed)
    assume(assignment_is_stable(pred, target, S, B, C))
    loss, _, responsible, iou = yolo_loss.forward(pred, target, S, B, C, lambda_coord, lambda_noobj)
    dpred = yolo_loss.backward(pred, target, responsible, iou, S, B, C, lambda_coord, lambda_noobj)
    numeric = numerical_gradient(lambda p: yolo_loss.forward(p, target, S, B, C, lambda_coord, lambda_noobj)[0], pred)
    through_iou = np.zeros(pred.shape, dtype=bool)
    for n, i, j in zip(*np.nonzero(responsible >= 0)):
        r = responsible[n, i, j]
        through_iou[n, i, j, 5 * r : 5 * r + 4] = True
    np.testing.assert_allclose(dpred[~through_iou], numeric[~through_iou], rtol=1e-6, atol=1e-6)


@given(grid=grids, p_obj=st.floats(0.0, 1.0), lambda_coord=lambdas, lambda_noobj=lambdas, seed=seeds)
def test_forward_matches_the_plain_python_reference(grid, p_obj, lambda_coord, lambda_noobj, seed):
    N, S, B, C = grid
    pred, target = draw(N, S, B, C, seed, p_obj)
    expected = reference_loss(pred, target, S, B, C, lambda_coord, lambda_noobj)
    loss, terms, responsible, iou = yolo_loss.forward(pred, target, S, B, C, lambda_coord, lambda_noobj)
    assert isinstance(loss, float)
    for name in yolo_loss.TERMS:
        np.testing.assert_allclose(terms[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(loss, sum(expected.values()), rtol=1e-12, atol=1e-15)
    for (n, i, j), ious in reference_ious(pred, target, S, B, C).items():
        assert responsible[n, i, j] == ious.index(max(ious))
        np.testing.assert_allclose(iou[n, i, j], max(ious), rtol=1e-12, atol=1e-15)
    assert (responsible[target[..., 4] == 0] == -1).all() and (iou[target[..., 4] == 0] == 0).all()


@given(grid=grids, seed=seeds)
def test_float32_follows_float64(grid, seed):
    N, S, B, C = grid
    pred, target = draw(N, S, B, C, seed)
    loss64, _, responsible, iou = yolo_loss.forward(pred, target, S, B, C)
    loss32, _, r32, iou32 = yolo_loss.forward(pred.astype(np.float32), target.astype(np.float32), S, B, C)
    assume((r32 == responsible).all())  # float32 rounding may flip a near tie
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)
    d32 = yolo_loss.backward(pred.astype(np.float32), target, r32, iou32, S, B, C)
    d64 = yolo_loss.backward(pred, target, responsible, iou, S, B, C)
    assert d32.dtype == np.float32 and d32.shape == pred.shape
    np.testing.assert_allclose(d32, d64, rtol=1e-4, atol=1e-5)


# --- worked cases --------------------------------------------------------------------------------


def hand_worked_case():
    """S = 2, B = 2, C = 2, one image, one object in cell (i, j) = (0, 1).

    Target: x = y = 0.5, w = h = 0.25, class 1 -> corners (0.625, 0.125, 0.875, 0.375).
    Box 0: x = y = 0.5, sqrt_w = sqrt_h = 0.25 -> a 0.0625 square at the same centre:
           IoU = 0.0625^2 / 0.25^2 = 0.0625.
    Box 1: x = 0.75, y = 0.5, sqrt_w = -0.5 (w = 0.25), sqrt_h = 0.5 -> corners
           (0.75, 0.125, 1.0, 0.375): overlap 0.125 * 0.25, union 2 * 0.0625 - 0.03125,
           IoU = 1/3 > 0.0625: box 1 is responsible.
    """
    pred = np.zeros((1, 2, 2, 12))
    pred[0, 0, 1, 0:5] = [0.5, 0.5, 0.25, 0.25, 0.5]
    pred[0, 0, 1, 5:10] = [0.75, 0.5, -0.5, 0.5, 0.5]
    pred[0, 0, 1, 10:12] = [0.1, 0.7]
    pred[0, 1, 0, 4] = 0.2  # a confidence in an empty cell
    pred[0, 1, 1, 10:12] = 0.9  # class scores in an empty cell: not in the loss
    target = np.zeros((1, 2, 2, 7))
    target[0, 0, 1] = [0.5, 0.5, 0.25, 0.25, 1, 0, 1]
    return pred, target


def test_hand_worked_case():
    pred, target = hand_worked_case()
    loss_fn = nn.YOLOLoss(S=2, B=2, C=2)
    loss = loss_fn(pred, target)
    expected = {
        "coord": 5 * ((0.5 - 0.75) ** 2 + 0 + (0.5 - -0.5) ** 2 + 0),  # lambda_coord = 5
        "obj": (1 / 3 - 0.5) ** 2,
        "noobj": 0.5 * (0.5**2 + 0.2**2),  # box 0 of the object's cell, box 0 of cell (1, 0)
        "class": (0 - 0.1) ** 2 + (1 - 0.7) ** 2,
    }
    assert loss_fn.terms == pytest.approx(expected, rel=1e-12)
    assert loss == pytest.approx(5.3125 + 1 / 36 + 0.145 + 0.1, rel=1e-12)
    d = loss_fn.backward()
    expected_d = np.zeros_like(pred)
    expected_d[0, 0, 1, 4] = 2 * 0.5 * 0.5  # box 0: no-object confidence
    expected_d[0, 0, 1, 5:10] = [2 * 5 * 0.25, 0, 2 * 5 * -1.0, 0, 2 * (0.5 - 1 / 3)]
    expected_d[0, 0, 1, 10:12] = [2 * 0.1, 2 * -0.3]
    expected_d[0, 1, 0, 4] = 2 * 0.5 * 0.2
    np.testing.assert_allclose(d, expected_d, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("B", [1, 2, 3])
def test_a_perfect_prediction_has_zero_coordinate_and_class_loss(B):
    S, C = 3, 2
    _, target = draw(2, S, B, C, seed=1, p_obj=0.5)
    pred = np.zeros((2, S, S, 5 * B + C))
    r = B - 1  # the perfect box is the last one: the others are tiny boxes far away
    for b in range(B - 1):
        pred[..., 5 * b : 5 * b + 4] = [0.0, 0.0, 0.01, 0.01]
    pred[..., 5 * r : 5 * r + 2] = target[..., 0:2]
    pred[..., 5 * r + 2 : 5 * r + 4] = np.sqrt(target[..., 2:4])
    pred[..., 5 * B :] = target[..., 5:]
    conf = np.random.default_rng(0).uniform(0, 1, (2, S, S, B))
    pred[..., 4::5][..., :B] = conf
    loss_fn = nn.YOLOLoss(S, B, C)
    loss = loss_fn(pred, target)
    obj = target[..., 4] == 1
    assert loss_fn.terms["coord"] == 0 and loss_fn.terms["class"] == 0
    assert loss_fn.cache[2][obj].tolist() == [r] * obj.sum()
    np.testing.assert_allclose(loss_fn.cache[3][obj], 1.0, rtol=1e-12)  # the IoU of a perfect box
    np.testing.assert_allclose(loss_fn.terms["obj"], ((1 - conf[..., r][obj]) ** 2).sum() / 2, rtol=1e-12)
    assert loss == pytest.approx(sum(loss_fn.terms.values()), rel=1e-12)
    # with confidence 1 for the responsible boxes, 0 for all the others: zero loss and gradient
    # (up to the rounding of the IoU, which goes through sqrt(w)^2)
    pred[..., 4::5][..., :B] = 0.0
    pred[..., 5 * r + 4][obj] = 1.0
    assert loss_fn(pred, target) < 1e-28
    np.testing.assert_allclose(loss_fn.backward(), 0.0, atol=1e-15)


@given(grid=grids, seed=seeds)
def test_an_image_without_objects_gives_only_the_no_object_term(grid, seed):
    N, S, B, C = grid
    pred, target = draw(N, S, B, C, seed, p_obj=0.0)  # x, y, w, h and classes set but obj = 0
    lambda_noobj = 0.7
    loss_fn = nn.YOLOLoss(S, B, C, lambda_noobj=lambda_noobj)
    loss = loss_fn(pred, target)
    conf = pred[..., 4 : 5 * B : 5]
    assert loss_fn.terms["coord"] == loss_fn.terms["obj"] == loss_fn.terms["class"] == 0
    np.testing.assert_allclose(loss, lambda_noobj * (conf**2).sum() / N, rtol=1e-12)
    expected = np.zeros_like(pred)
    expected[..., 4 : 5 * B : 5] = 2 * lambda_noobj * conf / N
    np.testing.assert_allclose(loss_fn.backward(), expected, rtol=1e-12)


def test_the_first_box_is_responsible_on_ties_and_others_get_no_coordinate_gradient():
    S, B, C = 1, 3, 1
    target = np.array([[[[0.5, 0.5, 0.5, 0.5, 1, 1]]]])
    pred = np.zeros((1, 1, 1, 16))
    pred[..., 0:5] = [0.2, 0.5, 0.6, 0.6, 0.3]
    pred[..., 5:10] = [0.8, 0.5, 0.6, 0.6, 0.3]  # the mirror image of box 0: the same IoU
    pred[..., 10:15] = [0.5, 0.5, 0.1, 0.1, 0.3]
    loss_fn = nn.YOLOLoss(S, B, C)
    loss_fn(pred, target)
    assert loss_fn.cache[2][0, 0, 0] == 0
    d = loss_fn.backward()
    assert d[0, 0, 0, 0:4].any() and not d[0, 0, 0, 5:9].any() and not d[0, 0, 0, 10:14].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_loss_is_invariant_to_reshaping_pred(dtype):
    S, B, C = 3, 2, 3
    pred, target = draw(4, S, B, C, seed=3)
    pred = pred.astype(dtype)
    loss_fn = nn.YOLOLoss(S, B, C)
    loss = loss_fn(pred, target)
    d = loss_fn.backward()
    for shape in [(4, S * S * (5 * B + C)), (4, S, S * (5 * B + C)), (4, S * S, 5 * B + C)]:
        flat = pred.reshape(shape)
        assert loss_fn(flat, target) == loss
        d_flat = loss_fn.backward()
        assert d_flat.shape == shape and d_flat.dtype == dtype
        np.testing.assert_array_equal(d_flat, d.reshape(shape))
    # a non-contiguous pred reads the same values
    wide = np.zeros((4, 2 * S * S * (5 * B + C)), dtype=dtype)
    wide[:, ::2] = pred.reshape(4, -1)
    assert loss_fn(wide[:, ::2], target) == loss


def test_the_loss_is_divided_by_the_batch_size():
    S, B, C = 2, 2, 2
    pred, target = draw(1, S, B, C, seed=4)
    loss_fn = nn.YOLOLoss(S, B, C)
    one = loss_fn(pred, target)
    d_one = loss_fn.backward()
    assert loss_fn(np.concatenate([pred] * 3), np.concatenate([target] * 3)) == pytest.approx(one, rel=1e-12)
    np.testing.assert_allclose(loss_fn.backward()[:1] * 3, d_one, rtol=1e-12)


def test_lambdas_weight_their_terms():
    S, B, C = 2, 2, 2
    pred, target = draw(2, S, B, C, seed=5)
    base = nn.YOLOLoss(S, B, C, lambda_coord=1.0, lambda_noobj=1.0)
    base(pred, target)
    weighted = nn.YOLOLoss(S, B, C, lambda_coord=5.0, lambda_noobj=0.5)
    weighted(pred, target)
    assert weighted.terms["coord"] == pytest.approx(5 * base.terms["coord"], rel=1e-12)
    assert weighted.terms["noobj"] == pytest.approx(0.5 * base.terms["noobj"], rel=1e-12)
    assert weighted.terms["obj"] == base.terms["obj"] and weighted.terms["class"] == base.terms["class"]
    assert repr(weighted) == "YOLOLoss(S=2, B=2, C=2, lambda_coord=5.0, lambda_noobj=0.5)"


# --- the layer's errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, err, message",
    [
        (dict(S=0, B=2, C=3), ValueError, "YOLOLoss: S (the grid size) must be at least 1, got 0"),
        (dict(S=7, B=1.5, C=3), TypeError, "YOLOLoss: B (the boxes per cell) must be an int, got float"),
        (dict(S=7, B=2, C=True), TypeError, "YOLOLoss: C (the number of classes) must be an int, got bool"),
        (
            dict(S=7, B=2, C=3, lambda_coord=-1),
            ValueError,
            "YOLOLoss: lambda_coord must be a finite number in [0, inf), got -1.0",
        ),
        (
            dict(S=7, B=2, C=3, lambda_noobj=float("nan")),
            ValueError,
            "YOLOLoss: lambda_noobj must be a finite number in [0, inf), got nan",
        ),
        (dict(S=7, B=2, C=3, lambda_noobj="0.5"), TypeError, "YOLOLoss: lambda_noobj must be a real number, got str"),
    ],
)
def test_constructor_arguments(kwargs, err, message):
    with raises(err, message):
        nn.YOLOLoss(**kwargs)


S, B, C = 7, 2, 3  # 5B + C = 13, 5 + C = 8


def good(N=2):
    pred, target = draw(N, S, B, C, seed=0)
    return pred.reshape(N, -1), target


@pytest.mark.parametrize("shape", [(2, 7, 7, 7), (2, 49, 8), (2, 7, 8, 8), (7, 7, 8)])
def test_a_target_of_the_wrong_shape(shape):
    pred, _ = good()
    with raises(
        ValueError, "YOLOLoss: expected the target of shape (N, S, S, 5 + C) = (N, 7, 7, 8)", f"got shape {shape}"
    ):
        nn.YOLOLoss(S, B, C)(pred, np.zeros(shape))


@pytest.mark.parametrize("shape", [(2, 600), (2, 7, 7, 12), (2 * 637,), (2, 7, 7, 13, 2)])
def test_a_pred_that_does_not_reshape_to_the_grid(shape):
    _, target = good()
    with raises(
        ValueError,
        "YOLOLoss: expected pred to reshape (row-major) to (N, S, S, 5B + C) = (N, 7, 7, 13)",
        "(N, 637) from a fully connected head",
        f"got shape {shape}",
    ):
        nn.YOLOLoss(S, B, C)(np.zeros(shape), target)


def test_batch_sizes_must_agree():
    pred, target = good(3)
    with raises(ValueError, "YOLOLoss: batch sizes differ: pred has N=3, the target N=2"):
        nn.YOLOLoss(S, B, C)(pred, target[:2])


def test_an_empty_batch():
    with raises(ValueError, "YOLOLoss: pred is empty (shape (0, 637))"):
        nn.YOLOLoss(S, B, C)(np.zeros((0, 637)), np.zeros((0, 7, 7, 8)))


def test_nan_and_inf_are_errors():
    pred, target = good()
    pred[1, 5] = np.nan
    with raises(ValueError, "YOLOLoss: found NaN or inf in pred (1 of 1274 values)"):
        nn.YOLOLoss(S, B, C)(pred, target)
    pred, target = good()
    target[0, 3, 3, 0] = np.inf
    with raises(ValueError, "YOLOLoss: found NaN or inf in the target (1 of 784 values)"):
        nn.YOLOLoss(S, B, C)(pred, target)


def test_obj_flags_must_be_0_or_1():
    pred, target = good()
    target[1, 2, 3, 4] = 0.5
    with raises(
        ValueError, "YOLOLoss: the obj flags target[..., 4] must be 0 or 1, got 0.5 in cell (n, i, j) = (1, 2, 3)"
    ):
        nn.YOLOLoss(S, B, C)(pred, target)


def test_target_sizes_must_not_be_negative():
    pred, target = good()
    target[0, 4, 1, 3] = -0.1
    with raises(
        ValueError,
        "YOLOLoss: the target's w, h (target[..., 2:4]",
        "must be >= 0",
        "h=-0.1 in cell (n, i, j) = (0, 4, 1)",
    ):
        nn.YOLOLoss(S, B, C)(pred, target)


def test_types_and_backward_before_forward():
    pred, target = good()
    loss_fn = nn.YOLOLoss(S, B, C)
    with raises(TypeError, "YOLOLoss: expected the pred to be a numpy.ndarray, got list"):
        loss_fn(pred.tolist(), target)
    with raises(TypeError, "YOLOLoss: expected the target to have dtype float32 or float64, got int64"):
        loss_fn(pred, target.astype(np.int64))
    with raises(RuntimeError, "YOLOLoss: backward() called before forward()"):
        loss_fn.backward()
