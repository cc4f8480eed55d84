"""Figures and measurements of the attention-map chapter (book chapter 7; the paper's Figs. 1,
8, 14).

The maps themselves come from :mod:`cratelib.eval` (eqs. 10-11: :func:`~cratelib.eval.cls_attention`
through :func:`~cratelib.eval.extract`; DINO's mass threshold: :func:`~cratelib.eval.mass_mask`).
This module arranges them:

* :func:`layer_maps` - every layer's CLS maps of a batch of uint8 images, as one tensor;
* :func:`plot_layers_heads` - one image, a grid of layers x heads;
* :func:`plot_images_heads` - several images, one layer, every head;
* :func:`plot_map_detail` - one image, one map, its DINO mass set (the widget's figure);
* :func:`plot_dino_display` - several images, one map each, shown DINO's way (Fig. 1);
* :func:`best_head_ious`, :func:`uniform_ious`, :func:`random_map_ious` - the chapter's
  quantitative check: IoU of the mass-thresholded best head with the true object mask, and what a
  map that prefers no patch, or random maps with the same choice of heads, score;
* :func:`brightness_maps` - a fixed, unlearned saliency map (each patch's mean brightness) to
  measure the same way;
* :func:`object_fraction`, :func:`patch_kinds`, :func:`attention_on` - how much of a map's
  attention falls on the object, its outline or its interior (or any set of patches), without
  thresholding.

Single-image figures of all heads are :func:`cratelib.eval.plots.plot_head_maps`; curves over
layers are :func:`cratelib.eval.plots.plot_layerwise`.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.extract import extract
from cratelib.eval.metrics import best_head_iou, iou
from cratelib.eval.threshold import mass_mask
from cratelib.figures.style import contour, finish, styled

__all__ = [
    "layer_maps",
    "plot_layers_heads",
    "plot_images_heads",
    "plot_map_detail",
    "plot_dino_display",
    "best_head_ious",
    "uniform_ious",
    "random_map_ious",
    "brightness_maps",
    "object_fraction",
    "patch_kinds",
    "attention_on",
]


def layer_maps(model: torch.nn.Module, images: Sequence[np.ndarray], img_size: int | None = None,
               scale: float | None = None) -> torch.Tensor:
    """Eq. 10 (CRATE) / eq. 11 (ViT) maps of every layer: ``(L, J, K, h, w)``.

    Args:
        model: a cratelib model (any family).
        images: J uint8 ``(H, W, 3)`` images (resized to ``img_size``, ImageNet-normalised).
        img_size: input size (default: the model's training size).
        scale: softmax scale (``None``: the model's ``p ** -0.5``; ``1.0``: the equations as printed).
    """
    depth = len(model.blocks)
    size = img_size or model.config.img_size
    ex = extract(model, list(images), list(range(depth)), size, what=("attention",), scale=scale)
    return torch.stack([ex.attention[l] for l in range(depth)])


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


def best_head_ious(maps: torch.Tensor, truths: Sequence[np.ndarray], mass: float = 0.6
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the IoU of the best head's DINO mass set with the true object mask (eq. 13
    with the mass threshold), and which head that is.

    Args:
        maps: ``(J, K, h, w)`` maps of one layer.
        truths: J ``(H, W)`` bool object masks.
        mass: attention mass kept (DINO: 0.6).

    Returns:
        ``(ious (J,), heads (J,))``.
    """
    sets = mass_mask(maps, mass)
    ious, heads = [], []
    for j, truth in enumerate(truths):
        masks = upsample_maps(sets[j], truth.shape).numpy()
        value, k = best_head_iou(masks, truth)
        ious.append(value)
        heads.append(k)
    return np.asarray(ious), np.asarray(heads)


def uniform_ious(truths: Sequence[np.ndarray]) -> np.ndarray:
    """What a map that prefers no patch scores: all patches are equal, so no proper subset of
    them is singled out, and the honest binarisation is the whole image. Its IoU with the object
    is the object's share of the image."""
    return np.asarray([float(np.asarray(t, bool).mean()) for t in truths])


def random_map_ious(truths: Sequence[np.ndarray], grid: tuple[int, int], heads: int, mass: float = 0.6,
                    seed: int = 0) -> np.ndarray:
    """Chance level of :func:`best_head_ious`: ``heads`` random maps per image (softmax of
    standard normal logits over the patches), the best one's IoU. It has the same freedom to pick
    a head as the trained model, so it is the fair baseline for "best head"."""
    gen = torch.Generator().manual_seed(seed)
    maps = torch.randn(len(truths), heads, *grid, generator=gen).flatten(-2).softmax(-1).unflatten(-1, grid)
    return best_head_ious(maps, truths, mass)[0]


def brightness_maps(images: Sequence[np.ndarray], patch_size: int = 8) -> torch.Tensor:
    """``(J, 1, h, w)``: each patch's mean brightness (0-1), normalised to sum to one per image.

    A saliency map that nothing learned: on data where objects are lighter than the background it
    already points at them, so it tells how much of a model's localisation the data give away."""
    x = torch.from_numpy(np.stack(images)).float().mean(-1) / 255  # (J, H, W)
    maps = torch.nn.functional.avg_pool2d(x[:, None], patch_size)  # (J, 1, h, w)
    return maps / maps.sum((-2, -1), keepdim=True)


def object_fraction(truths: Sequence[np.ndarray], grid: tuple[int, int]) -> torch.Tensor:
    """``(J, h, w)``: the share of each patch's pixels that lie inside the object mask (0 = all
    background, 1 = all object; in between: the outline crosses the patch)."""
    masks = torch.from_numpy(np.stack([np.asarray(t, bool) for t in truths])).float()[:, None]
    return torch.nn.functional.adaptive_avg_pool2d(masks, grid)[:, 0]


def patch_kinds(fraction: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split the patches by how much of them lies on the object: ``background`` (no object
    pixel), ``outline`` (the object's edge crosses the patch) and ``interior`` (all pixels on the
    object). Each value is a ``(J, h, w)`` 0/1 float weight for :func:`attention_on`; the three
    add up to one at every patch.

    Args:
        fraction: ``(J, h, w)`` share of each patch's pixels on the object
            (:func:`object_fraction`).
    """
    return {"background": (fraction == 0).float(),
            "outline": ((fraction > 0) & (fraction < 1)).float(),
            "interior": (fraction == 1).float()}


def attention_on(maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Share of each map's attention on a set of patches: ``sum_i A_i w_i / sum_i A_i``.

    Args:
        maps: ``(..., J, K, h, w)`` non-negative maps.
        weights: ``(J, h, w)`` patch weights in [0, 1], e.g. :func:`object_fraction` (then the
            result is the share of attention that falls on object pixels; a uniform map scores the
            object's share of the image).

    Returns:
        ``(..., J, K)``.
    """
    w = weights[:, None]  # (J, 1, h, w)
    return (maps * w).sum((-2, -1)) / maps.sum((-2, -1))
