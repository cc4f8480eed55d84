"""Figures and measurements of the coarse-segmentation chapter (book chapter 9; the paper's Fig. 4,
eqs. 13-14).

The scoring itself is :mod:`cratelib.eval.segmentation` (eqs. 13-14:
:func:`~cratelib.eval.segmentation.coarse_segmentation`) with the two binarisations of
:mod:`cratelib.eval.threshold`. This module arranges it:

* :func:`layerwise` - eqs. 13-14 for every layer of an ``(L, J, K, h, w)`` stack of maps
  (:func:`cratelib.figures.attention.layer_maps`);
* :func:`random_maps` - chance-level maps with as many heads as the model, so that the best-head
  rule has the same freedom;
* :func:`top_entries_ceiling` - the best eq. 14 score any set of the top-entries rule's size can
  reach: what the rule allows at all on a given data set;
* :func:`miou_vs_threshold` - eq. 14 as a function of the kept share P;
* :func:`plot_head_masks` - per image, every head's binarised map with its eq. 13 IoU, the best
  head marked (the layout of Fig. 4a; the widget's figure);
* :func:`plot_threshold_curves` - eq. 14 against P for several models.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.metrics import IGNORE_INDEX, best_head_miou, class_masks, nan_mean
from cratelib.eval.segmentation import CoarseSegResult, coarse_segmentation, head_masks
from cratelib.eval.threshold import ThresholdMode
from cratelib.figures.style import contour, no_ticks, styled

__all__ = [
    "layerwise",
    "random_maps",
    "top_entries_ceiling",
    "miou_vs_threshold",
    "plot_head_masks",
    "plot_threshold_curves",
]


def layerwise(maps: torch.Tensor, labels: Sequence[np.ndarray], p: float = 0.6,
              mode: ThresholdMode = "top-entries") -> CoarseSegResult:
    """Eqs. 13-14 at every layer of ``maps`` ``(L, J, K, h, w)``; layers are keyed ``0..L-1``.

    Args:
        maps: CLS attention maps (or any non-negative maps) of J images, K heads each.
        labels: J ``(H, W)`` label maps (0 background, 255 ignore, else a class).
        p, mode: the binarisation (the paper's App. B.3: 0.6, ``"top-entries"``).
    """
    return coarse_segmentation({l: maps[l] for l in range(len(maps))}, labels, p, mode)


def random_maps(num_images: int, heads: int, grid: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """``(J, K, h, w)`` random maps: the softmax of standard normal logits over the patches."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_images, heads, grid[0] * grid[1], generator=gen)
    return logits.softmax(-1).unflatten(-1, grid)


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


def miou_vs_threshold(maps: torch.Tensor, labels: Sequence[np.ndarray], ps: Sequence[float],
                      mode: ThresholdMode = "top-entries") -> np.ndarray:
    """``(len(ps),)``: eq. 14 (mean over images) of one layer's ``(J, K, h, w)`` maps at each P."""
    return np.asarray([coarse_segmentation({0: maps}, labels, p, mode).miou[0] for p in ps])


def _head_row(axes, image: np.ndarray, maps: torch.Tensor, labels: np.ndarray, p: float,
              mode: ThresholdMode) -> float:
    """Draw one image and its K binarised head maps into ``K + 1`` axes; return eq. 14."""
    K = maps.shape[0]
    masks = head_masks(maps, labels.shape, p, mode)  # (K, H, W) bool
    fg = (labels > 0) & (labels != IGNORE_INDEX)
    valid = labels != IGNORE_INDEX
    head_scores = [best_head_miou(masks[k:k + 1], labels)[0] for k in range(K)]
    best = int(np.nanargmax(head_scores)) if np.isfinite(head_scores).any() else -1
    axes[0].imshow(image)
    contour(axes[0], fg, "white")
    for k in range(K):
        ax = axes[k + 1]
        ax.imshow(image.astype(float) / 255 * np.where(masks[k] & valid, 1.0, 0.2)[..., None])
        contour(ax, fg, "white", 0.7)
        ax.set_title(f"head {k + 1}, IoU {head_scores[k]:.2f}", fontsize=8)
        if k == best:
            for side in ax.spines.values():
                side.set_edgecolor("red")
                side.set_linewidth(2.5)
    no_ticks(axes)
    return best_head_miou(masks, labels)[0]  # eq. 14: per class the best head, mean over classes


@styled
def plot_head_masks(images: np.ndarray | Sequence[np.ndarray], maps: torch.Tensor,
                    labels: np.ndarray | Sequence[np.ndarray], p: float = 0.6,
                    mode: ThresholdMode = "top-entries", title: str = ""):
    """Per image: the image (true objects outlined), then each head's map binarised at P with its
    eq. 13 IoU; the best head (the one eq. 13 picks) framed in red; eq. 14 at the row's left.

    Args:
        images: one ``(H, W, 3)`` uint8 image, or J of them.
        maps: ``(K, h, w)`` maps of the K heads for one image, or ``(J, K, h, w)``.
        labels: one ``(H, W)`` label map (0 background, 255 ignore), or J of them.
        p, mode: the binarisation.
    """
    if maps.dim() == 3:
        images, maps, labels = [images], maps[None], [labels]
    J, K = maps.shape[:2]
    fig, axes = plt.subplots(J, K + 1, figsize=(1.7 * (K + 1), 2.0 * J + 0.5), squeeze=False)
    for j in range(J):
        score = _head_row(axes[j], images[j], maps[j], np.asarray(labels[j]), p, mode)
        axes[j, 0].set_title(f"eq. 14 = {score:.2f}", fontsize=8)
    fig.suptitle(title or f"{mode}, P = {p:.0%}")
    fig.tight_layout(pad=0.3, w_pad=0.3, h_pad=1.0, rect=(0, 0, 1, 1 - 0.35 / (2.0 * J + 0.5)))
    return fig


@styled
def plot_threshold_curves(ps: Sequence[float], curves: Mapping[str, Sequence[float]], mark: float | None = None,
                          ylabel: str = "mIoU, eq. 14", title: str = ""):
    """Eq. 14 against the kept share P, one line per entry of ``curves`` (``{label: values}``); an
    optional vertical line at ``mark`` (the paper's 0.6)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for label, values in curves.items():
        ax.plot(list(ps), list(values), marker=".", label=label)
    if mark is not None:
        ax.axvline(mark, color="grey", ls=":", lw=1)
    ax.set_xlabel("P (share kept)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
