"""Part 3 figures: attention cost against the number of tokens, and TSSA's membership maps.

Drawing only: :func:`plot_token_scaling` draws the record ``bench/token_scaling.py --out`` writes,
:func:`plot_membership_maps` the ``(K, h, w)`` maps of :meth:`cratelib.trace.Trace.membership_maps`.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from cratelib.figures.style import COLORS, no_ticks, styled

__all__ = ["plot_token_scaling", "plot_membership_maps"]

_ORDER = ("tssa", "mssa_sdpa", "mssa_explicit")  # curves in this order (json files sort their keys)
_PANELS = (("time_s", "time of a forward + backward step (s)"),
           ("saved_mib", "activation memory kept for backward (MiB)"))


@styled
def plot_token_scaling(record: dict, title: str = ""):
    """Two log-log panels, step time and saved activation memory against N, one curve per
    operator, each labelled with its fitted exponent; a dotted line where TSSA overtakes.

    Args:
        record: the JSON record of ``bench/token_scaling.py`` (keys ``operators``, ``results``,
            ``exponents``, ``tssa_overtakes``, ``fit_from``).
        title: figure title.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for ax, (key, label) in zip(axes, _PANELS):
        ops = sorted(record["operators"], key=lambda op: _ORDER.index(op) if op in _ORDER else len(_ORDER))
        for color, op in zip(COLORS, ops):
            name, rows = record["operators"][op], record["results"][op]
            a = record["exponents"][op][key]
            fit = f", $N^{{{a:.2f}}}$" if a is not None else ""
            ax.loglog([r["tokens"] for r in rows], [r[key] for r in rows], "o-", color=color, ms=3,
                      label=f"{name}{fit}")
        where = record["tssa_overtakes"].get("mssa_sdpa", {}).get(key)
        if where:
            ax.axvline(where, color="0.5", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tokens N")
        ax.set_ylabel(label)
        ax.legend(loc="upper left", frameon=False)
        ax.grid(alpha=0.3, which="both", lw=0.5)
    fig.suptitle(title or f"{record['dim']} wide, {record['heads']} heads, batch {record['batch']}, "
                          f"{record['device']}; exponents fitted over N ≥ {record['fit_from']}")
    fig.tight_layout()
    return fig


@styled
def plot_membership_maps(maps: np.ndarray, image: np.ndarray | None = None, heads: Sequence[int] | None = None,
                         title: str = ""):
    """One panel per head: the membership of every patch, on a shared 0..1 colour scale.

    Args:
        maps: ``(K, h, w)`` memberships of one image (they sum to 1 over K at every patch).
        image: optional ``(H, W, 3)`` image in [0, 1], drawn first.
        heads: which heads to draw (default all), numbered from 0 in ``maps``, titled from 1.
        title: figure title.
    """
    maps = np.asarray(maps)
    heads = list(range(maps.shape[0])) if heads is None else list(heads)
    panels = len(heads) + (image is not None)
    fig, axes = plt.subplots(1, panels, figsize=(1.6 * panels, 1.9), squeeze=False)
    axes = axes[0]
    if image is not None:
        axes[0].imshow(np.clip(image, 0, 1))
        axes[0].set_title("image")
    for ax, k in zip(axes[panels - len(heads):], heads):
        im = ax.imshow(maps[k], vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"head {k + 1}")
    fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.01)  # no tight_layout: it would squeeze the bar
    no_ticks(axes)
    if title:
        fig.suptitle(title)
    return fig
