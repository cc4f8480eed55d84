"""Figures and tables of transfer learning (book chapter 13, the paper's Table 3).

The runs are :mod:`cratelib.train.transfer` (the fine-tuning config and its command line), the
frozen-feature probes :mod:`cratelib.eval.classify`. This module draws the results:

* :data:`REGIMES` - the ways of using a model the chapter compares, in plotting order;
* :func:`plot_transfer` - test accuracy per model and regime;
* :func:`table3_rows` - the paper's Table 3 with the book's rows after it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from cratelib.eval.reference import TABLE3_PARAMS_M, TABLE3_TRANSFER
from cratelib.figures.style import COLORS, styled

__all__ = ["REGIMES", "plot_transfer", "table3_rows"]

# The regimes of the chapter, in plotting order: (key, label).
REGIMES: list[tuple[str, str]] = [
    ("as_is", "shipped model as is"),
    ("probe", "linear probe (frozen)"),
    ("finetune", "fine-tuned (all weights)"),
    ("scratch", "trained from scratch"),
]


@styled
def plot_transfer(results: Mapping[str, Mapping[str, float]], chance: float | None = None,
                  title: str = ""):
    """Grouped bars: test accuracy of each model (group) under each regime (bar).

    Args:
        results: ``model label -> {regime key -> accuracy in [0, 1]}``, keys from :data:`REGIMES`
            (missing regimes are left out).
        chance: accuracy of guessing, drawn as a dotted line.
    """
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    models = list(results)
    regimes = [(k, label) for k, label in REGIMES if any(k in r for r in results.values())]
    width = 0.8 / max(1, len(regimes))
    for i, (key, label) in enumerate(regimes):
        xs = [m + (i - (len(regimes) - 1) / 2) * width for m in range(len(models))]
        vals = [results[name].get(key, np.nan) for name in models]
        bars = ax.bar(xs, vals, width, color=COLORS[i % len(COLORS)], label=label)
        for bar, v in zip(bars, vals):
            if np.isfinite(v):
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{100 * v:.0f}",
                        ha="center", va="bottom", fontsize=7)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.08)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def table3_rows(ours: Mapping[str, Mapping[str, str]] | None = None,
                datasets: Sequence[str] | None = None) -> list[dict]:
    """Rows of the paper's Table 3 (top-1 %, parameters in millions), with the book's rows after.

    Args:
        ours: extra rows, ``model label -> {column -> text}``; columns not given are left blank.
        datasets: columns to keep (default: all five of Table 3, in the paper's order).
    """
    datasets = list(datasets or next(iter(TABLE3_TRANSFER.values())))
    rows = []
    for model, accs in TABLE3_TRANSFER.items():
        rows.append({"model": model, "parameters (M)": f"{TABLE3_PARAMS_M[model]:.2f}",
                     **{d: f"{accs[d]:.1f}" for d in datasets}})
    for model, cols in (ours or {}).items():
        rows.append({"model": model, "parameters (M)": cols.get("parameters (M)", ""),
                     **{d: cols.get(d, "") for d in datasets},
                     **{k: v for k, v in cols.items() if k not in datasets and k != "parameters (M)"}})
    columns = ["model", "parameters (M)", *datasets]
    extra = [k for r in rows for k in r if k not in columns]
    for k in dict.fromkeys(extra):
        columns.append(k)
    return [{c: r.get(c, "") for c in columns} for r in rows]


