"""Two-stage detectors composed in plain Python: ``FastRCNN`` and ``MaskRCNN``.

The graph stays tiny: a detector is a layer whose ``forward`` calls its parts in order and
whose ``backward`` calls their backwards in reverse order, written out so that the
two-stage flow can be read in ten lines. (A single-shot detector needs no class of its
own: SSD is an ``nn.Sequential`` of a backbone and a convolutional predictor, tutorial 15.)

    image x (N, 3, H, W) --backbone--> features (N, F, H', W')          once per image
    regions rois (K, 5)  --RoI pool/align on the features--> (K, F, P, P) once per region
                         --head--> hidden (K, D) --classifier--> scores (K, C + 1)
                                                 --box_regressor--> offsets (K, 4 (C + 1))
    (Mask R-CNN)         (K, F, P, P) --mask_head--> mask logits (K, C, m, m)

Fast R-CNN's point (Girshick, 2015) is the first line: the backbone runs once per image,
not once per region as in R-CNN, and each region only reads its window of the shared
feature map. Training (sampling the regions, the losses) is in tutorials 14 and 16, with
``minidl.detection``'s helpers; ``detect`` is the inference: every proposal through the
head, decoding and NMS (and for Mask R-CNN a mask for each detection).
"""

import numpy as np

from . import dispatch
from .detection import as_rois, decode_fast_rcnn, paste_masks
from .device import to_host
from .nn import Linear
from .nn.module import Layer


def _add(a, b):
    """a + b, two gradients that reach one array along two paths."""
    return dispatch.op("add", a, b).forward(a, b)


class FastRCNN(Layer):
    """Fast R-CNN: ``backbone`` (a layer, images -> feature map), ``roi`` (``nn.RoIPool`` or
    ``nn.RoIAlign`` with the backbone's ``spatial_scale``), ``head`` (a layer, pooled
    regions -> (K, hidden)), then two linear layers: ``classifier`` to C + 1 class scores
    (class 0 the background) and ``box_regressor`` to 4 offsets per class.

    ``model(x, rois)`` returns (scores (K, C + 1), offsets (K, 4 (C + 1))) for rois (K, 5)
    rows (n, x1, y1, x2, y2) in pixels of x; ``model.backward(dscores, doffsets)`` returns
    dx and adds every parameter's gradient.
    """

    def __init__(self, backbone, roi, head, hidden, num_classes):
        super().__init__()
        self.backbone, self.roi, self.head = backbone, roi, head
        self.classifier = Linear(hidden, num_classes + 1)
        self.box_regressor = Linear(hidden, 4 * (num_classes + 1))

    def forward(self, x, rois):
        features = self.backbone(x)  # (N, F, H', W'): once per image
        pooled = self.roi(features, rois)  # (K, F, P, P): each region's window, resampled
        hidden = self.head(pooled)  # (K, hidden)
        return self.classifier(hidden), self.box_regressor(hidden)

    def backward(self, dscores, doffsets):
        dhidden = _add(self.classifier.backward(dscores), self.box_regressor.backward(doffsets))
        dpooled = self.head.backward(dhidden)
        dfeatures = self.roi.backward(dpooled)  # each region's gradient into its window
        return self.backbone.backward(dfeatures)

    def detect(self, x, proposals, conf_threshold=0.01, nms_threshold=0.5, batch_size=8):
        """Detections for the square images x (n, 3, S, S), in eval mode: each batch of
        ``batch_size`` images through the backbone once, every proposal (P, 4), fractions
        of the image, through the box head, then per image ``decode_fast_rcnn`` (scores
        above ``conf_threshold``, NMS per class at ``nms_threshold``) with the boxes
        clipped to the image. A list of n dicts {"boxes", "scores", "labels", "rois"}."""
        self.eval()
        found = []
        for first in range(0, len(x), batch_size):
            images = x[first : first + batch_size]
            features = self.backbone(images)  # once per image, for every head
            found.extend(self._detections(features, proposals, images.shape[-1], conf_threshold, nms_threshold))
        return found

    def _detections(self, features, proposals, size, conf_threshold, nms_threshold):
        """The decoded detections of one batch's features: every proposal through the box
        head, ``decode_fast_rcnn`` per image, boxes clipped to the image."""
        P, found = len(proposals), []
        hidden = self.head(self.roi(features, as_rois([proposals] * features.shape[0], size)))
        scores, offsets = to_host(self.classifier(hidden)), to_host(self.box_regressor(hidden))
        for n in range(features.shape[0]):
            rows = slice(n * P, (n + 1) * P)
            d = decode_fast_rcnn(scores[rows], offsets[rows], proposals, conf_threshold, nms_threshold)
            d["boxes"] = np.clip(d["boxes"], 0.0, 1.0)
            found.append(d)
        return found


class MaskRCNN(FastRCNN):
    """Fast R-CNN plus a mask branch (He et al., 2017): ``mask_head`` (a layer, pooled
    regions (K, F, P, P) -> (K, C, m, m) mask logits, one m x m mask per class) beside the
    box head, on the same RoI Align features.

    ``model(x, rois)`` returns (scores, offsets, mask_logits);
    ``model.backward(dscores, doffsets, dmasks)`` returns dx.
    """

    def __init__(self, backbone, roi, head, mask_head, hidden, num_classes):
        super().__init__(backbone, roi, head, hidden, num_classes)
        self.mask_head = mask_head

    def forward(self, x, rois):
        features = self.backbone(x)
        pooled = self.roi(features, rois)
        hidden = self.head(pooled)
        return self.classifier(hidden), self.box_regressor(hidden), self.mask_head(pooled)

    def backward(self, dscores, doffsets, dmasks):
        dhidden = _add(self.classifier.backward(dscores), self.box_regressor.backward(doffsets))
        dpooled = _add(self.head.backward(dhidden), self.mask_head.backward(dmasks))  # two branches, one input
        return self.backbone.backward(self.roi.backward(dpooled))

    def detect(self, x, proposals, conf_threshold=0.05, nms_threshold=0.5, batch_size=8):
        """``FastRCNN.detect``, then Mask R-CNN's inference: the mask head on the *detected*
        boxes (RoI Align on each box, from the same features), the sigmoid of the detected
        class's m x m mask, pasted into the image (``paste_masks``): each dict also has
        "masks" (k, S, S) bool."""
        return super().detect(x, proposals, conf_threshold, nms_threshold, batch_size)

    def _detections(self, features, proposals, size, conf_threshold, nms_threshold):
        found = super()._detections(features, proposals, size, conf_threshold, nms_threshold)
        rois = as_rois([d["boxes"] for d in found], size)
        if len(rois):
            logits = self.mask_head(self.roi(features, rois))
            probabilities = to_host(dispatch.op("sigmoid", logits).forward(logits))  # (K, C, m, m)
        row = 0
        for d in found:
            k = len(d["boxes"])
            own_class = probabilities[row + np.arange(k), d["labels"]] if k else np.zeros((0, 1, 1))
            d["masks"] = paste_masks(own_class, d["boxes"], size)
            row += k
        return found
