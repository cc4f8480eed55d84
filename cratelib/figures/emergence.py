"""Figures of the emergence study (:mod:`cratelib.eval.emergence`): drawn from its rows and maps.

* :func:`plot_study_layers` - the primary measure over the layers, one curve per model (mean over
  seeds, the seeds' range shaded), the best pixel cue and random maps as reference lines;
* :func:`plot_study_maps` - rows = models, columns = images: each model's chosen head at its
  primary layer, the main object outlined.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from cratelib.eval.attention import upsample_maps
from cratelib.figures.style import COLORS, contour, finish, styled

__all__ = ["plot_study_layers", "plot_study_maps"]


@styled
def plot_study_layers(rows: Sequence[dict], measure: str = "auc_half", stage: str = "final",
                      ylabel: str = "AUC of the chosen head", title: str = ""):
    """``measure`` per layer for every model of ``rows`` (:attr:`StudyResult.rows`) at ``stage``."""
    fig, ax = plt.subplots(figsize=(6.8, 3.2))
    models = list(dict.fromkeys(r["name"] for r in rows if r["stage"] == stage))
    for i, name in enumerate(models):
        mine = [r for r in rows if r["name"] == name and r["stage"] == stage]
        layers = sorted({r["layer"] for r in mine})
        values = np.array([[r[measure] for r in mine if r["layer"] == l] for l in layers])  # (layers, seeds)
        color = COLORS[i % len(COLORS)]
        seeds = values.shape[1]
        ax.plot(layers, values.mean(1), "-o", ms=3.5, color=color, label=f"{name} ({seeds} seed{'s' * (seeds > 1)})")
        if seeds > 1:
            ax.fill_between(layers, values.min(1), values.max(1), color=color, alpha=0.2)
    baselines = {r["name"]: r[measure] for r in rows if r["stage"] == "baseline"}
    if baselines:
        best = max((n for n in baselines if n != "random"), key=baselines.get, default=None)
        for name, style in ((best, "--"), ("random", ":")):
            if name in baselines:
                ax.axhline(baselines[name], ls=style, color="grey", lw=1, label=f"{name} (pixels)" if name != "random" else "random maps")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


@styled
def plot_study_maps(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor],
                    truths: Sequence[np.ndarray] | None = None, title: str = ""):
    """Row 0: the images (objects outlined); then one row per label of ``maps`` (``(J, h, w)``,
    e.g. a model's chosen head at its primary layer), upsampled to the image size."""
    J, R = len(images), len(maps) + 1
    fig, axes = plt.subplots(R, J, figsize=(1.15 * J + 1.2, 1.15 * R), squeeze=False)
    for j, image in enumerate(images):
        axes[0, j].imshow(image)
        if truths is not None:
            contour(axes[0, j], truths[j], "white")
        for r, amap in enumerate(maps.values(), start=1):
            axes[r, j].imshow(upsample_maps(amap[j], image.shape[:2]).numpy(), cmap="inferno")
            if truths is not None:
                contour(axes[r, j], truths[j], "cyan", 0.6)
    for r, label in enumerate(["image", *maps], start=0):
        axes[r, 0].set_ylabel(label, fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)
