"""Intersection over union: per mask, best head (eqs. 13-14), and dataset mIoU.

Two different "mIoU"s appear in the literature and both are here:

* :func:`best_head_miou` is the paper's App. B.3 score of one image: for each
  ground-truth class mask S_m, the IoU of the best-matching head (eq. 13),
  averaged over the M classes (eq. 14).  Averaging it over images gives the
  per-layer number of Fig. 4b.
* :func:`confusion_matrix` / :func:`miou_from_confusion` are the standard
  semantic-segmentation mIoU: one confusion matrix accumulated over the whole
  data set (label 255 ignored), IoU per class, mean over classes.

Beside them, :func:`roc_auc` scores a map without any threshold: the chance
that a random object patch outscores a random background patch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

IGNORE_INDEX = 255


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """IoU ``|P & S| / |P | S|`` of two boolean masks of the same shape.

    Returns ``nan`` when both masks are empty (undefined), ``0.0`` when only
    one is.
    """
    pred = np.asarray(pred, dtype=bool)
    target = np.asarray(target, dtype=bool)
    if pred.shape != target.shape:
        raise ValueError(
            f"masks must have the same shape, got {pred.shape} and {target.shape}"
        )
    union = np.logical_or(pred, target).sum()
    if union == 0:
        return float("nan")
    return float(np.logical_and(pred, target).sum() / union)


def best_match_ious(masks: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> list[float]:
    """Per mask, its IoU with the true mask it overlaps most (``nan`` when there are no truths)."""
    return [max((iou(m, t) for t in truths), default=float("nan")) for m in masks]


def best_head_iou(head_masks: np.ndarray, class_mask: np.ndarray) -> tuple[float, int]:
    """Eq. 13: ``max_k |S_m & A_k| / (|S_m| + |A_k| - |S_m & A_k|)``.

    Args:
        head_masks: ``(K, h, w)`` bool, the binarised map of each head.
        class_mask: ``(h, w)`` bool, the ground truth S_m of one class.

    Returns:
        ``(iou, k)``: the best IoU and the index of the head reaching it.
    """
    head_masks = np.asarray(head_masks, dtype=bool)
    class_mask = np.asarray(class_mask, dtype=bool)
    if head_masks.ndim != 3 or head_masks.shape[1:] != class_mask.shape:
        raise ValueError(
            "expected head_masks (K, h, w) and class_mask (h, w), got "
            f"{head_masks.shape} and {class_mask.shape}"
        )
    inter = np.logical_and(head_masks, class_mask).sum(axis=(1, 2))  # (K,)
    union = head_masks.sum(axis=(1, 2)) + class_mask.sum() - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    k = int(np.argmax(ious))
    return float(ious[k]), k


def class_masks(
    labels: np.ndarray,
    include_background: bool = False,
    ignore_index: int = IGNORE_INDEX,
    background: int = 0,
) -> dict[int, np.ndarray]:
    """Split a label map ``(h, w)`` into ``{class id: bool mask}`` of the classes present.

    Pixels equal to ``ignore_index`` belong to no class; ``background`` is
    left out unless ``include_background``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a label map (h, w), got shape {labels.shape}")
    ids = [int(c) for c in np.unique(labels) if c != ignore_index]
    if not include_background:
        ids = [c for c in ids if c != background]
    return {c: labels == c for c in ids}


def best_head_miou(
    head_masks: np.ndarray,
    labels: np.ndarray,
    include_background: bool = False,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[float, dict[int, float], dict[int, int]]:
    """Eq. 14 for one image: mean over its classes m of eq. 13.

    Pixels labelled ``ignore_index`` are removed from both the head masks and
    the class masks before counting.  Background (label 0) is one of the M
    classes only when ``include_background`` (the appendix does not say; DINO
    scores object masks, so the default leaves it out).

    Args:
        head_masks: ``(K, h, w)`` bool binarised head maps at label resolution.
        labels: ``(h, w)`` int label map (VOC: 0 background, 255 ignore).

    Returns:
        ``(miou, iou per class, best head per class)``; ``miou`` is ``nan``
        when the image has no class.
    """
    labels = np.asarray(labels)
    head_masks = np.asarray(head_masks, dtype=bool) & (labels != ignore_index)
    per_class, heads = {}, {}
    for c, m in class_masks(labels, include_background, ignore_index).items():
        per_class[c], heads[c] = best_head_iou(head_masks, m)
    return nan_mean(list(per_class.values())), per_class, heads


def confusion_matrix(
    pred: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = ground truth, columns = prediction.

    Pixels whose target is ``ignore_index`` are skipped.  Add the matrices of
    several images to get the data-set matrix.
    """
    pred = np.asarray(pred).astype(np.int64).ravel()
    target = np.asarray(target).astype(np.int64).ravel()
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same size, got {pred.size} and {target.size}"
        )
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    bad = (target < 0) | (target >= num_classes) | (pred < 0) | (pred >= num_classes)
    if bad.any():
        raise ValueError(
            f"labels must lie in [0, {num_classes}) or be {ignore_index}, "
            f"got values {np.unique(np.concatenate([pred[bad], target[bad]]))[:5]}"
        )
    return np.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def miou_from_confusion(conf: np.ndarray) -> tuple[float, np.ndarray]:
    """Standard mIoU: ``IoU_c = TP / (TP + FP + FN)``; mean over classes that occur.

    Classes absent from both ground truth and prediction (zero row and column)
    get ``nan`` IoU and are left out of the mean.

    Returns:
        ``(miou, per_class_iou)`` with ``per_class_iou`` of shape ``(C,)``.
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"expected a square (C, C) matrix, got shape {conf.shape}")
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(union > 0, tp / union, np.nan)
    return nan_mean(per_class), per_class


def nan_mean(values: Sequence[float]) -> float:
    """Mean skipping ``nan`` (e.g. images with no scored class); ``nan`` if all are."""
    arr = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def roc_auc(score: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """ROC AUC of ``score`` for ``positive`` along the last axis (Mann-Whitney U; ties share
    their mean rank): the chance that a random positive entry outscores a random negative one.

    Args:
        score: ``(..., N)`` scores (e.g. a map's patches).
        positive: ``(..., N)`` bool, or broadcastable to ``score`` (e.g. one object mask for
            every head of an image).

    Returns:
        ``(...)`` float64 AUC in [0, 1] (0.5: the score ignores the label), ``nan`` where all
        entries are positive or all negative.
    """
    s = torch.as_tensor(score).double()
    pos = torch.as_tensor(positive).bool().expand(s.shape)
    ranked = s.sort(-1).values
    lo = torch.searchsorted(ranked, s.contiguous(), right=False)
    hi = torch.searchsorted(ranked, s.contiguous(), right=True)
    ranks = (lo + hi + 1).double() / 2  # 1-based mid-ranks: ties share their mean rank
    n1 = pos.sum(-1).double()
    n0 = (~pos).sum(-1).double()
    u = (ranks * pos).sum(-1) - n1 * (n1 + 1) / 2
    return torch.where((n1 > 0) & (n0 > 0), u / (n1 * n0), torch.full_like(u, float("nan")))
