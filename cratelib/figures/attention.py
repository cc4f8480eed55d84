"""Figures of CLS attention maps (book chapters 7, 11 and 12; the paper's Figs. 1, 7, 8, 11-14).

The maps come from :func:`cratelib.eval.extract.layer_maps` (eqs. 10-11) and DINO's mass sets
from :func:`cratelib.eval.threshold.mass_mask`; the measures drawn beside them are in
:mod:`cratelib.eval.localisation`. Heads and layers are numbered from 1.

* :func:`plot_layers_heads` - one image, a grid of layers x heads;
* :func:`plot_images_heads` - several images, one layer, every head;
* :func:`plot_map_detail` - one image, one map, its DINO mass set (the widget's figure);
* :func:`plot_dino_display` - several images, one map each, shown DINO's way (Fig. 1).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.metrics import iou
from cratelib.eval.threshold import mass_mask
from cratelib.figures.style import contour, finish, styled

__all__ = ["plot_layers_heads", "plot_images_heads", "plot_map_detail", "plot_dino_display"]


@styled
def plot_layers_heads(image: np.ndarray, maps: torch.Tensor, mass: float = 0.6,
                      truth: np.ndarray | None = None, title: str = ""):
    """One image: rows = layers, columns = heads; each map with its DINO mass set as a contour.

    Args:
        image: ``(H, W, 3)`` uint8.
        maps: ``(L, K, h, w)`` maps of this image.
        mass: attention mass of the outlined set (DINO: 0.6).
        truth: optional ``(H, W)`` bool object mask, outlined on the image.
    """
    L, K = maps.shape[:2]
    size = image.shape[:2]
    up = upsample_maps(maps, size).numpy()
    sets = upsample_maps(mass_mask(maps, mass), size).numpy()
    fig, axes = plt.subplots(L, K + 1, figsize=(1.25 * (K + 1), 1.25 * L), squeeze=False)
    for l in range(L):
        axes[l, 0].imshow(image)
        if truth is not None:
            contour(axes[l, 0], truth, "white")
        axes[l, 0].set_ylabel(f"layer {l + 1}", fontsize=8)
        for k in range(K):
            ax = axes[l, k + 1]
            ax.imshow(up[l, k], cmap="inferno")
            contour(ax, sets[l, k], "cyan", 0.8)
            if l == 0:
                ax.set_title(f"head {k + 1}", fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)


@styled
def plot_images_heads(images: Sequence[np.ndarray], maps: torch.Tensor, mass: float = 0.6,
                      truths: Sequence[np.ndarray] | None = None, row_labels: Sequence[str] | None = None,
                      title: str = ""):
    """Rows = images, columns = the image and each head's map of one layer (Figs. 1, 14).

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        maps: ``(J, K, h, w)``.
        mass: DINO mass of the outlined sets.
        truths: optional J ``(H, W)`` bool object masks, outlined on the images.
        row_labels: optional label per row (e.g. the class).
    """
    J, K = maps.shape[:2]
    fig, axes = plt.subplots(J, K + 1, figsize=(1.2 * (K + 1), 1.2 * J), squeeze=False)
    sets = mass_mask(maps, mass)
    for j, image in enumerate(images):
        size = image.shape[:2]
        up = upsample_maps(maps[j], size).numpy()
        up_sets = upsample_maps(sets[j], size).numpy()
        axes[j, 0].imshow(image)
        if truths is not None:
            contour(axes[j, 0], truths[j], "white")
        if row_labels is not None:
            axes[j, 0].set_ylabel(row_labels[j], fontsize=8)
        for k in range(K):
            axes[j, k + 1].imshow(up[k], cmap="inferno")
            contour(axes[j, k + 1], up_sets[k], "cyan", 0.8)
            if j == 0:
                axes[j, k + 1].set_title(f"head {k + 1}", fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)


@styled
def plot_map_detail(image: np.ndarray, amap: torch.Tensor, mass: float = 0.6,
                    truth: np.ndarray | None = None, title: str = ""):
    """Three panels: the image (true mask outlined), one ``(h, w)`` map, and DINO's display of it:
    the image where the smallest patch set holding ``mass`` of the attention is kept and the rest
    dimmed. The IoU of that set with ``truth`` is in the last title."""
    size = image.shape[:2]
    up = upsample_maps(amap, size).numpy()
    keep = upsample_maps(mass_mask(amap, mass), size).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.6))
    axes[0].imshow(image)
    if truth is not None:
        contour(axes[0], truth, "white")
    axes[0].set_title("image" + (", true mask" if truth is not None else ""))
    im = axes[1].imshow(up, cmap="inferno")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    axes[1].set_title("CLS attention")
    shown = image.astype(float) / 255 * np.where(keep, 1.0, 0.25)[..., None]
    axes[2].imshow(shown)
    label = f"{mass:.0%} of the mass"
    if truth is not None:
        label += f", IoU {iou(keep, truth):.2f}"
    axes[2].set_title(label)
    return finish(fig, axes, title)


@styled
def plot_dino_display(images: Sequence[np.ndarray], maps: torch.Tensor, mass: float = 0.6,
                      truths: Sequence[np.ndarray] | None = None, title: str = ""):
    """Fig. 1's layout: per image, the image (true mask outlined) above DINO's display of one map
    (the patches holding ``mass`` of the attention kept, the rest dimmed; IoU in the title).

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        maps: ``(J, h, w)``, one map per image.
        truths: optional J ``(H, W)`` bool object masks.
    """
    J = len(images)
    fig, axes = plt.subplots(2, J, figsize=(1.25 * J, 2.75), squeeze=False)
    sets = mass_mask(maps, mass)
    for j, image in enumerate(images):
        keep = upsample_maps(sets[j], image.shape[:2]).numpy()
        axes[0, j].imshow(image)
        axes[1, j].imshow(image.astype(float) / 255 * np.where(keep, 1.0, 0.25)[..., None])
        if truths is not None:
            contour(axes[0, j], truths[j], "white")
            axes[1, j].set_xlabel(f"IoU {iou(keep, truths[j]):.2f}", fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.4)
