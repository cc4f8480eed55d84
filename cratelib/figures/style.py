"""What every figure module of the book shares: the figure style, a decorator that applies it,
mask outlines and overlays.

* :data:`STYLE` / :data:`COLORS` and :func:`styled` - figures sized for the book's text column,
  drawn without changing the caller's matplotlib settings;
* :func:`contour`, :func:`overlay_masks` - the outline of a boolean mask on an axis; masks as
  coloured overlays with their boxes;
* :func:`no_ticks`, :func:`finish` - image panels without ticks; the title and layout of a figure.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence, TypeVar

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from cratelib.eval.maskcut import mask_to_box

__all__ = ["STYLE", "COLORS", "styled", "contour", "overlay_masks", "no_ticks", "finish", "shared_legend"]

# Figures are sized for the book's text column (about 9-10 inches wide at 110 dpi).
STYLE = {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7.5, "figure.dpi": 110}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

F = TypeVar("F", bound=Callable)


def styled(plot: F) -> F:
    """Draw ``plot`` under :data:`STYLE` without changing the caller's matplotlib settings."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def contour(ax, mask: np.ndarray, color: str, lw: float = 1.0) -> None:
    """Outline the ``(H, W)`` boolean ``mask`` on ``ax`` (nothing if it is empty or full)."""
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=color, linewidths=lw)


def no_ticks(axes) -> None:
    """Remove the ticks of every axis in ``axes`` (one axis, a list or an array of them)."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def finish(fig, axes, title: str = "", **tight_layout):
    """The common end of a panel figure: no ticks on ``axes``, ``title`` as the figure's title
    (if any, above the panels' own titles), then ``fig.tight_layout(**tight_layout)``. Returns
    ``fig``."""
    no_ticks(axes)
    if title:
        fig.suptitle(title)
        tight_layout.setdefault("rect", (0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    fig.tight_layout(**tight_layout)
    return fig


def overlay_masks(ax, masks: Sequence[np.ndarray], lw: float = 2.0) -> None:
    """Draw each non-empty bool mask (image resolution) as a translucent colour with its box;
    mask ``i`` gets colour ``i`` of tab10 (empty masks keep their colour slot)."""
    colours = plt.get_cmap("tab10")
    for i, mask in enumerate(masks):
        if not mask.any():
            continue
        c = colours(i % 10)
        overlay = np.zeros((*mask.shape, 4))
        overlay[mask] = (*c[:3], 0.45)
        ax.imshow(overlay)
        x, y, w, h = mask_to_box(mask)
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=c, linewidth=lw))


def shared_legend(fig, axes, width: float = 0.17) -> None:
    """One legend for all panels of ``fig``, right of them, each label once (the first handle drawn
    with it); the panels are laid out in the remaining ``1 - width`` of the figure."""
    seen = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    fig.legend(list(seen.values()), list(seen), loc="center right", fontsize=7.5, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - width, 1))
