"""The paper's unsupervised evaluations (Appendix B) for CRATE and ViT models.

* B.1 CLS attention maps (eqs. 10-11): :mod:`cratelib.eval.attention`
* B.2 PCA of patch features (eq. 12): :mod:`cratelib.eval.pca`
* B.3 coarse segmentation and mIoU (eqs. 13-14): :mod:`cratelib.eval.segmentation`,
  :mod:`cratelib.eval.threshold`, :mod:`cratelib.eval.metrics`
* B.4 MaskCut (Algorithm 4): :mod:`cratelib.eval.maskcut`, :mod:`cratelib.eval.ncut`,
  :mod:`cratelib.eval.crf`, :mod:`cratelib.eval.coco_eval`, :mod:`cratelib.eval.maskcut_eval`
* From models and files to tensors: :mod:`cratelib.eval.extract`, :mod:`cratelib.eval.sources`
* Studies and figures: :mod:`cratelib.eval.studies`, :mod:`cratelib.eval.plots`
  (imported on demand: matplotlib), :mod:`cratelib.eval.reference` (the paper's numbers)
* Command line: :mod:`cratelib.eval.cli` (``python -m cratelib evaluate ...``)
"""

from cratelib.eval.attention import cls_attention, cls_attention_from_qk, dino_display, model_cls_attention
from cratelib.eval.coco_eval import detections_for_image, evaluate_detections
from cratelib.eval.crf import densecrf, refine_mask
from cratelib.eval.extract import Extracted, extract, load_model
from cratelib.eval.maskcut import MaskCutResult, maskcut
from cratelib.eval.maskcut_eval import MaskCutRun, evaluate_maskcut, run_maskcut
from cratelib.eval.metrics import (
    best_head_iou,
    best_head_miou,
    confusion_matrix,
    iou,
    miou_from_confusion,
)
from cratelib.eval.ncut import second_eigenvector
from cratelib.eval.pca import concat_heads, foreground_mask, pca_foreground, pca_grey_rgb
from cratelib.eval.segmentation import CoarseSegResult, coarse_segmentation, score_image
from cratelib.eval.sources import Sample, coco_samples, embedded_root, folder_samples, voc_samples
from cratelib.eval.threshold import mass_mask, threshold_maps, top_entries_mask

__all__ = [
    "CoarseSegResult",
    "Extracted",
    "MaskCutResult",
    "MaskCutRun",
    "Sample",
    "best_head_iou",
    "best_head_miou",
    "cls_attention",
    "cls_attention_from_qk",
    "coarse_segmentation",
    "coco_samples",
    "concat_heads",
    "confusion_matrix",
    "densecrf",
    "detections_for_image",
    "dino_display",
    "embedded_root",
    "evaluate_detections",
    "evaluate_maskcut",
    "extract",
    "folder_samples",
    "foreground_mask",
    "iou",
    "load_model",
    "mass_mask",
    "maskcut",
    "miou_from_confusion",
    "model_cls_attention",
    "pca_foreground",
    "pca_grey_rgb",
    "refine_mask",
    "run_maskcut",
    "score_image",
    "second_eigenvector",
    "threshold_maps",
    "top_entries_mask",
    "voc_samples",
]
