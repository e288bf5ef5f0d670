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
feature map. Training and inference (sampling the regions, the losses, decoding) are in
tutorials 14 and 16, with ``minidl.detection``'s helpers.
"""

from . import dispatch
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
