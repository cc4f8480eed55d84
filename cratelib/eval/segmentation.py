"""Coarse segmentation from attention maps and its mIoU, App. B.3 (eqs. 13-14).

For one image and layer l, each head's CLS map (eq. 10/11) is binarised at
P = 60 % (``mode="top-entries"``: the appendix's "top 60 % of the entries";
``mode="mass"``: DINO's smallest set holding 60 % of the attention mass,
see :mod:`cratelib.eval.threshold`), upsampled to the label map (nearest),
and each ground-truth class mask is scored by the best head's IoU (eq. 13);
the image's score is the mean over its classes (eq. 14), and the layer's
score the mean over images.

Also reported, per layer, the standard data-set mIoU of a two-class
(background / foreground) prediction: the head-averaged map binarised the
same way, against ground-truth foreground (any object class), accumulated
in one confusion matrix with label 255 ignored.

:func:`layerwise_miou` is the driver from a model and images to these scores
(the chapters, the command line and the tests call it);
:func:`miou_vs_threshold` and :func:`top_entries_ceiling` say how much the
binarisation rule, rather than the maps, sets the number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.extract import FeatureCache, extract
from cratelib.eval.metrics import (
    IGNORE_INDEX,
    best_head_miou,
    class_masks,
    confusion_matrix,
    nan_mean,
    miou_from_confusion,
)
from cratelib.eval.sources import Sample
from cratelib.eval.threshold import ThresholdMode, threshold_maps


@dataclass
class CoarseSegResult:
    """Scores per layer.

    Attributes:
        miou: ``l -> `` eq. 14 averaged over images (the number of Fig. 4b).
        per_image: ``l -> (J,)`` eq. 14 of each image (``nan``: no object class).
        fg_miou: ``l -> `` two-class data-set mIoU of the head-averaged mask.
        best_heads: ``l -> (K,)`` how often each head was the best match.
    """

    miou: dict[int, float] = field(default_factory=dict)
    per_image: dict[int, np.ndarray] = field(default_factory=dict)
    fg_miou: dict[int, float] = field(default_factory=dict)
    best_heads: dict[int, np.ndarray] = field(default_factory=dict)


def head_masks(
    maps: torch.Tensor, size: tuple[int, int], p: float = 0.6, mode: ThresholdMode = "top-entries"
) -> np.ndarray:
    """``(K, h, w)`` head maps -> ``(K, H, W)`` bool masks at label resolution."""
    return upsample_maps(threshold_maps(maps, p, mode), size).numpy()


@dataclass
class HeadMasks:
    """One image's heads binarised (eq. 13), for display: ``masks`` ``(K, H, W)`` bool at label
    resolution, ``head_iou`` ``(K,)`` each head's eq. 13 IoU alone, ``best`` the head with the
    highest (-1: none defined) and ``miou`` eq. 14 (per class the best head, mean over classes)."""

    masks: np.ndarray
    head_iou: np.ndarray
    best: int
    miou: float


def head_mask_scores(maps: torch.Tensor, labels: np.ndarray | Sequence[np.ndarray], p: float = 0.6,
                     mode: ThresholdMode = "top-entries") -> list[HeadMasks]:
    """:class:`HeadMasks` of each image: ``maps`` ``(K, h, w)`` for one image with one ``(H, W)``
    label map, or ``(J, K, h, w)`` with J of them."""
    if maps.dim() == 3:
        maps, labels = maps[None], [labels]
    out = []
    for m, lab in zip(maps, labels):
        lab = np.asarray(lab)
        masks = head_masks(m, lab.shape, p, mode)
        per_head = np.array([best_head_miou(masks[k:k + 1], lab)[0] for k in range(len(masks))])
        best = int(np.nanargmax(per_head)) if np.isfinite(per_head).any() else -1
        out.append(HeadMasks(masks, per_head, best, best_head_miou(masks, lab)[0]))
    return out


def score_image(
    maps: torch.Tensor,
    labels: np.ndarray,
    p: float = 0.6,
    mode: ThresholdMode = "top-entries",
    include_background: bool = False,
) -> tuple[float, dict[int, float], np.ndarray, dict[int, int]]:
    """Eqs. 13-14 for one image and layer, plus its 2x2 foreground confusion matrix.

    Args:
        maps: ``(K, h, w)`` CLS attention maps of the K heads.
        labels: ``(H, W)`` semantic labels (0 background, 255 ignore).
        p, mode: binarisation (paper: 0.6, "top-entries").
        include_background: score the background as one of the M classes.

    Returns:
        ``(miou, iou per class, confusion (2, 2), best head per class)``.
    """
    labels = np.asarray(labels)
    masks = head_masks(maps, labels.shape, p, mode)
    miou, per_class, best = best_head_miou(masks, labels, include_background)
    valid = labels != IGNORE_INDEX
    pred_fg = head_masks(maps.mean(0, keepdim=True), labels.shape, p, mode)[0]
    target = np.where(valid, labels > 0, IGNORE_INDEX)
    conf = confusion_matrix(pred_fg.astype(np.int64), target, num_classes=2)
    return miou, per_class, conf, best


def coarse_segmentation(
    attention: dict[int, torch.Tensor] | torch.Tensor,
    labels: Sequence[np.ndarray],
    p: float = 0.6,
    mode: ThresholdMode = "top-entries",
    include_background: bool = False,
) -> CoarseSegResult:
    """App. B.3 over a data set, for every layer of ``attention``.

    Args:
        attention: ``l -> (J, K, h, w)`` CLS maps (:func:`cratelib.eval.extract.extract`), or
            an ``(L, J, K, h, w)`` stack (:func:`cratelib.eval.extract.layer_maps`), keyed
            ``0..L-1``.
        labels: J label maps ``(H_j, W_j)`` (VOC convention).
        p, mode, include_background: see :func:`score_image`.
    """
    if isinstance(attention, torch.Tensor):
        if attention.dim() != 5:
            raise ValueError(f"expected a stack of maps (L, J, K, h, w), got shape {tuple(attention.shape)}")
        attention = {l: attention[l] for l in range(len(attention))}
    result = CoarseSegResult()
    for layer, maps in attention.items():
        if maps.shape[0] != len(labels):
            raise ValueError(f"layer {layer}: {maps.shape[0]} attention maps but {len(labels)} label maps")
        scores, conf = [], np.zeros((2, 2), np.int64)
        counts = np.zeros(maps.shape[1], np.int64)
        for j, lab in enumerate(labels):
            miou, _, c, best = score_image(maps[j], lab, p, mode, include_background)
            scores.append(miou)
            conf += c
            np.add.at(counts, list(best.values()), 1)
        result.per_image[layer] = np.asarray(scores)
        result.miou[layer] = nan_mean(scores)
        result.fg_miou[layer] = miou_from_confusion(conf)[0]
        result.best_heads[layer] = counts
    return result


def layerwise_miou(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    layers: Sequence[int] | None = None,
    img_size: int | None = None,
    p: float = 0.6,
    mode: ThresholdMode = "top-entries",
    scale: float | None = None,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    progress: bool = False,
    batch_size: int = 8,
) -> CoarseSegResult:
    """Coarse-segmentation mIoU (eqs. 13-14) of ``layers`` (default: all; Fig. 4b at the last,
    Fig. 6 per layer) over ``samples`` with label maps, at ``img_size`` (default: the model's own).
    """
    labels = [s.labels for s in samples]
    if any(lab is None for lab in labels):
        raise ValueError("coarse segmentation needs samples with label maps (VOC data)")
    ex = extract(model, [s.image for s in samples], layers, img_size, what=("attention",), batch_size=batch_size,
                 device=device, scale=scale, progress=progress, cache=cache)
    return coarse_segmentation(ex.attention, labels, p, mode)


def miou_vs_threshold(maps: torch.Tensor, labels: Sequence[np.ndarray], ps: Sequence[float],
                      mode: ThresholdMode = "top-entries") -> np.ndarray:
    """``(len(ps),)``: eq. 14 (mean over images) of one layer's ``(J, K, h, w)`` maps at each P."""
    return np.asarray([coarse_segmentation({0: maps}, labels, p, mode).miou[0] for p in ps])


def top_entries_ceiling(labels: Sequence[np.ndarray], grid: tuple[int, int], p: float = 0.6) -> float:
    """The highest eq. 14 score (mean over images) that sets of the top-entries rule's size allow.

    The rule keeps ``round(p N)`` of the ``N`` patches, a share ``a`` of the image whatever the map.
    A set of share ``a`` and a class mask of share ``s`` have at most ``min(a, s)`` in common and
    at least ``max(a, s)`` in their union, so eq. 13 is at most ``min(a, s) / max(a, s)``; eq. 14
    averages that over the image's classes. For label maps without ignored pixels (the embedded
    data); VOC's ignored borders make it approximate.
    """
    n = grid[0] * grid[1]
    a = round(p * n) / n
    scores = []
    for lab in labels:
        shares = [float(m.mean()) for m in class_masks(np.asarray(lab)).values()]
        scores.append(nan_mean([min(a, s) / max(a, s) for s in shares]))
    return nan_mean(scores)
