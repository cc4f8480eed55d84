"""The paper's unsupervised evaluations (Appendix B) for CRATE and ViT models: every measurement.

One driver per evaluation, called alike by the chapters, the command line
(:mod:`cratelib.cli_evaluate`) and the tests, each at the model's own resolution unless told
otherwise (:func:`~cratelib.eval.extract.model_img_size`, for cratelib models and timm ViTs):

* maps and features of any set of layers: :func:`layer_maps`, :func:`layer_features`
  (:mod:`cratelib.eval.extract`, with an optional feature cache);
* B.1 CLS attention maps (eqs. 10-11): :mod:`cratelib.eval.attention`; how well they localise a
  known object, per layer, image and head (attention on the object, ROC AUC, best-head IoU):
  :mod:`cratelib.eval.localisation` (:func:`layerwise_scores`);
* B.2 PCA of patch features (eq. 12): :mod:`cratelib.eval.pca` (:func:`layerwise_pca`);
* B.3 coarse segmentation and mIoU (eqs. 13-14): :mod:`cratelib.eval.segmentation`
  (:func:`layerwise_miou`), :mod:`cratelib.eval.threshold`, :mod:`cratelib.eval.metrics`;
* B.4 MaskCut (Algorithm 4) and COCO AP: :mod:`cratelib.eval.maskcut`, :mod:`cratelib.eval.ncut`,
  :mod:`cratelib.eval.crf`, :mod:`cratelib.eval.coco_eval`, :mod:`cratelib.eval.maskcut_eval`
  (:func:`maskcut_ap`, :func:`layerwise_maskcut`);
* several models side by side (Tables 1-2, Fig. 10): :mod:`cratelib.eval.compare`; noise
  (Figs. 11-12): :mod:`cratelib.eval.noise`; predictions and linear probes:
  :mod:`cratelib.eval.classify`;
* baselines that learned nothing: :mod:`cratelib.eval.baselines`; statistics (paired
  differences, standard errors, factorial effects): :mod:`cratelib.eval.stats`;
* images and ground truth: :mod:`cratelib.eval.sources`; the paper's numbers:
  :mod:`cratelib.eval.reference`; the feature cache: :mod:`cratelib.eval.cache`.

Figures of all of it are :mod:`cratelib.figures`, which draws and measures nothing.
"""

from cratelib.eval.attention import cls_attention, cls_attention_from_qk, dino_display, model_cls_attention
from cratelib.eval.coco_eval import detections_for_image, evaluate_detections
from cratelib.eval.crf import densecrf, refine_mask
from cratelib.eval.extract import (
    Extracted,
    FeatureCache,
    concat_heads,
    extract,
    layer_features,
    layer_maps,
    load_model,
    model_img_size,
)
from cratelib.eval.localisation import MapScores, layerwise_scores, score_maps
from cratelib.eval.maskcut import MaskCutResult, maskcut
from cratelib.eval.maskcut_eval import APResult, MaskCutRun, evaluate_maskcut, layerwise_maskcut, maskcut_ap, run_maskcut
from cratelib.eval.metrics import (
    best_head_iou,
    best_head_miou,
    confusion_matrix,
    iou,
    miou_from_confusion,
    roc_auc,
)
from cratelib.eval.ncut import second_eigenvector
from cratelib.eval.pca import foreground_mask, layerwise_pca, pca_foreground, pca_grey_rgb
from cratelib.eval.segmentation import CoarseSegResult, coarse_segmentation, layerwise_miou, score_image
from cratelib.eval.sources import Sample, coco_samples, embedded_root, folder_samples, voc_samples
from cratelib.eval.threshold import mass_mask, threshold_maps, top_entries_mask

__all__ = [
    "APResult",
    "CoarseSegResult",
    "Extracted",
    "FeatureCache",
    "MapScores",
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
    "layer_features",
    "layer_maps",
    "layerwise_maskcut",
    "layerwise_miou",
    "layerwise_pca",
    "layerwise_scores",
    "load_model",
    "mass_mask",
    "maskcut",
    "maskcut_ap",
    "miou_from_confusion",
    "model_cls_attention",
    "model_img_size",
    "pca_foreground",
    "pca_grey_rgb",
    "refine_mask",
    "roc_auc",
    "run_maskcut",
    "score_image",
    "score_maps",
    "second_eigenvector",
    "threshold_maps",
    "top_entries_mask",
    "voc_samples",
]
