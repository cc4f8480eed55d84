"""Figures of the emergence study (:mod:`cratelib.eval.study`): drawn from its rows and maps.

* :func:`plot_study_panels` - measures over the layers, one panel per (measure, stage), one curve
  per model (mean over seeds, the seeds' range shaded), the best pixel cue and random maps as
  reference lines (:func:`cratelib.eval.study.tables.study_panels` prepares them);
* :func:`plot_study_maps` - rows = models, columns = images: each model's chosen head at its
  primary layer, the main object outlined; on the map's own values or on its percentile scale
  (:func:`cratelib.eval.localisation.percentile_maps`), the order of the patches that the per-image
  AUC scores.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.localisation import percentile_maps
from cratelib.eval.study.tables import Panel
from cratelib.figures.curves import plot_seed_curves
from cratelib.figures.style import COLORS, contour, finish, styled

__all__ = ["plot_study_panels", "plot_study_maps"]


@styled
def plot_study_panels(panels: Sequence[Panel], ylabel: str = "", cols: int = 2, title: str = ""):
    """The study's measures over the layers, one axis per :class:`cratelib.eval.study.tables.Panel`
    (:func:`cratelib.eval.study.tables.study_panels`): every model as the mean over its seeds, the
    seeds' range shaded and each seed a thin line (:func:`cratelib.figures.curves.plot_seed_curves`),
    in the same colour in every panel; the panel's references as grey lines. One legend for all
    panels, right of them; the panels share the y axis."""
    models = list(dict.fromkeys(n for p in panels for n in p.bands))
    colors = {n: COLORS[i % len(COLORS)] for i, n in enumerate(models)}
    cols = min(cols, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(min(3.6 * cols + 1.8, 10.0), 2.7 * nrows), sharey=True,
                             squeeze=False)
    handles = {}
    for ax, panel in zip(axes.flat, panels):
        plot_seed_curves(panel.bands, "layer", "", ax=ax, colors=colors, references=panel.references, legend=False,
                         title=panel.title)
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label.split(" (")[0] if label.split(" (")[0] in colors else label, (h, label))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    fig.legend([h for h, _ in handles.values()], [label for _, label in handles.values()], loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=7.5)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def plot_study_maps(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor],
                    truths: Sequence[np.ndarray] | None = None, title: str = "", scale: str = "value"):
    """Row 0: the images (objects outlined); then one row per label of ``maps`` (``(J, h, w)``,
    e.g. a model's chosen head at its primary layer), upsampled to the image size. ``scale``:
    ``"value"`` draws each map on its own values (colour range from its lowest to its highest
    patch), ``"percentile"`` on :func:`cratelib.eval.localisation.percentile_maps`, the patch order the AUC
    scores."""
    if scale not in ("value", "percentile"):
        raise ValueError(f"scale must be 'value' or 'percentile', got {scale!r}")
    J, R = len(images), len(maps) + 1
    fig, axes = plt.subplots(R, J, figsize=(1.15 * J + 1.2, 1.15 * R), squeeze=False)
    for j, image in enumerate(images):
        axes[0, j].imshow(image)
        if truths is not None:
            contour(axes[0, j], truths[j], "white")
        for r, amap in enumerate(maps.values(), start=1):
            shown = percentile_maps(amap[j]) if scale == "percentile" else amap[j]
            axes[r, j].imshow(upsample_maps(shown, image.shape[:2]).numpy(), cmap="inferno",
                              **({"vmin": 0.0, "vmax": 1.0} if scale == "percentile" else {}))
            if truths is not None:
                contour(axes[r, j], truths[j], "cyan", 0.6)
    for r, label in enumerate(["image", *maps], start=0):
        axes[r, 0].set_ylabel(label, fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)
