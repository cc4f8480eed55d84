"""Figures of coarse segmentation (book chapter 9; the paper's Fig. 4, eqs. 13-14).

The scoring is :mod:`cratelib.eval.segmentation` (eqs. 13-14:
:func:`~cratelib.eval.segmentation.coarse_segmentation`) with the two binarisations of
:mod:`cratelib.eval.threshold`. Heads are numbered from 1.

* :func:`plot_head_masks` - per image, every head's binarised map with its eq. 13 IoU, the best
  head marked (the layout of Fig. 4a; the widget's figure), from
  :func:`cratelib.eval.segmentation.head_mask_scores`;
* :func:`plot_threshold_curves` - eq. 14 against P for several models;
* :func:`plot_bars` - one bar per model (Fig. 4b), beside the paper's values.

The study's measures per layer are drawn by :func:`cratelib.figures.emergence.plot_study_panels`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from cratelib.eval.metrics import IGNORE_INDEX
from cratelib.eval.segmentation import HeadMasks
from cratelib.figures.style import contour, no_ticks, styled

__all__ = ["plot_head_masks", "plot_threshold_curves", "plot_bars"]


def _head_row(axes, image: np.ndarray, scored: HeadMasks, labels: np.ndarray) -> None:
    """Draw one image and its K binarised head maps into ``K + 1`` axes."""
    fg = (labels > 0) & (labels != IGNORE_INDEX)
    valid = labels != IGNORE_INDEX
    axes[0].imshow(image)
    contour(axes[0], fg, "white")
    for k, mask in enumerate(scored.masks):
        ax = axes[k + 1]
        ax.imshow(image.astype(float) / 255 * np.where(mask & valid, 1.0, 0.2)[..., None])
        contour(ax, fg, "white", 0.7)
        ax.set_title(f"head {k + 1}, IoU {scored.head_iou[k]:.2f}", fontsize=8)
        if k == scored.best:
            for side in ax.spines.values():
                side.set_edgecolor("red")
                side.set_linewidth(2.5)
    no_ticks(axes)


@styled
def plot_head_masks(images: Sequence[np.ndarray], scored: Sequence[HeadMasks], labels: Sequence[np.ndarray],
                    title: str = ""):
    """Per image: the image (true objects outlined), then each head's binarised map with its
    eq. 13 IoU; the best head (the one eq. 13 picks) framed in red; eq. 14 above the image.

    Args:
        images: J ``(H, W, 3)`` uint8 images.
        scored: their :func:`cratelib.eval.segmentation.head_mask_scores`.
        labels: their J ``(H, W)`` label maps (0 background, 255 ignore).
        title: e.g. the binarisation (``"top-entries, P = 60%"``).
    """
    J, K = len(scored), len(scored[0].masks)
    fig, axes = plt.subplots(J, K + 1, figsize=(1.7 * (K + 1), 2.0 * J + 0.5), squeeze=False)
    for j in range(J):
        _head_row(axes[j], images[j], scored[j], np.asarray(labels[j]))
        axes[j, 0].set_title(f"eq. 14 = {scored[j].miou:.2f}", fontsize=8)
    if title:
        fig.suptitle(title)
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


@styled
def plot_bars(values: Mapping[str, float], reference: Mapping[str, float] | None = None,
              ylabel: str = "mIoU (%)", labels: tuple[str, str] = ("ours", "paper"), title: str = ""):
    """Bars per model (Fig. 4b), optionally beside the paper's values.

    Args:
        values: model -> our value.
        reference: model -> the paper's value (models without one get no bar).
        labels: legend entries of the two sets of bars.
    """
    names = list(values)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.2))
    width = 0.4 if reference else 0.8
    ax.bar(x - (width / 2 if reference else 0), [values[n] for n in names], width, label=labels[0])
    if reference:
        ax.bar(x + width / 2, [reference.get(n, np.nan) for n in names], width, label=labels[1])
        ax.legend()
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
