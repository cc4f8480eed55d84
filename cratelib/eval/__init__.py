"""The paper's unsupervised evaluations (Appendix B) for CRATE and ViT models.

* B.1 CLS attention maps (eqs. 10-11): :mod:`cratelib.eval.attention`
* B.2 PCA of patch features (eq. 12): :mod:`cratelib.eval.pca`
* B.3 coarse segmentation and mIoU (eqs. 13-14): :mod:`cratelib.eval.segmentation`
* B.4 MaskCut (Algorithm 4): :mod:`cratelib.eval.maskcut`, :mod:`cratelib.eval.ncut`,
  :mod:`cratelib.eval.crf`, :mod:`cratelib.eval.coco_eval`
"""

from cratelib.eval.metrics import (
    best_head_iou,
    best_head_miou,
    confusion_matrix,
    iou,
    miou_from_confusion,
)
from cratelib.eval.threshold import mass_mask, threshold_maps, top_entries_mask

__all__ = [
    "best_head_iou",
    "best_head_miou",
    "confusion_matrix",
    "iou",
    "mass_mask",
    "miou_from_confusion",
    "threshold_maps",
    "top_entries_mask",
]
