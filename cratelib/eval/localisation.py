"""How well CLS attention maps localise a known object: the measures of chapters 7, 11 and 12.

On data with exact object masks (the embedded shapes), every map can be scored against the truth
without looking at it. All measures keep the image and head axes, so that any mean, best head or
paired comparison (:mod:`cratelib.eval.stats`) is taken afterwards, on the same numbers; the one
scorer that applies them to a stack of maps is :func:`cratelib.eval.scoring.score_maps`:

* :func:`object_fraction`, :func:`patch_kinds` - each patch's share of object pixels, and the split
  of the patches into background, outline and interior;
* :func:`attention_on` - the share of a map's attention on a set of patches (no threshold);
* :func:`map_auc` - the per-image, per-head ROC AUC of a map against the object (no threshold, no
  choice of head);
* :func:`best_head_ious`, :func:`uniform_ious` - IoU of DINO's 60 %-mass set with the object, for
  the best head of each image (eq. 13 with the mass threshold), and what a flat map scores;
* :func:`head_measures`, :func:`class_head_means` - what each head of one layer looks at (Fig. 7's
  "semantic heads", measured), and its mean per class;
* :func:`map_overlap`, :func:`mass_coverage` - how much two maps share, and how many patches a
  mass set takes;
* :func:`percentile_maps` - each map on its own percentile scale, the patch order the AUC scores.

Maps are ``(..., J, K, h, w)`` tensors (images, heads, patch grid); object masks are ``(H, W)``
bool arrays at image resolution.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.stats import rankdata

from cratelib.eval.attention import upsample_maps
from cratelib.eval.metrics import best_head_iou, roc_auc
from cratelib.eval.threshold import mass_mask

__all__ = [
    "object_fraction",
    "patch_kinds",
    "attention_on",
    "map_auc",
    "best_head_ious",
    "uniform_ious",
    "head_measures",
    "KINDS",
    "head_summary",
    "kind_shares",
    "class_head_means",
    "map_overlap",
    "mass_coverage",
    "percentile_maps",
]


def object_fraction(truths: Sequence[np.ndarray], grid: tuple[int, int]) -> torch.Tensor:
    """``(J, h, w)``: the share of each patch's pixels that lie inside the object mask (0 = all
    background, 1 = all object; in between: the outline crosses the patch)."""
    masks = torch.from_numpy(np.stack([np.asarray(t, bool) for t in truths])).float()[:, None]
    return torch.nn.functional.adaptive_avg_pool2d(masks, grid)[:, 0]


def patch_kinds(fraction: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split the patches by how much of them lies on the object: ``background`` (no object
    pixel), ``outline`` (the object's edge crosses the patch) and ``interior`` (all pixels on the
    object). Each value is a ``(J, h, w)`` 0/1 float weight for :func:`attention_on`; the three
    add up to one at every patch.

    Args:
        fraction: ``(J, h, w)`` share of each patch's pixels on the object
            (:func:`object_fraction`).
    """
    return {"background": (fraction == 0).float(),
            "outline": ((fraction > 0) & (fraction < 1)).float(),
            "interior": (fraction == 1).float()}


def attention_on(maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Share of each map's attention on a set of patches: ``sum_i A_i w_i / sum_i A_i``.

    Args:
        maps: ``(..., J, K, h, w)`` non-negative maps.
        weights: ``(J, h, w)`` patch weights in [0, 1], e.g. :func:`object_fraction` (then the
            result is the share of attention that falls on object pixels; a uniform map scores the
            object's share of the image).

    Returns:
        ``(..., J, K)``.
    """
    w = weights[:, None]  # (J, 1, h, w)
    return (maps * w).sum((-2, -1)) / maps.sum((-2, -1))


def map_auc(maps: torch.Tensor, fraction: torch.Tensor, min_share: float = 0.5) -> torch.Tensor:
    """Per image and head, the ROC AUC of the map's patch values for "the patch is on the object".

    A patch counts as object when at least ``min_share`` of its pixels are (``0.5``: the patches
    mostly on the object; a tiny positive value: any object pixel). 1: every object patch gets
    more attention than every background patch; 0.5: the map ignores the object; no threshold on
    the map and no choice of head is involved.

    Args:
        maps: ``(..., J, K, h, w)`` maps.
        fraction: ``(J, h, w)`` share of each patch on the object (:func:`object_fraction`).

    Returns:
        ``(..., J, K)`` float64 (``nan`` for an image whose patches are all object or all not).
    """
    positive = (fraction >= min_share).flatten(-2)[:, None]  # (J, 1, N)
    return roc_auc(maps.flatten(-2), positive)


def best_head_ious(maps: torch.Tensor, truths: Sequence[np.ndarray], mass: float = 0.6
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the IoU of the best head's DINO mass set with the true object mask (eq. 13
    with the mass threshold), and which head that is.

    Args:
        maps: ``(J, K, h, w)`` maps of one layer.
        truths: J ``(H, W)`` bool object masks.
        mass: attention mass kept (DINO: 0.6).

    Returns:
        ``(ious (J,), heads (J,))``.
    """
    sets = mass_mask(maps, mass)
    ious, heads = [], []
    for j, truth in enumerate(truths):
        masks = upsample_maps(sets[j], truth.shape).numpy()
        value, k = best_head_iou(masks, truth)
        ious.append(value)
        heads.append(k)
    return np.asarray(ious), np.asarray(heads)


def uniform_ious(truths: Sequence[np.ndarray]) -> np.ndarray:
    """What a map that prefers no patch scores: all patches are equal, so no proper subset of
    them is singled out, and the honest binarisation is the whole image. Its IoU with the object
    is the object's share of the image."""
    return np.asarray([float(np.asarray(t, bool).mean()) for t in truths])


def _centroid_offsets(maps: torch.Tensor, truths: Sequence[np.ndarray], fraction: torch.Tensor
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Where on the object a head looks: the centroid of its attention on object pixels, minus
    the object's own centroid, in units of the object's height and width: ``(dy, dx)`` each
    ``(J, K)`` (negative dy = above the object's centre; ``nan`` for a head with no attention on
    the object)."""
    J, K, h, w = maps.shape
    H, W = truths[0].shape
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * H / h  # patch centres in pixels
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * W / w
    weight = maps * fraction[:, None]  # (J, K, h, w) attention on object pixels
    total = weight.sum((-2, -1))
    total = torch.where(total > 0, total, torch.nan)
    cy = (weight.sum(-1) * ys).sum(-1) / total  # (J, K)
    cx = (weight.sum(-2) * xs).sum(-1) / total
    dy, dx = np.zeros((J, K)), np.zeros((J, K))
    for j, truth in enumerate(truths):
        rows, cols = np.nonzero(truth)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        dy[j] = (cy[j].numpy() - (rows.mean() + 0.5)) / height
        dx[j] = (cx[j].numpy() - (cols.mean() + 0.5)) / width
    return dy, dx


def head_measures(maps: torch.Tensor, truths: Sequence[np.ndarray], mass: float = 0.6) -> dict[str, np.ndarray]:
    """What each head of one layer looks at, per image: every value is ``(J, K)``.

    Keys:
        ``object``: share of the head's attention on object pixels (chapter 7's measure);
        ``background``, ``outline``, ``interior``: its share on each kind of patch
        (:func:`patch_kinds`; they sum to one);
        ``iou``: IoU of the head's ``mass`` set (DINO's display) with the object;
        ``best``: 1 where this head has the best IoU of the image's heads (eq. 13's choice);
        ``auc``: ROC AUC of the head's map against the object patches (:func:`map_auc`);
        ``dy``, ``dx``: where on the object it looks, the offset of its on-object attention
        centroid from the object's centroid in units of the object's height / width.

    A head that attends to the same part of every object (the paper's "legs" or "ear" heads) has
    a large mean offset with a small spread across images; a head spread over the whole object
    has offsets near zero.

    Args:
        maps: ``(J, K, h, w)`` CLS maps of one layer.
        truths: J ``(H, W)`` bool object masks (one object per image).
        mass: attention mass of the sets scored by ``iou``.
    """
    J, K, h, w = maps.shape
    if len(truths) != J:
        raise ValueError(f"{J} images of maps but {len(truths)} masks")
    frac = object_fraction(truths, (h, w))
    out = {"object": attention_on(maps, frac).numpy()}
    for name, weight in patch_kinds(frac).items():
        out[name] = attention_on(maps, weight).numpy()
    out["iou"] = np.stack([best_head_ious(maps[:, k:k + 1], truths, mass)[0] for k in range(K)], axis=1)
    best = out["iou"].argmax(1)
    out["best"] = (np.arange(K)[None] == best[:, None]).astype(float)
    out["auc"] = map_auc(maps, frac).numpy()
    out["dy"], out["dx"] = _centroid_offsets(maps, truths, frac)
    return out


KINDS = ("background", "outline", "interior")  # the patch kinds of :func:`patch_kinds`


def head_summary(measures: dict[str, np.ndarray], model: str = "",
                 keys: Sequence[str] = ("object", "outline", "iou", "dy", "dx")) -> list[dict]:
    """One row per head of :func:`head_measures` (a table for
    :func:`cratelib.figures.tables.format_table`): ``mean (std)`` over the images of each measure
    in ``keys`` (signed for the offsets ``dy``, ``dx``), and how often the head is the image's best."""
    K = next(iter(measures.values())).shape[1]
    rows = []
    for k in range(K):
        row = {"head": f"{model} {k + 1}".strip()}
        for key in keys:
            v = measures[key][:, k]
            row[key] = f"{np.nanmean(v):{'+' if key in ('dy', 'dx') else ''}.2f} ({np.nanstd(v):.2f})"
        row["best head"] = f"{measures['best'][:, k].mean():.0%}"
        rows.append(row)
    return rows


def kind_shares(measures: dict[str, np.ndarray]) -> np.ndarray:
    """``(K, 3)``: each head's mean share of attention on the :data:`KINDS` of patches, from
    :func:`head_measures`."""
    return np.stack([measures[kind].mean(0) for kind in KINDS], axis=1)


def class_head_means(values: np.ndarray, labels: Sequence[int], num_classes: int) -> np.ndarray:
    """``(C, K)``: the mean of a ``(J, K)`` per-image, per-head measure over the images of each
    class (``nan`` for a class without images)."""
    values = np.asarray(values, float)
    labels = np.asarray(labels)
    out = np.full((num_classes, values.shape[1]), np.nan)
    for c in range(num_classes):
        if (labels == c).any():
            out[c] = values[labels == c].mean(0)
    return out


def map_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overlap ``sum_i min(a_i, b_i)`` of maps normalised to sum one over the grid: 1 for the
    same map, 0 for maps on disjoint patches (one minus their total-variation distance).

    Args:
        a, b: ``(..., h, w)`` non-negative maps of the same shape.

    Returns:
        ``(...)``.
    """
    a = a / a.sum((-2, -1), keepdim=True)
    b = b / b.sum((-2, -1), keepdim=True)
    return torch.minimum(a, b).sum((-2, -1))


def mass_coverage(maps: torch.Tensor, mass: float = 0.6) -> torch.Tensor:
    """``(...)``: the share of the patches in each map's smallest set holding ``mass`` of its
    attention (DINO's display; small = a peaked map)."""
    return mass_mask(maps, mass).float().flatten(-2).mean(-1)


def percentile_maps(maps: torch.Tensor) -> torch.Tensor:
    """Each ``(..., h, w)`` map replaced by the percentile of each patch within that map, in
    ``[0, 1]`` (lowest patch 0, highest 1, ties share their mean rank; a one-patch map is 0.5).

    The per-image AUC depends only on this order, so a map drawn on its percentile scale shows
    what the AUC scores, where the map's own values let a few hot patches set the colour scale."""
    if maps.dim() < 2:
        raise ValueError(f"maps must be (..., h, w), got shape {tuple(maps.shape)}")
    flat = maps.detach().float().cpu().reshape(*maps.shape[:-2], -1).numpy()
    n = flat.shape[-1]
    if n == 1:
        return torch.full(maps.shape, 0.5)
    ranks = (rankdata(flat, axis=-1) - 1.0) / (n - 1)
    return torch.from_numpy(ranks).float().reshape(maps.shape)
