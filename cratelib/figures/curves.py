"""Curves and heat maps of numbers over layers, epochs or noise levels, in the book's style.

* :func:`plot_series` - curves ``{label: {x: y}}`` on one axis;
* :func:`plot_layerwise` - curves over the layers (0-based keys, drawn 1-based), legend beside;
* :func:`plot_layer_curves` - one panel per measure, one curve per model over the layers, with
  reference lines;
* :func:`plot_layer_epoch` - a heat map ``epoch x layer`` with every cell printed;
* :func:`plot_seed_curves` - one curve per model over the layers or the epochs, from its
  :class:`cratelib.eval.stats.SeedBand`: the mean over seeds, the seeds' range shaded, each seed a
  thin line, reference lines for the baselines (book chapter 12);
* :func:`epoch_axis` - an epoch axis that gives the early snapshots (0, 1, 2, 5, ...) room.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from cratelib.eval.stats import SeedBand
from cratelib.figures.style import COLORS, styled

__all__ = ["plot_series", "plot_layerwise", "plot_layer_curves", "plot_layer_epoch", "plot_seed_curves", "epoch_axis"]


@styled
def plot_series(series: Mapping[str, Mapping[float, float]], xlabel: str, ylabel: str, ax=None,
                title: str = "", styles: Mapping[str, str] | None = None,
                colors: Mapping[str, str] | None = None, legend_beside: bool = False):
    """Curves ``{label: {x: y}}`` on one axis (layers, epochs, noise levels); returns the figure.

    Args:
        series: one mapping per curve; points are drawn in increasing x.
        ax: draw into this axis (default: a new figure).
        styles: optional matplotlib line style per label (e.g. ``"--"`` for baselines).
        colors: optional colour per label (default: :data:`COLORS` in order).
        legend_beside: put the legend to the right of the axis (for many curves).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.3) if legend_beside else (4.6, 3.0))
    for i, (label, values) in enumerate(series.items()):
        xs = sorted(values)
        ax.plot(xs, [values[x] for x in xs], (styles or {}).get(label, "-"), marker="o", ms=3.5,
                color=(colors or {}).get(label, COLORS[i % len(COLORS)]), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend_beside:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        ax.legend()
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_layerwise(series: Mapping[str, Mapping[int, float]], ylabel: str, title: str = "",
                   styles: Mapping[str, str] | None = None):
    """Curves over layers (Fig. 6): ``{label: {layer: value}}`` with 0-based layers, drawn
    1-based, legend beside the axis."""
    one_based = {label: {l + 1: v for l, v in values.items()} for label, values in series.items()}
    fig = plot_series(one_based, "layer", ylabel, title=title, styles=styles, legend_beside=True)
    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


@styled
def plot_layer_curves(panels: Mapping[str, Mapping[str, Sequence[float]]],
                      colors: Mapping[str, str] | None = None,
                      references: Mapping[str, Mapping[str, float]] | None = None):
    """One panel per measure, one curve per model over the layers (1-based).

    Args:
        panels: panel title -> (curve label -> values per layer).
        colors: curve label -> colour (default: matplotlib's cycle).
        references: panel title -> (label -> constant), drawn as dotted horizontal lines.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n + 1.6, 2.9), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for label, values in curves.items():
            x = np.arange(1, len(values) + 1)
            style = dict(color=(colors or {}).get(label), marker="o", ms=3)
            if label.endswith("initialisation"):
                style.update(ls="--", marker=None, color=style["color"] or "grey")
            ax.plot(x, values, label=label, **style)
        for label, value in ((references or {}).get(title) or {}).items():
            ax.axhline(value, ls=":", color="black", lw=1)
            ax.annotate(label, (1, value), xycoords=("axes fraction", "data"), textcoords="offset points",
                        xytext=(-3, 2), ha="right", va="bottom", fontsize=7)
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / (3.3 * n + 1.6), 1))
    return fig


@styled
def plot_layer_epoch(values: np.ndarray, epochs: Sequence[int], label: str, title: str = ""):
    """Heat map ``epoch x layer`` of a segmentation measure (Figs. 6 and 10 in one picture),
    each cell printed; layers are shown 1-based.

    Args:
        values: ``(E, L)``.
        epochs: the E snapshot epochs (rows).
    """
    values = np.asarray(values, float)
    E, L = values.shape
    fig, ax = plt.subplots(figsize=(0.6 * L + 2.2, 0.32 * E + 1.2))
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    mid = (np.nanmin(values) + np.nanmax(values)) / 2
    for (e, l), v in np.ndenumerate(values):
        ax.text(l, e, f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}", ha="center", va="center", fontsize=7,
                color="white" if v < mid else "black")
    ax.set_xticks(range(L), [str(l + 1) for l in range(L)])
    ax.set_yticks(range(E), [str(e) for e in epochs])
    ax.set_xlabel("layer")
    ax.set_ylabel("epoch")
    fig.colorbar(im, ax=ax, label=label)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


@styled
def plot_seed_curves(bands: Mapping[str, SeedBand], xlabel: str, ylabel: str,
                     ax=None, references: Mapping[str, float] | None = None,
                     colors: Mapping[str, str] | None = None, styles: Mapping[str, str] | None = None,
                     title: str = "", legend: bool = True):
    """One curve per model: the mean over its seeds at each x, the range of the seeds shaded where
    there are two or more, and each seed as a thin line; ``references`` (label -> value, e.g. the
    best pixel cue) as grey horizontal lines. Returns the figure.

    Args:
        bands: model -> :class:`cratelib.eval.stats.SeedBand` (:func:`cratelib.eval.stats.seed_bands`).
        ax: draw into this axis (default: a new figure).
        colors: optional colour per model (default: :data:`COLORS` in order).
        styles: optional line style per model (e.g. ``"--"`` for the models at initialisation).
        legend: draw the legend (to the right of the axis).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.8, 3.2))
    for i, (name, band) in enumerate(bands.items()):
        color = (colors or {}).get(name, COLORS[i % len(COLORS)])
        n = band.seeds
        ax.plot(band.x, band.mean, (styles or {}).get(name, "-"), marker="o", ms=3.5, color=color,
                label=f"{name} ({n} seed{'s' * (n > 1)})")
        if n > 1:
            ax.fill_between(band.x, band.low, band.high, color=color, alpha=0.18, lw=0)
            for col in band.values.T:
                ax.plot(band.x, col, "-", lw=0.6, alpha=0.6, color=color)
    for j, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls=("--", ":", "-.")[j % 3], color="grey", lw=1, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7.5)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def epoch_axis(ax, epochs: Sequence[int]) -> None:
    """Draw ``ax``'s horizontal axis on a symmetric-log scale (linear up to 1, logarithmic above)
    with a tick at each of ``epochs`` (e.g. a run's snapshot epochs and its last one): epochs 0,
    1, 2 and 5 get as much room as 20 and 50, where most of a run's change happens."""
    ticks = sorted(set(epochs))
    if not ticks or ticks[0] < 0:
        raise ValueError(f"epochs must be a non-empty list of non-negative integers, got {list(epochs)}")
    ax.set_xscale("symlog", linthresh=1, linscale=0.4)
    ax.set_xlim(-0.15, ticks[-1] * 1.2)
    ax.set_xticks(ticks, [str(e) for e in ticks])
