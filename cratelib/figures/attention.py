"""Figures of CLS attention maps (book chapters 7, 11 and 12; the paper's Figs. 1, 7, 8, 11-14),
of several models side by side (the emergence study, chapters 7 and 8).

The maps come from :func:`cratelib.eval.extract.layer_maps` (eqs. 10-11) and DINO's mass sets
from :func:`cratelib.eval.threshold.mass_mask`; the measures drawn beside them are in
:mod:`cratelib.eval.localisation`. Heads and layers are numbered from 1.

* :func:`plot_layers_heads` - one image, a grid of layers x heads;
* :func:`plot_images_heads` - several images, one layer, every head;
* :func:`plot_map_detail` - one image, one map, its DINO mass set (the widget's figure);
* :func:`plot_dino_display` - several images, one map each, shown DINO's way (Fig. 1);
* :func:`plot_layers_models` - several models side by side: per image and model, one map per layer;
* :func:`plot_heads_models` - several models side by side: per image, every head of one layer each;
* :func:`plot_heads_per_model` - several models one below the other: per image and model, every
  head of one layer (models with many heads, e.g. released ones on photographs).

The study's measures over the layers are drawn by :func:`cratelib.figures.emergence.plot_study_panels`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.metrics import iou
from cratelib.eval.threshold import mass_mask
from cratelib.figures.style import contour, finish, styled

__all__ = ["plot_layers_heads", "plot_images_heads", "plot_map_detail", "plot_dino_display",
           "plot_layers_models", "plot_heads_models", "plot_heads_per_model"]


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


@styled
def plot_layers_models(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor],
                       truths: Sequence[np.ndarray] | None = None,
                       heads: Mapping[str, Sequence[int]] | None = None, title: str = ""):
    """Rows = each image under each model, columns = the image and one map per layer.

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        maps: label -> ``(L, J, h, w)``, one map per layer and image (e.g. the head each layer
            chose on the selection set); every model has the same ``L``.
        truths: optional J ``(H, W)`` bool object masks, outlined on the images and the maps.
        heads: optional label -> L head indices (from 0), written in the corner of each map.
    """
    labels = list(maps)
    L = next(iter(maps.values())).shape[0]
    R = len(images) * len(labels)
    fig, axes = plt.subplots(R, L + 1, figsize=(1.05 * (L + 1), 1.05 * R), squeeze=False)
    for j, image in enumerate(images):
        for m, label in enumerate(labels):
            row = axes[j * len(labels) + m]
            up = upsample_maps(maps[label][:, j], image.shape[:2]).numpy()  # (L, H, W)
            row[0].imshow(image)
            row[0].set_ylabel(label, fontsize=8)
            for l in range(L):
                row[l + 1].imshow(up[l], cmap="inferno")
                if heads is not None and label in heads:
                    row[l + 1].text(0.04, 0.96, f"h{int(heads[label][l]) + 1}", color="white", fontsize=6,
                                    va="top", ha="left", transform=row[l + 1].transAxes)
                if j == 0 and m == 0:
                    row[l + 1].set_title(f"layer {l + 1}", fontsize=8)
            if truths is not None:
                for ax in row:
                    contour(ax, truths[j], "white" if ax is row[0] else "cyan", 1.0 if ax is row[0] else 0.6)
    return finish(fig, axes, title, pad=0.3, w_pad=0.15, h_pad=0.15)


@styled
def plot_heads_models(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor], mass: float = 0.6,
                      truths: Sequence[np.ndarray] | None = None, title: str = ""):
    """Rows = images, columns = the image and, model after model, every head's map of one layer
    (each with the patches holding ``mass`` of its attention outlined in cyan: DINO's display).

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        maps: label -> ``(J, K, h, w)`` (e.g. each model's primary layer); K may differ by model.
        mass: attention mass of the outlined sets.
        truths: optional J ``(H, W)`` bool object masks, outlined on the images.
    """
    J = len(images)
    cols = 1 + sum(m.shape[1] for m in maps.values())
    fig, axes = plt.subplots(J, cols, figsize=(0.95 * cols, 0.95 * J + 0.25), squeeze=False)
    for j, image in enumerate(images):
        axes[j, 0].imshow(image)
        if truths is not None:
            contour(axes[j, 0], truths[j], "white")
        c = 1
        for label, m in maps.items():
            up = upsample_maps(m[j], image.shape[:2]).numpy()
            sets = upsample_maps(mass_mask(m[j], mass), image.shape[:2]).numpy()
            for k in range(m.shape[1]):
                axes[j, c].imshow(up[k], cmap="inferno")
                contour(axes[j, c], sets[k], "cyan", 0.7)
                if j == 0:
                    axes[j, c].set_title(f"{label}\nhead {k + 1}" if k == 0 else f"head {k + 1}", fontsize=7)
                c += 1
    axes[0, 0].set_title("image", fontsize=7)
    return finish(fig, axes, title, pad=0.3, w_pad=0.1, h_pad=0.15)


@styled
def plot_heads_per_model(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor], mass: float = 0.6,
                         title: str = ""):
    """Rows = each image under each model, columns = the image and every head's map of one layer
    (each with the patches holding ``mass`` of its attention outlined in cyan: DINO's display). A
    model with fewer heads than the widest leaves the rest of its rows blank.

    Args:
        images: J uint8 ``(H, W, 3)`` images (any sizes).
        maps: label -> ``(J, K, h, w)`` maps of one layer; K and the grid may differ by model.
        mass: attention mass of the outlined sets.
    """
    labels = list(maps)
    K = max(m.shape[1] for m in maps.values())
    R = len(images) * len(labels)
    fig, axes = plt.subplots(R, K + 1, figsize=(0.85 * (K + 1), 0.85 * R + 0.25), squeeze=False)
    for j, image in enumerate(images):
        for m, label in enumerate(labels):
            row = axes[j * len(labels) + m]
            up = upsample_maps(maps[label][j], image.shape[:2]).numpy()  # (K_m, H, W)
            sets = upsample_maps(mass_mask(maps[label][j], mass), image.shape[:2]).numpy()
            row[0].imshow(image)
            row[0].set_ylabel(label, fontsize=6)
            for k in range(K):
                if k >= up.shape[0]:
                    row[k + 1].axis("off")
                    continue
                row[k + 1].imshow(up[k], cmap="inferno")
                contour(row[k + 1], sets[k], "cyan", 0.6)
                if j == 0 and m == 0:
                    row[k + 1].set_title(f"head {k + 1}", fontsize=7)
    return finish(fig, axes, title, pad=0.3, w_pad=0.1, h_pad=0.1)
