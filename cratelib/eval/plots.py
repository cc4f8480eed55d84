"""Matplotlib figures of the evaluations; every function returns a ``Figure``.

The book calls these; nothing is shown or saved here (use ``fig.savefig``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cratelib.eval.attention import upsample_maps
from cratelib.eval.maskcut import mask_to_box


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _grid(n: int, cols: int, size: float = 2.0) -> tuple[Figure, np.ndarray]:
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.reshape(-1)


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


def plot_head_maps(
    image: np.ndarray,
    maps: torch.Tensor,
    masks: torch.Tensor | None = None,
    cols: int = 7,
    title: str | None = None,
) -> Figure:
    """The image and each head's map (Figs. 1, 7, 11-13).

    Args:
        image: ``(H, W, 3)`` uint8.
        maps: ``(K, h, w)`` attention maps, shown upsampled (nearest) to the image.
        masks: optional ``(K, h, w)`` bool masks drawn as contours (e.g. DINO's 60 % mass).
    """
    size = image.shape[:2]
    up = _np(upsample_maps(maps, size))
    fig, axes = _grid(len(up) + 1, cols)
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=8)
    up_masks = None if masks is None else _np(upsample_maps(masks.bool(), size))
    for k, ax in enumerate(axes[1 : len(up) + 1]):
        ax.imshow(up[k], cmap="inferno")
        if up_masks is not None:
            ax.contour(up_masks[k], levels=[0.5], colors="cyan", linewidths=0.8)
        ax.set_title(f"head {k}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pca(
    images: Sequence[np.ndarray],
    rgb: torch.Tensor,
    grey: torch.Tensor | None = None,
    title: str | None = None,
) -> Figure:
    """Per image: the image, (PC1 grey,) and the PCA colours (Figs. 3, 6, 9, 10).

    Args:
        images: J ``(H, W, 3)`` uint8 images.
        rgb: ``(J, h, w, 3)`` in [0, 1] (eq. 12 or PCs 2-4).
        grey: optional ``(J, h, w)`` PC1.
    """
    cols = 2 if grey is None else 3
    fig, axes = plt.subplots(len(images), cols, figsize=(2 * cols, 2 * len(images)), squeeze=False)
    for j, image in enumerate(images):
        panels = [(image, None, "image")]
        if grey is not None:
            panels.append((_np(grey[j]), "gray", "PC1"))
        panels.append((_np(rgb[j]), None, "PCA RGB"))
        for ax, (data, cmap, name) in zip(axes[j], panels):
            ax.imshow(data, cmap=cmap, interpolation="nearest")
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_maskcut(image: np.ndarray, masks: Sequence[np.ndarray], title: str | None = None) -> Figure:
    """The image with each MaskCut mask as a coloured overlay and its tight box.

    Args:
        image: ``(H, W, 3)`` uint8.
        masks: bool masks at image resolution (empty ones are skipped).
    """
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(image)
    overlay_masks(ax, [m for m in masks if m.any()])
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_layerwise(series: Mapping[str, Mapping[int, float]], ylabel: str, title: str | None = None) -> Figure:
    """Curves over layers (Fig. 6): ``{label: {layer: value}}``, layers shown 1-based."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, values in series.items():
        layers = sorted(values)
        ax.plot([l + 1 for l in layers], [values[l] for l in layers], marker="o", label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_bars(
    values: Mapping[str, float],
    reference: Mapping[str, float] | None = None,
    ylabel: str = "mIoU (%)",
    title: str | None = None,
) -> Figure:
    """Bars per model (Fig. 4b), optionally beside the paper's values."""
    names = list(values)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.2))
    width = 0.4 if reference else 0.8
    ax.bar(x - (width / 2 if reference else 0), [values[n] for n in names], width, label="ours")
    if reference:
        ax.bar(x + width / 2, [reference.get(n, np.nan) for n in names], width, label="paper")
        ax.legend()
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_noise_study(entries: Sequence[dict], heads: Sequence[int] | None = None) -> Figure:
    """Rows = noise settings, columns = the noisy image and each head's map (Figs. 11-12).

    Args:
        entries: output of :func:`cratelib.eval.studies.noise_study`.
        heads: which heads to show (default all).
    """
    k = entries[0]["maps"].shape[0]
    heads = list(range(k)) if heads is None else list(heads)
    fig, axes = plt.subplots(len(entries), len(heads) + 1,
                             figsize=(1.6 * (len(heads) + 1), 1.6 * len(entries)), squeeze=False)
    for r, e in enumerate(entries):
        size = e["image"].shape[:2]
        axes[r, 0].imshow(e["image"])
        axes[r, 0].set_title(f"sigma {e['sigma']:g}, {100 * e['fraction']:.0f}%", fontsize=7)
        up = _np(upsample_maps(e["maps"], size))
        for c, h in enumerate(heads, start=1):
            axes[r, c].imshow(up[h], cmap="inferno")
            if r == 0:
                axes[r, c].set_title(f"head {h}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig
