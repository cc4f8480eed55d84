"""Figures of MaskCut (book chapter 10; the paper's Alg. 4, Table 1, Fig. 5).

MaskCut and its scores live in :mod:`cratelib.eval`: the normalized cut (:mod:`~cratelib.eval.ncut`),
Algorithm 4 (:func:`~cratelib.eval.maskcut.maskcut`, replayed decision by decision by
:func:`~cratelib.eval.maskcut.explain_cut`), the CRF (:mod:`~cratelib.eval.crf`) and the COCO
scoring of a data set (:func:`~cratelib.eval.maskcut_eval.maskcut_ap`). This module draws them:

* :func:`plot_graph`, :func:`plot_cuts`, :func:`plot_crf`, :func:`plot_detections`,
  :func:`plot_maskcut_detail` - the chapter's figures;
* :func:`table1_rows` - the paper's Table 1 beside the book's numbers;
* :func:`plot_seed_values` - one measure of the emergence study at each model's primary layer:
  every seed as a dot, the mean over seeds as a bar, per model and stage, beside reference lines.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from cratelib.eval.maskcut import CutExplanation, MaskCutResult, upsample_mask
from cratelib.eval.maskcut_eval import METRIC_COLUMNS
from cratelib.eval.ncut import CutGraph
from cratelib.eval.reference import TABLE1_COCO_MASKCUT
from cratelib.eval.stats import SeedBand
from cratelib.figures.style import COLORS, contour, no_ticks, overlay_masks, styled

__all__ = ["plot_graph", "plot_cuts", "plot_crf", "plot_detections", "plot_maskcut_detail", "table1_rows",
           "plot_seed_values"]


def _grid_lines(ax, grid: tuple[int, int], size: tuple[int, int]) -> None:
    for r in range(1, grid[0]):
        ax.axhline(r * size[0] / grid[0] - 0.5, color="white", lw=0.3, alpha=0.5)
    for c in range(1, grid[1]):
        ax.axvline(c * size[1] / grid[1] - 0.5, color="white", lw=0.3, alpha=0.5)


def _overlay(ax, image: np.ndarray, masks: Sequence[np.ndarray], truths: Sequence[np.ndarray] = ()) -> None:
    ax.imshow(image)
    for t in truths:
        contour(ax, t, "white", 0.8)
    overlay_masks(ax, masks, lw=1.5)


@styled
def plot_graph(image: np.ndarray, graph: CutGraph, grid: tuple[int, int], tau: float = 0.15,
               truths: Sequence[np.ndarray] = ()):
    """The first cut's graph: the image on its patch grid, the cosine similarities, the affinity
    ``W`` (thresholded at ``tau``) with patches ordered by the cut vector ``x``, and ``x`` on the
    grid with its bipartition outlined.

    Args:
        image: ``(H, W, 3)`` uint8.
        graph: :func:`cratelib.eval.ncut.cut_graph` of the image's ``(h w, D)`` patch features.
        grid: ``(h, w)``.
        tau: the affinity's threshold the graph was built with (for the title).
        truths: ``(H, W)`` bool true object masks, outlined in white.
    """
    order = np.argsort(graph.x)
    size = image.shape[:2]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.7))
    axes[0].imshow(image)
    _grid_lines(axes[0], grid, size)
    for t in truths:
        contour(axes[0], t, "white")
    axes[0].set_title(f"image, {grid[0]}x{grid[1]} patches")
    im = axes[1].imshow(graph.cos, cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    axes[1].set_title("cosine $C_{ij}$ (row-major patches)")
    axes[2].imshow(graph.affinity[np.ix_(order, order)], cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"$W$ ($C>\\tau={tau}$), sorted by $x$")
    xm = graph.x.reshape(grid)
    lim = np.abs(xm).max()
    im = axes[3].imshow(xm, cmap="coolwarm", vmin=-lim, vmax=lim)
    contour(axes[3], graph.positive.reshape(grid), "black", 1.2)
    fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.03)
    axes[3].set_title(f"cut vector $x$, $\\lambda_2$ = {graph.eigenvalue:.3f}")
    no_ticks(axes)
    fig.tight_layout()
    return fig


@styled
def plot_cuts(image: np.ndarray, result: MaskCutResult, steps: Sequence[CutExplanation],
              truths: Sequence[np.ndarray] = ()):
    """Alg. 4 step by step: one row per cut with the patches still in play, the cut vector ``x``
    (seed marked with a star, the bipartition ``x > mean(x)`` outlined), the side the corner rule
    picks, and the object kept, drawn on the image.

    Args:
        image: ``(H, W, 3)`` uint8.
        result: :func:`cratelib.eval.maskcut.maskcut` output for the image.
        steps: its decisions, one per cut (:func:`cratelib.eval.maskcut.explain_cuts`).
        truths: true object masks ``(H, W)``, outlined in white in the last column.
    """
    n = len(result.masks)
    grid = result.masks.shape[1:]
    size = image.shape[:2]
    fig, axes = plt.subplots(n, 4, figsize=(8.4, 2.15 * n), squeeze=False)
    taken = np.zeros(grid, dtype=bool)
    for i in range(n):
        x, ex = result.eigenvectors[i], steps[i]
        ax = axes[i]
        ax[0].imshow(image.astype(float) / 255 * np.where(upsample_mask(taken, size), 0.2, 1.0)[..., None])
        ax[0].set_ylabel(f"cut {i + 1}")
        ax[0].set_title("in play" if i else "all patches")
        lim = np.abs(x).max()
        ax[1].imshow(x, cmap="coolwarm", vmin=-lim, vmax=lim)
        contour(ax[1], ex.positive, "black", 1.0)
        ax[1].plot(ex.seed[1], ex.seed[0], marker="*", color="yellow", ms=11, mec="black")
        ax[1].set_title(f"$x$, $\\lambda$ = {result.eigenvalues[i]:.3f}")
        ax[2].imshow(ex.side, cmap="Greys_r", vmin=0, vmax=1)
        rule = ("both sides hold corners: none" if ex.rejected else
                "seed side: {} corners, flip".format(ex.corners) if ex.flipped else
                f"seed side, {ex.corners} corner{'s' * (ex.corners != 1)}")
        ax[2].set_title(rule)
        ax[2].plot(ex.seed[1], ex.seed[0], marker="*", color="yellow", ms=11, mec="black")
        shown = result.masks[i]
        _overlay(ax[3], image, [np.zeros(size, bool)] * i + [upsample_mask(shown, size)], truths)
        ax[3].set_title("object kept" if shown.any() else "no object kept")
        taken |= result.masks[i]
    no_ticks(axes)
    fig.tight_layout(pad=0.4)
    return fig


@styled
def plot_crf(image: np.ndarray, coarse: Sequence[np.ndarray], refined: Sequence[np.ndarray | None],
             coarse_ious: Sequence[float], refined_ious: Sequence[float], truths: Sequence[np.ndarray] = ()):
    """Before / after the CRF: the coarse (patch) masks and their refinements (``None`` = dropped as
    implausible), with the IoU of each against its best-matching true object in the titles
    (:func:`cratelib.eval.metrics.best_match_ious`; ``refined_ious`` of the refinements kept)."""
    fig, axes = plt.subplots(1, 2, figsize=(5.6, 2.9))
    _overlay(axes[0], image, list(coarse), truths)
    axes[0].set_title("MaskCut: " + ", ".join(f"{v:.2f}" for v in coarse_ious) + " IoU")
    after = [r if r is not None else np.zeros(image.shape[:2], bool) for r in refined]
    _overlay(axes[1], image, after, truths)
    kept = iter(refined_ious)
    axes[1].set_title("after CRF: " + ", ".join("dropped" if r is None else f"{next(kept):.2f}" for r in refined))
    no_ticks(axes)
    fig.tight_layout()
    return fig


@styled
def plot_detections(images: Sequence[np.ndarray], masks: Mapping[str, Sequence[Sequence[np.ndarray]]],
                    truths: Sequence[Sequence[np.ndarray]] = ()):
    """A grid: rows = methods (``masks[name][j]`` = image ``j``'s masks at image size), columns =
    images, with the true objects outlined in white (the paper's Fig. 5 layout)."""
    names = list(masks)
    J = len(images)
    fig, axes = plt.subplots(len(names), J, figsize=(1.35 * J, 1.45 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for j, image in enumerate(images):
            _overlay(axes[r, j], image, masks[name][j], truths[j] if truths else ())
        axes[r, 0].set_ylabel(name, fontsize=8)
    no_ticks(axes)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.3)
    return fig


@styled
def plot_maskcut_detail(image: np.ndarray, result: MaskCutResult, first: CutExplanation, ious: Sequence[float],
                        truths: Sequence[np.ndarray] = (), title: str = ""):
    """The widget's figure: the first cut vector with its bipartition (``first``, the first cut's
    :class:`cratelib.eval.maskcut.CutExplanation`), and the objects MaskCut keeps, with ``ious``,
    the IoU of each kept object against its best-matching true object
    (:func:`cratelib.eval.metrics.best_match_ious`)."""
    size = image.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(5.6, 2.9))
    x = result.eigenvectors[0]
    lim = np.abs(x).max()
    axes[0].imshow(x, cmap="coolwarm", vmin=-lim, vmax=lim)
    contour(axes[0], first.positive, "black")
    axes[0].set_title("first cut vector $x$")
    _overlay(axes[1], image, [upsample_mask(m, size) for m in result.masks], truths)
    axes[1].set_title(f"{len(ious)} object(s); IoU " + ", ".join(f"{v:.2f}" for v in ious))
    no_ticks(axes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def table1_rows(ours: Mapping[str, Mapping[str, float]], source: str = "this book",
                reference: Mapping[str, Mapping[str, Sequence[float]]] = TABLE1_COCO_MASKCUT,
                paper_models: Sequence[str] | None = None) -> list[dict]:
    """Rows for :func:`cratelib.figures.tables.format_table`: the paper's Table 1, then ours.

    Args:
        ours: ``{model: {"det AP50": ..., ...}}`` in percent
            (:attr:`cratelib.eval.maskcut_eval.APResult.ap` ``["no_crf"]``).
        source: the label of our rows' data column.
        reference: the paper's ``{model: {"det": (AP50, AP75, AP), "seg": (...)}}``.
        paper_models: which of the paper's models to list (default: all).
    """
    rows = []
    for name in paper_models or list(reference):
        det, seg = reference[name]["det"], reference[name]["seg"]
        rows.append({"model": name, "data": "paper: COCO val2017, 480 px",
                     **dict(zip(METRIC_COLUMNS, [*map(float, det), *map(float, seg)]))})
    for name, metrics in ours.items():
        missing = set(METRIC_COLUMNS) - set(metrics)
        if missing:
            raise KeyError(f"{name}: missing metrics {sorted(missing)}")
        rows.append({"model": name, "data": source, **{c: float(metrics[c]) for c in METRIC_COLUMNS}})
    return rows


@styled
def plot_seed_values(bands: Mapping[str, SeedBand], stages: Sequence[str] = ("init", "equal_acc", "final"),
                     references: Mapping[str, float] | None = None, ylabel: str = "MaskCut det AP50 (%)",
                     title: str = ""):
    """A measure at each model's primary layer: one group of bars per model, one bar per stage
    (the mean over seeds), every seed's value as a dot on its bar.

    Args:
        bands: model -> :class:`cratelib.eval.stats.SeedBand` over the stages
            (``seed_bands(seed_curves(rows, measure, "stage", stages, primary_only=True))``).
        stages: the stages to draw, in this order within each group (a stage a model lacks is
            left empty).
        references: ``{label: value}`` horizontal lines (e.g. MaskCut on raw pixels).
        ylabel, title: the axis label and the title.
    """
    fig, ax = plt.subplots(figsize=(1.4 * max(len(bands), 1) + 2.6, 3.2))
    width = 0.8 / len(stages)
    for s, stage in enumerate(stages):
        color = COLORS[s % len(COLORS)]
        for m, band in enumerate(bands.values()):
            if stage not in band.x:
                continue
            i = band.x.index(stage)
            values = band.values[i][np.isfinite(band.values[i])]
            x = m - 0.4 + width * (s + 0.5)
            ax.bar(x, band.mean[i], width * 0.9, color=color, alpha=0.45, label=stage)
            ax.plot(np.full(len(values), x), values, "o", ms=4, color=color, mec="black", mew=0.5)
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls=("--", ":", "-.")[i % 3], color="grey", lw=1, label=label)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    order = [label for label in (*stages, *(references or {})) if label in unique]
    ax.legend([unique[label] for label in order], order, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    ax.set_xticks(range(len(bands)), list(bands))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
