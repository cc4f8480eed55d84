"""Figures and tables of the training chapter (book chapter 6).

* the embedded data set: :func:`one_per_class`, :func:`plot_examples` (images and their exact
  masks); the linear probes that show why the classes need localisation are
  :mod:`cratelib.eval.classify`;
* the runs: :func:`plot_history` (loss and accuracy per epoch, from a live run or a shipped
  checkpoint's record).

Images are ``(n, H, W, 3)`` uint8 arrays of a :class:`cratelib.data.SyntheticData`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from cratelib.data import SyntheticData
from cratelib.figures.style import COLORS, finish, styled

__all__ = ["one_per_class", "plot_examples", "plot_history"]


def one_per_class(data: SyntheticData) -> list[int]:
    """Index of the first image of each class, in class order (classes absent are skipped)."""
    return [int(np.flatnonzero(data.labels == c)[0]) for c in range(data.config.num_classes)
            if (data.labels == c).any()]


@styled
def plot_examples(data: SyntheticData, indices: Sequence[int] | None = None, title: str = ""):
    """Two rows per set of images: the images, then their exact masks (main object in colour,
    secondary objects in grey, background black), each titled with the class of the main object.

    Args:
        data: a generated or loaded data set.
        indices: which images (default: one per class).
    """
    indices = list(one_per_class(data) if indices is None else indices)
    n = len(indices)
    fig, axes = plt.subplots(2, n, figsize=(1.05 * n, 2.45), squeeze=False)
    for col, i in enumerate(indices):
        inst = data.instance_map[i]
        mask_rgb = np.zeros((*inst.shape, 3))
        mask_rgb[inst > 1] = 0.45
        mask_rgb[inst == 1] = (1.0, 0.8, 0.2)
        axes[0, col].imshow(data.images[i], interpolation="nearest")
        axes[0, col].set_title(data.class_names[int(data.labels[i])], fontsize=8)
        axes[1, col].imshow(mask_rgb, interpolation="nearest")
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("exact mask", fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@styled
def plot_history(histories: Mapping[str, Sequence[dict]], chance: float | None = None,
                 marks: Mapping[str, Sequence[int]] | None = None, title: str = ""):
    """Loss and accuracy per epoch of one or more runs.

    Args:
        histories: ``label -> records`` with keys ``epoch``, ``train_loss``, ``train_acc`` and,
            if the run validated, ``val_loss``, ``val_acc`` (:func:`cratelib.train.train`'s
            history, or a shipped record's ``history``).
        chance: accuracy of guessing (drawn as a dotted line).
        marks: ``label -> epochs`` to circle on that run's validation accuracy (snapshots).
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for i, (label, hist) in enumerate(histories.items()):
        c = COLORS[i % len(COLORS)]
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r["train_loss"] for r in hist], "--", color=c, label=f"{label}, train")
        axes[1].plot(ep, [r["train_acc"] for r in hist], "--", color=c, label=f"{label}, train")
        if all("val_acc" in r for r in hist):
            axes[0].plot(ep, [r["val_loss"] for r in hist], "-", color=c, label=f"{label}, validation")
            axes[1].plot(ep, [r["val_acc"] for r in hist], "-", color=c, label=f"{label}, validation")
            wanted = set((marks or {}).get(label, []))
            hit = [r for r in hist if r["epoch"] in wanted]
            if hit:
                axes[1].plot([r["epoch"] for r in hit], [r["val_acc"] for r in hit], "o", mfc="none",
                             color=c, ms=7, label=f"{label}, snapshots")
    if chance is not None:
        axes[1].axhline(chance, color="grey", ls=":", lw=1, label="chance")
    axes[0].set_ylabel("cross-entropy")
    axes[1].set_ylabel("top-1 accuracy")
    axes[1].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
