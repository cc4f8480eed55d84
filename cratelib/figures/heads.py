"""Figures of what each attention head looks at (book chapter 12; the paper's Figs. 7, 11-12).

The measures are :func:`cratelib.eval.localisation.head_measures` (per image and head: attention
on the object, its outline and interior, the IoU of its mass set, where on the object it looks),
summarised by :func:`~cratelib.eval.localisation.kind_shares`,
:func:`~cratelib.eval.localisation.class_head_means` and :func:`cratelib.eval.stats.mean_std`.
Heads are numbered from 1.

* :func:`plot_head_measures` - stacked bars: where each head's attention goes;
* :func:`plot_class_heads` - heat maps class x head of a per-class mean;
* :func:`plot_head_auc` - every head's AUC at one layer (the study's ``Scores["auc_half"]``), mean
  and spread over the images, the protocol's chosen head marked.
"""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from cratelib.eval.localisation import KINDS
from cratelib.figures.style import COLORS, styled

__all__ = ["plot_head_measures", "plot_class_heads", "plot_head_auc"]


@styled
def plot_head_measures(shares: Mapping[str, np.ndarray], image_share: Mapping[str, float]):
    """Stacked bars per head: the mean share of its attention on background, outline and interior
    patches, one group per model, with each kind's share of the image as a reference bar.

    Args:
        shares: ``model ->`` ``(K, 3)`` :func:`cratelib.eval.localisation.kind_shares`.
        image_share: ``kind -> `` the kind's mean share of the patches (what a uniform map gives).
    """
    labels, stacks = ["uniform\nmap"], [[image_share[k] for k in KINDS]]
    for model, m in shares.items():
        for k in range(m.shape[0]):
            labels.append(f"{textwrap.fill(model, 12, break_long_words=False)}\nhead {k + 1}")
            stacks.append(list(m[k]))
    stacks = np.asarray(stacks)
    fig, ax = plt.subplots(figsize=(0.7 * len(labels) + 1.6, 3.2))
    bottom = np.zeros(len(labels))
    colours = {"background": "#bbbbbb", "outline": COLORS[1], "interior": COLORS[0]}
    for i, kind in enumerate(KINDS):
        ax.bar(range(len(labels)), stacks[:, i], bottom=bottom, color=colours[kind], label=kind, width=0.75)
        bottom += stacks[:, i]
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("share of the attention")
    ax.set_ylim(0, 1)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


@styled
def plot_class_heads(matrices: Mapping[str, np.ndarray], class_names: Sequence[str], label: str):
    """Heat maps ``class x head`` of a per-class mean (:func:`cratelib.eval.localisation.class_head_means`), one per model,
    on a shared colour scale, each cell printed."""
    values = np.concatenate([m.ravel() for m in matrices.values()])
    vmin, vmax = np.nanmin(values), np.nanmax(values)
    fig, axes = plt.subplots(1, len(matrices), figsize=(1.1 + 0.75 * sum(m.shape[1] for m in matrices.values())
                                                         + 1.2 * len(matrices), 3.4), squeeze=False)
    for ax, (model, m) in zip(axes[0], matrices.items()):
        im = ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for (c, k), v in np.ndenumerate(m):
            ax.text(k, c, f"{v:.2f}", ha="center", va="center", fontsize=6.5,
                    color="white" if v < (vmin + vmax) / 2 else "black")
        ax.set_xticks(range(m.shape[1]), [str(k + 1) for k in range(m.shape[1])])
        ax.set_xlabel("head")
        ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
        ax.set_title(model)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.04, pad=0.02, label=label)
    return fig


@styled
def plot_head_auc(per_head: Mapping[str, tuple[np.ndarray, np.ndarray]], chosen: Mapping[str, int] | None = None,
                  references: Mapping[str, float] | None = None, ylabel: str = "AUC against the main object",
                  title: str = ""):
    """Each head's AUC at one layer, one group of points per label (e.g. a model and seed): the
    mean over the images with a bar of one standard deviation, the chosen head (numbered from 0
    in ``chosen``) drawn as a filled star, ``references`` as grey horizontal lines.

    Args:
        per_head: label -> ``(mean (K,), std (K,))`` over the images
            (:func:`cratelib.eval.stats.mean_std` of the ``(J, K)`` per-image values).
        chosen: label -> the head the protocol chose (on the selection set).
        references: label -> value (the best pixel cue, random maps).
    """
    labels = list(per_head)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * sum(len(m) for m, _ in per_head.values()) + 2.6), 3.2))
    ticks, names = [], []
    x0 = 0.0
    for i, label in enumerate(labels):
        mean, std = per_head[label]
        K = len(mean)
        xs = x0 + np.arange(K)
        color = COLORS[i % len(COLORS)]
        ax.errorbar(xs, mean, yerr=std, fmt="o", ms=4, color=color, capsize=2, lw=0.8)
        if chosen is not None and label in chosen:
            k = int(chosen[label])
            ax.plot(xs[k], mean[k], "*", ms=12, color=color, markeredgecolor="black", markeredgewidth=0.6)
        ticks += list(xs)
        names += [f"{k + 1}" for k in range(K)]
        ax.text(xs.mean(), 1.0, textwrap.fill(label, 14, break_long_words=False), transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7.5)
        x0 += K + 1
    for j, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls=("--", ":", "-.")[j % 3], color="grey", lw=1, label=label)
    ax.set_xticks(ticks, names, fontsize=7)
    ax.set_xlabel("head (star: the head chosen on the selection set)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if references:
        ax.legend(loc="lower right", fontsize=7)
    if title:
        ax.set_title(title, pad=26)
    fig.tight_layout()
    return fig
