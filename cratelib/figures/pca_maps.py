"""Figures of the PCA of patch features (book chapters 8 and 12; the paper's Figs. 3, 6, 9, 10,
eq. 12).

The PCA and its measures are :mod:`cratelib.eval.pca` (eq. 12: :func:`~cratelib.eval.pca.pca_foreground`,
per class: :func:`~cratelib.eval.pca.pca_by_group`); the features come from
:func:`cratelib.eval.extract.layer_features`. Layers are numbered from 1.

* :func:`plot_pca_layers` - several images, every layer's eq. 12 picture (the static figure);
* :func:`plot_pca_models` - several images, one row per model: eq. 12's picture at one layer each;
* :func:`plot_pca_detail` - one image and layer: the first component, its foreground and the RGB
  (the widget's figure);
* :func:`plot_pca` - per image, the image, PC1 in grey and PCs 2-4 (or eq. 12's RGB).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.metrics import iou
from cratelib.figures.style import contour, finish, styled

__all__ = ["plot_pca_layers", "plot_pca_models", "plot_pca_detail", "plot_pca"]


@styled
def plot_pca_layers(images: Sequence[np.ndarray], rgb: torch.Tensor, truths: Sequence[np.ndarray] | None = None,
                    row_labels: Sequence[str] | None = None, title: str = ""):
    """Rows = images, columns = the image and eq. 12's picture at each layer (Figs. 3, 9).

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        rgb: ``(L, J, h, w, 3)`` in [0, 1] (:func:`pca_by_group` of every layer).
        truths: optional J ``(H, W)`` bool object masks, outlined on the images and the pictures.
        row_labels: optional label per row.
    """
    L, J = rgb.shape[:2]
    fig, axes = plt.subplots(J, L + 1, figsize=(1.15 * (L + 1), 1.15 * J), squeeze=False)
    for j, image in enumerate(images):
        axes[j, 0].imshow(image)
        if row_labels is not None:
            axes[j, 0].set_ylabel(row_labels[j], fontsize=8)
        for l in range(L):
            ax = axes[j, l + 1]
            ax.imshow(rgb[l, j].numpy(), interpolation="nearest", extent=(-0.5, image.shape[1] - 0.5,
                                                                          image.shape[0] - 0.5, -0.5))
            if j == 0:
                ax.set_title(f"layer {l + 1}", fontsize=8)
        if truths is not None:
            for ax in axes[j]:
                contour(ax, truths[j], "white", 0.7)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)


@styled
def plot_pca_models(images: Sequence[np.ndarray], rgb: Mapping[str, torch.Tensor],
                    truths: Sequence[np.ndarray] | None = None, title: str = ""):
    """Columns = images; row 0 the images, then one row per label of ``rgb``: eq. 12's picture of
    that model (e.g. at its pre-named layer).

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        rgb: label -> ``(J, h, w, 3)`` in [0, 1] (:func:`pca_by_group` of one layer).
        truths: optional J ``(H, W)`` bool object masks, outlined in every panel.
    """
    J, R = len(images), len(rgb) + 1
    for label, pictures in rgb.items():
        if pictures.dim() != 4 or pictures.shape[0] != J or pictures.shape[-1] != 3:
            raise ValueError(f"rgb[{label!r}] must be ({J}, h, w, 3) for {J} images, got {tuple(pictures.shape)}")
    fig, axes = plt.subplots(R, J, figsize=(1.15 * J + 1.2, 1.15 * R), squeeze=False)
    for j, image in enumerate(images):
        axes[0, j].imshow(image)
        extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
        for r, pictures in enumerate(rgb.values(), start=1):
            axes[r, j].imshow(pictures[j].numpy(), interpolation="nearest", extent=extent)
        if truths is not None:
            for r in range(R):
                contour(axes[r, j], truths[j], "white", 0.7)
    for r, label in enumerate(["image", *rgb]):
        axes[r, 0].set_ylabel(label, fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)


@styled
def plot_pca_detail(image: np.ndarray, pc1: torch.Tensor, foreground: torch.Tensor, rgb: torch.Tensor,
                    truth: np.ndarray | None = None, title: str = ""):
    """Four panels for one image and layer: the image (true mask outlined), the first component,
    its thresholded foreground (IoU with ``truth`` in the title) and eq. 12's RGB picture.

    Args:
        image: ``(H, W, 3)`` uint8.
        pc1: ``(h, w)`` first-component projections; foreground: ``(h, w)`` bool; rgb: ``(h, w, 3)``.
        truth: optional ``(H, W)`` bool object mask.
    """
    size = image.shape[:2]
    extent = (-0.5, size[1] - 0.5, size[0] - 0.5, -0.5)
    fig, axes = plt.subplots(1, 4, figsize=(8.6, 2.5))
    axes[0].imshow(image)
    axes[0].set_title("image" + (", true mask" if truth is not None else ""))
    im = axes[1].imshow(pc1.numpy(), cmap="coolwarm", interpolation="nearest", extent=extent)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    axes[1].set_title("first component")
    axes[2].imshow(foreground.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest", extent=extent)
    label = "foreground"
    if truth is not None:
        label += f", IoU {iou(upsample_maps(foreground, size).numpy(), truth):.2f}"
    axes[2].set_title(label)
    axes[3].imshow(rgb.numpy(), interpolation="nearest", extent=extent)
    axes[3].set_title("PCs 1-3 of the foreground")
    if truth is not None:
        for ax in axes:
            contour(ax, truth, "white" if ax is not axes[2] else "red", 0.8)
    return finish(fig, axes, title)


@styled
def plot_pca(images: Sequence[np.ndarray], rgb: torch.Tensor, grey: torch.Tensor | None = None, title: str = ""):
    """Per image (rows): the image, PC1 in grey (if given) and the PCA colours (Figs. 6, 10, or
    eq. 12's picture of Figs. 3, 9).

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        rgb: ``(J, h, w, 3)`` in [0, 1] (PCs 2-4 of :func:`cratelib.eval.pca.pca_grey_rgb`, or
            eq. 12's RGB).
        grey: optional ``(J, h, w)`` PC1.
    """
    cols = 2 if grey is None else 3
    J = len(images)
    fig, axes = plt.subplots(J, cols, figsize=(1.6 * cols, 1.6 * J + 0.3), squeeze=False)
    for j, image in enumerate(images):
        extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
        panels = [(image, None, "image")]
        if grey is not None:
            panels.append((grey[j].numpy(), "gray", "PC1"))
        panels.append((rgb[j].numpy(), None, "PCA RGB"))
        for ax, (data, cmap, name) in zip(axes[j], panels):
            ax.imshow(data, cmap=cmap, interpolation="nearest", extent=extent)
            if j == 0:
                ax.set_title(name, fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)
