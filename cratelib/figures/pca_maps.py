"""Figures and measurements of the PCA chapter (book chapter 8; the paper's Figs. 3 and 9, eq. 12).

The PCA itself is :mod:`cratelib.eval.pca` (eq. 12: :func:`~cratelib.eval.pca.foreground_mask`,
:func:`~cratelib.eval.pca.pca_foreground`); the per-layer features come from
:func:`cratelib.eval.extract.extract` (CRATE: the heads' ``U_k^* z`` side by side; ViT: the keys).
This module arranges them:

* :func:`layer_features` - every layer's patch features of a batch of uint8 images, one tensor;
* :func:`brightness_features` - each patch's mean brightness as a one-dimensional "feature", the
  unlearned baseline run through the same pipeline;
* :func:`pca_by_group` - eq. 12 with the PCA over the images of one group at a time (the paper's
  "J images of one class"): RGB, foreground and the first component per image;
* :func:`foreground_ious` - IoU of each image's foreground patches with its true object mask;
* :func:`separation_auc` - how well the first component separates object from background patches,
  without a threshold and without a choice of sign (the ROC AUC, folded to ``>= 0.5``);
* :func:`plot_pca_layers` - several images, every layer's eq. 12 picture (the static figure);
* :func:`plot_pca_detail` - one image and layer: the first component, its foreground and the RGB
  (the widget's figure).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.extract import extract
from cratelib.eval.metrics import iou
from cratelib.eval.pca import Foreground, Normalise, pca_foreground, principal_components
from cratelib.figures.style import contour, finish, single_thread, styled

__all__ = [
    "layer_features",
    "brightness_features",
    "pca_by_group",
    "foreground_ious",
    "separation_auc",
    "plot_pca_layers",
    "plot_pca_detail",
]


def layer_features(model: torch.nn.Module, images: Sequence[np.ndarray], img_size: int | None = None
                   ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Eq. 12's features of every layer: ``((L, J, N, D), grid)``.

    Args:
        model: a cratelib model (CRATE: ``D = K p`` concatenated ``U_k^* z``; ViT: the keys).
        images: J uint8 ``(H, W, 3)`` images (resized to ``img_size``, ImageNet-normalised).
        img_size: input size (default: the model's training size).
    """
    depth = len(model.blocks)
    size = img_size or model.config.img_size
    with single_thread():  # the book's models are tiny: one thread, no barriers on a busy CPU
        ex = extract(model, list(images), list(range(depth)), size, what=("features",))
    return torch.stack([ex.features[l] for l in range(depth)]), ex.grid


def brightness_features(images: Sequence[np.ndarray], patch_size: int = 8) -> torch.Tensor:
    """``(J, N, 1)``: each patch's mean brightness in [0, 1], a one-dimensional feature.

    Its first principal component is the brightness itself (up to sign and offset), so eq. 12's
    foreground is "the brighter (or darker) half of the brightness range": the unlearned
    baseline that says how much of the separation the data give away."""
    x = torch.from_numpy(np.stack(images)).float().mean(-1) / 255  # (J, H, W)
    pooled = torch.nn.functional.avg_pool2d(x[:, None], patch_size)[:, 0]  # (J, h, w)
    return pooled.flatten(1)[..., None]


def _groups(groups: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray:
    g = np.zeros(n, np.int64) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"expected one group id per image ({n}), got shape {g.shape}")
    return g


def pca_by_group(features: torch.Tensor, grid: tuple[int, int], groups: Sequence[int] | None = None,
                 lam: float = 0.5, normalise: Normalise = "minmax", foreground: Foreground = "smaller",
                 center: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 12, with one PCA per group of images (App. B.2 takes J images of one class).

    Args:
        features: ``(J, N, D)`` patch features of one layer.
        grid: ``(h, w)`` with ``h w = N``.
        groups: a group id per image (e.g. the class label); ``None``: one PCA over all images.
        lam, normalise, foreground, center: see :func:`cratelib.eval.pca.foreground_mask`.

    Returns:
        ``(rgb (J, h, w, 3), foreground (J, h, w) bool, pc1 (J, h, w))``: the eq. 12 picture, the
        thresholded first component, and the first component's projection (float64, its sign is
        the arbitrary one of :func:`~cratelib.eval.pca.principal_components`).
    """
    J, N, D = features.shape
    g = _groups(groups, J)
    rgb = torch.zeros(J, *grid, 3, dtype=torch.float64)
    fg = torch.zeros(J, *grid, dtype=torch.bool)
    pc1 = torch.zeros(J, *grid, dtype=torch.float64)
    with single_thread():  # small eigenproblems: threads only add synchronisation (costly under load)
        for group in np.unique(g):
            idx = torch.from_numpy(np.flatnonzero(g == group))
            feats = features[idx]
            rgb[idx], fg[idx] = pca_foreground(feats, grid, lam, normalise, foreground, center)
            _, proj = principal_components(feats.reshape(len(idx) * N, D), 1, center)
            pc1[idx] = proj[:, 0].reshape(len(idx), *grid)
    return rgb, fg, pc1


def foreground_ious(foreground: torch.Tensor, truths: Sequence[np.ndarray]) -> np.ndarray:
    """``(J,)``: IoU of each image's foreground patches (``(J, h, w)`` bool, upsampled by repeating
    each patch) with its ``(H, W)`` bool object mask."""
    if len(foreground) != len(truths):
        raise ValueError(f"{len(foreground)} foreground masks but {len(truths)} true masks")
    return np.asarray([iou(upsample_maps(f, t.shape).numpy(), t) for f, t in zip(foreground, truths)])


def _auc(score: torch.Tensor, positive: torch.Tensor) -> float:
    """ROC AUC of ``score`` for ``positive`` (Mann-Whitney; ties share their mean rank)."""
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    s = score.double()
    ranked = s.sort().values
    lo = torch.searchsorted(ranked, s, right=False)
    hi = torch.searchsorted(ranked, s, right=True)
    ranks = (lo + hi + 1) / 2  # 1-based mid-ranks: ties share their mean rank
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def separation_auc(pc1: torch.Tensor, object_fraction: torch.Tensor, groups: Sequence[int] | None = None,
                   ) -> float:
    """How well the first component separates object patches from background, folded over sign.

    A patch counts as object when at least half of its pixels are. Per group (the PCA's images),
    the ROC AUC of the projection for "object", folded to ``max(AUC, 1 - AUC)`` because the sign of
    a principal direction is arbitrary; the mean over groups weighted by their number of images.
    0.5: the component ignores the object; 1: a threshold on it separates object and background
    exactly.

    Args:
        pc1: ``(J, h, w)`` projections (:func:`pca_by_group`).
        object_fraction: ``(J, h, w)`` share of each patch on the object
            (:func:`cratelib.figures.attention.object_fraction`).
        groups: the groups the PCA was computed over (``None``: one).
    """
    g = _groups(groups, len(pc1))
    total, weight = 0.0, 0
    for group in np.unique(g):
        idx = torch.from_numpy(np.flatnonzero(g == group))
        a = _auc(pc1[idx].flatten(), object_fraction[idx].flatten() >= 0.5)
        if not np.isnan(a):
            total += len(idx) * max(a, 1 - a)
            weight += len(idx)
    return total / weight if weight else float("nan")


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
