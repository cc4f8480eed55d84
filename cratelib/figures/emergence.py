"""Figures of the emergence study (:mod:`cratelib.eval.study`): drawn from its rows and maps.

* :func:`plot_study_panels` - measures over the layers, one panel per (measure, stage), one curve
  per model (mean over seeds, the seeds' range shaded), the best pixel cue and random maps as
  reference lines;
* :func:`plot_study_maps` - rows = models, columns = images: each model's chosen head at its
  primary layer, the main object outlined; on the map's own values or on its percentile scale
  (:func:`percentile_maps`), the order of the patches that the per-image AUC scores.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import rankdata

from cratelib.eval.attention import upsample_maps
from cratelib.eval.study.verdicts import best_pixel_cue
from cratelib.figures.curves import plot_seed_curves, seed_curves
from cratelib.figures.style import COLORS, contour, finish, styled

__all__ = ["percentile_maps", "plot_study_panels", "plot_study_maps"]


def _baseline_lines(rows: Sequence[dict], measure: str) -> dict[str, float]:
    """The best pixel cue and random maps on ``measure`` (where the baselines have it), as
    reference lines: ``label -> value``."""
    best, value = best_pixel_cue(rows, measure)
    lines = {f"best pixel cue ({best})": value} if best is not None else {}
    random = [r[measure] for r in rows if r["stage"] == "baseline" and r["name"] == "random"
              and np.isfinite(r.get(measure, np.nan))]
    return lines | ({"random maps": random[0]} if random else {})


@styled
def plot_study_panels(rows: Sequence[dict], panels: Sequence[tuple[str, str, str]],
                      references: Mapping[str, float] | None = None,
                      by_measure: Mapping[str, Mapping[str, float]] | None = None, ylabel: str = "", cols: int = 2,
                      title: str = ""):
    """The study's measures over the layers, one panel per ``(measure, stage, panel title)`` of
    ``panels``: every model of ``rows`` (:attr:`cratelib.eval.study.protocol.StudyResult.rows`) as the
    mean over its seeds, the seeds' range shaded and each seed a thin line
    (:func:`cratelib.figures.curves.plot_seed_curves`), in the same colour in every panel; the best
    pixel cue and random maps where the measure has them, each of ``references`` (label -> value,
    e.g. a reference computed outside the protocol) in every panel and each of ``by_measure[m]``
    in the panels of measure ``m`` (e.g. a rule's ceiling), as grey lines. One legend for all
    panels, right of them; the panels share the y axis."""
    models = list(dict.fromkeys(r["name"] for r in rows if r["stage"] != "baseline"))
    colors = {n: COLORS[i % len(COLORS)] for i, n in enumerate(models)}
    cols = min(cols, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(min(3.6 * cols + 1.8, 10.0), 2.7 * nrows), sharey=True,
                             squeeze=False)
    handles = {}
    for ax, (measure, stage, panel_title) in zip(axes.flat, panels):
        plot_seed_curves(seed_curves(rows, measure, "layer", [stage]), "layer", "", ax=ax, colors=colors,
                         references=_baseline_lines(rows, measure) | dict(references or {})
                         | dict((by_measure or {}).get(measure, {})), legend=False,
                         title=panel_title)
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


@styled
def plot_study_maps(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor],
                    truths: Sequence[np.ndarray] | None = None, title: str = "", scale: str = "value"):
    """Row 0: the images (objects outlined); then one row per label of ``maps`` (``(J, h, w)``,
    e.g. a model's chosen head at its primary layer), upsampled to the image size. ``scale``:
    ``"value"`` draws each map on its own values (colour range from its lowest to its highest
    patch), ``"percentile"`` on :func:`percentile_maps`, the patch order the AUC scores."""
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
