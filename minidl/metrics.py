"""Classification and segmentation metrics: accuracy, the confusion matrix, IoU.

Segmentation is classification of every pixel, so the same metrics serve both:
labels may have any shape, (N,) class labels or (N, H, W) masks, and each element (each
pixel) counts once. ``y_true`` holds the truth, ``y_pred`` the predicted classes (for
logits of shape (N, K, H, W), ``y_pred = logits.argmax(axis=1)``), integers in [0, K).

Confusion matrix, K x K, rows = truth, columns = prediction:

    M[t, p] = #{pixels i : y_true[i] = t and y_pred[i] = p}

Everything below is read off M. For class k:

    TP_k = M[k, k]                    pixels of class k predicted k
    FP_k = sum_t M[t, k] - M[k, k]    predicted k, but another class (column k minus TP)
    FN_k = sum_p M[k, p] - M[k, k]    of class k, predicted another (row k minus TP)

    pixel accuracy = sum_k M[k, k] / sum M          (the fraction of correct pixels)

    IoU_k = TP_k / (TP_k + FP_k + FN_k)

IoU_k is the intersection over union of the two regions "truly class k" and "predicted
class k" (the box IoU of object detection, with pixel sets instead of boxes). A class
absent from both the truth and the prediction has 0 / 0: its IoU is undefined, returned
as NaN, and left out of the mean:

    mean IoU = mean of IoU_k over the classes k whose IoU is defined (numpy.nanmean)

Pixel accuracy is dominated by the largest class (the background of a segmentation):
predicting "background" everywhere can score 90 % while finding no object. Mean IoU
weighs each class equally, which is why segmentation reports it.

To evaluate a dataset in batches, add up the batches' confusion matrices and compute the
IoU once, with ``iou_from_confusion``: a mean of per-batch IoUs is not the IoU.
"""

import numbers

import numpy as np


def _check_labels(where, y_true, y_pred, num_classes=None):
    """Both label arrays as integer NumPy arrays of the same, non-empty shape, with values
    in [0, num_classes) when num_classes is given."""
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
            raise TypeError(f"{where}: num_classes must be an int, got {type(num_classes).__name__}")
        if num_classes < 1:
            raise ValueError(f"{where}: num_classes must be at least 1, got {num_classes}")
    arrays = []
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer):
            hint = (
                " (for logits, take y_pred = logits.argmax(axis=1))"
                if name == "y_pred" and np.issubdtype(y.dtype, np.floating)
                else ""
            )
            raise TypeError(f"{where}: expected integer class labels for {name}, got dtype {y.dtype}{hint}")
        arrays.append(y)
    y_true, y_pred = arrays
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{where}: y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError(f"{where}: the labels are empty (shape {y_true.shape})")
    if num_classes is not None:
        for name, y in (("y_true", y_true), ("y_pred", y_pred)):
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= num_classes:
                raise ValueError(
                    f"{where}: {name} must hold class indices in [0, num_classes) = [0, {num_classes}), "
                    f"got values from {low} to {high}"
                )
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes):
    """The K x K matrix ``M[t, p]`` = number of elements of truth t predicted p (int64).

    ``y_true``, ``y_pred``: integer labels of the same shape (any shape, e.g. (N, H, W)
    masks), values in [0, num_classes). Row sums count the truth, column sums the
    predictions; the diagonal holds the correct ones.
    """
    return _confusion("confusion_matrix", y_true, y_pred, num_classes)


def _confusion(where, y_true, y_pred, num_classes):
    """``confusion_matrix``, with errors that name the public function ``where``."""
    y_true, y_pred = _check_labels(where, y_true, y_pred, num_classes)
    M = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(M, (y_true.reshape(-1), y_pred.reshape(-1)), 1)  # M[t_i, p_i] += 1 for every element i
    return M


def accuracy(y_true, y_pred):
    """The fraction of elements where ``y_pred == y_true`` (a float in [0, 1]).

    Integer labels of the same shape: (N,) for classification, (N, H, W) for segmentation,
    where it is the pixel accuracy.
    """
    return _fraction_correct("accuracy", y_true, y_pred)


def pixel_accuracy(y_true, y_pred):
    """The fraction of correctly classified pixels: ``accuracy`` on (N, H, W) masks."""
    return _fraction_correct("pixel_accuracy", y_true, y_pred)


def _fraction_correct(where, y_true, y_pred):
    y_true, y_pred = _check_labels(where, y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def iou_from_confusion(M):
    """Per-class IoU_k = TP_k / (TP_k + FP_k + FN_k) from a confusion matrix ``M`` (K, K).

    Returns a float64 array (K,); NaN for a class with no pixel in the truth nor in the
    prediction (TP + FP + FN = 0, the IoU is undefined).
    """
    M = np.asarray(M)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"iou_from_confusion: expected a square confusion matrix (K, K), got shape {M.shape}")
    TP = np.diag(M).astype(np.float64)
    FP = M.sum(axis=0) - TP  # column k: everything predicted k
    FN = M.sum(axis=1) - TP  # row k: everything truly k
    union = TP + FP + FN
    iou = np.full(M.shape[0], np.nan)
    present = union > 0
    iou[present] = TP[present] / union[present]
    return iou


def per_class_iou(y_true, y_pred, num_classes):
    """IoU_k = TP_k / (TP_k + FP_k + FN_k) for k = 0 .. num_classes - 1 (float64, (K,)).

    A class absent from both ``y_true`` and ``y_pred`` gets NaN (0 / 0: undefined); a class
    present in only one of them gets 0.
    """
    return iou_from_confusion(_confusion("per_class_iou", y_true, y_pred, num_classes))


def mean_iou(y_true, y_pred, num_classes):
    """The mean of ``per_class_iou`` over the classes where it is defined (NaNs skipped).

    Each class weighs the same, however many pixels it has. A float in [0, 1].
    """
    iou = iou_from_confusion(_confusion("mean_iou", y_true, y_pred, num_classes))
    return float(np.nanmean(iou))  # never all NaN: the labels are not empty
