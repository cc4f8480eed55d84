"""Figures and measurements of chapter 12: depth, heads, training epochs and noise (the paper's
Figs. 6, 7, 10, 11 and 12).

The studies themselves are :mod:`cratelib.eval.studies` (:func:`~cratelib.eval.studies.layerwise_miou`,
:func:`~cratelib.eval.studies.layerwise_maskcut`, :func:`~cratelib.eval.studies.add_gaussian_noise`,
:func:`~cratelib.eval.studies.noise_study`) and the maps come from :mod:`cratelib.figures.attention`.
This module adds what the chapter measures on top of them:

* :func:`held_out_samples` - the held-out test images as evaluation samples with their label maps,
  and their COCO ground truth (for MaskCut's AP);
* :func:`head_measures`, :func:`head_rows`, :func:`class_head_means` - what each
  head of one layer looks at (Fig. 7's "semantic heads", measured instead of picked by eye);
* :func:`predict` - top-1 predictions of a model (accuracy beside the segmentation measures);
* :func:`map_overlap`, :func:`noise_sweep` - how maps, localisation and accuracy change as
  Gaussian noise is added (Figs. 11-12);
* :func:`plot_series`, :func:`plot_head_measures`, :func:`plot_class_heads`,
  :func:`plot_layer_epoch` - the chapter's figures.

Maps are ``(J, K, h, w)`` tensors (images, heads, patch grid) of eq. 10 (CRATE) or eq. 11 (ViT);
object masks are ``(H, W)`` bool arrays at image resolution.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.data import SyntheticData, export_coco
from cratelib.eval.extract import extract, to_model_input
from cratelib.eval.sources import Sample
from cratelib.eval.studies import add_gaussian_noise
from cratelib.figures.attention import attention_on, best_head_ious, object_fraction, patch_kinds
from cratelib.figures.style import COLORS, styled

__all__ = [
    "held_out_samples",
    "KINDS",
    "head_measures",
    "head_rows",
    "class_head_means",
    "predict",
    "map_overlap",
    "noise_sweep",
    "plot_series",
    "plot_head_measures",
    "plot_class_heads",
    "plot_layer_epoch",
]

KINDS = ("background", "outline", "interior")


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def held_out_samples(data: SyntheticData, folder: str | Path) -> tuple[list[Sample], Path]:
    """The images of ``data`` as evaluation samples, and their COCO instances JSON.

    Sample ``i`` has COCO id ``i + 1`` (the id :func:`cratelib.data.export_coco` gives image
    ``i``) and the semantic map as its label map (0 background, ``class + 1`` on the object), so
    the same list serves eq. 14 (:func:`cratelib.eval.studies.layerwise_miou`) and MaskCut's AP
    (:func:`cratelib.eval.studies.layerwise_maskcut`).

    Args:
        data: e.g. the held-out test set of chapter 7.
        folder: where the COCO export (images and ``annotations/``) is written.

    Returns:
        ``(samples, path of the instances JSON)``.
    """
    gt = export_coco(data, folder, split="val2017", image_format="png")
    samples = [Sample(image, i + 1, f"{i + 1:06d}", sem.astype(np.int64))
               for i, (image, sem) in enumerate(zip(data.images, data.semantic))]
    return samples, gt


# ---------------------------------------------------------------------------------------------
# Semantic heads (Fig. 7)
# ---------------------------------------------------------------------------------------------


def _centroid_offsets(maps: torch.Tensor, truths: Sequence[np.ndarray], fraction: torch.Tensor
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Where on the object a head looks: the centroid of its attention on object pixels, minus
    the object's own centroid, in units of the object's height and width: ``(dy, dx)`` each
    ``(J, K)`` (negative dy = above the object's centre; ``nan`` for a head with no attention on
    the object)."""
    J, K, h, w = maps.shape
    H, W = truths[0].shape
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * H / h  # patch centres in pixels
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * W / w
    weight = maps * fraction[:, None]  # (J, K, h, w) attention on object pixels
    total = weight.sum((-2, -1))
    total = torch.where(total > 0, total, torch.nan)
    cy = (weight.sum(-1) * ys).sum(-1) / total  # (J, K)
    cx = (weight.sum(-2) * xs).sum(-1) / total
    dy, dx = np.zeros((J, K)), np.zeros((J, K))
    for j, truth in enumerate(truths):
        rows, cols = np.nonzero(truth)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        dy[j] = (cy[j].numpy() - (rows.mean() + 0.5)) / height
        dx[j] = (cx[j].numpy() - (cols.mean() + 0.5)) / width
    return dy, dx


def head_measures(maps: torch.Tensor, truths: Sequence[np.ndarray], mass: float = 0.6) -> dict[str, np.ndarray]:
    """What each head of one layer looks at, per image: every value is ``(J, K)``.

    Keys:
        ``object``: share of the head's attention on object pixels (chapter 7's measure);
        ``background``, ``outline``, ``interior``: its share on each kind of patch
        (:func:`~cratelib.figures.attention.patch_kinds`; they sum to one);
        ``iou``: IoU of the head's ``mass`` set (DINO's display) with the object;
        ``best``: 1 where this head has the best IoU of the image's heads (eq. 13's choice);
        ``dy``, ``dx``: where on the object it looks, the offset of its on-object attention
        centroid from the object's centroid in units of the object's height / width.

    A head that attends to the same part of every object (the paper's "legs" or "ear" heads) has
    a large mean offset with a small spread across images; a head spread over the whole object
    has offsets near zero.

    Args:
        maps: ``(J, K, h, w)`` CLS maps of one layer.
        truths: J ``(H, W)`` bool object masks (one object per image).
        mass: attention mass of the sets scored by ``iou``.
    """
    J, K, h, w = maps.shape
    if len(truths) != J:
        raise ValueError(f"{J} images of maps but {len(truths)} masks")
    frac = object_fraction(truths, (h, w))
    out = {"object": attention_on(maps, frac).numpy()}
    for name, weight in patch_kinds(frac).items():
        out[name] = attention_on(maps, weight).numpy()
    out["iou"] = np.stack([best_head_ious(maps[:, k:k + 1], truths, mass)[0] for k in range(K)], axis=1)
    best = out["iou"].argmax(1)
    out["best"] = (np.arange(K)[None] == best[:, None]).astype(float)
    out["dy"], out["dx"] = _centroid_offsets(maps, truths, frac)
    return out


def head_rows(measures: Mapping[str, np.ndarray], model: str = "",
              keys: Sequence[str] = ("object", "outline", "iou", "dy", "dx")) -> list[dict]:
    """One row per head for :func:`cratelib.eval.studies.format_table`: ``mean (std)`` over the
    images of each measure in ``keys``, and how often the head is the image's best (``best``)."""
    K = next(iter(measures.values())).shape[1]
    rows = []
    for k in range(K):
        row = {"head": f"{model} {k + 1}".strip()}
        for key in keys:
            v = measures[key][:, k]
            row[key] = f"{np.nanmean(v):+.2f} ({np.nanstd(v):.2f})" if key in ("dy", "dx") \
                else f"{np.nanmean(v):.2f} ({np.nanstd(v):.2f})"
        row["best head"] = f"{measures['best'][:, k].mean():.0%}"
        rows.append(row)
    return rows


def class_head_means(values: np.ndarray, labels: Sequence[int], num_classes: int) -> np.ndarray:
    """``(C, K)``: the mean of a ``(J, K)`` per-image, per-head measure over the images of each
    class (``nan`` for a class without images)."""
    values = np.asarray(values, float)
    labels = np.asarray(labels)
    out = np.full((num_classes, values.shape[1]), np.nan)
    for c in range(num_classes):
        if (labels == c).any():
            out[c] = values[labels == c].mean(0)
    return out


# ---------------------------------------------------------------------------------------------
# Accuracy and noise (Figs. 10-12)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(model: torch.nn.Module, images: Sequence[np.ndarray], img_size: int | None = None,
            batch_size: int = 256) -> np.ndarray:
    """``(J,)`` top-1 classes of ``model`` on uint8 images (resized and normalised as every
    evaluation in :mod:`cratelib.eval` does), computed on the device the model is on."""
    size = img_size or model.config.img_size
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(list(images[start:start + batch_size]), size).to(device)
        out.append(model(x).argmax(-1).cpu().numpy())
    return np.concatenate(out)


def map_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overlap ``sum_i min(a_i, b_i)`` of maps normalised to sum one over the grid: 1 for the
    same map, 0 for maps on disjoint patches (one minus their total-variation distance).

    Args:
        a, b: ``(..., h, w)`` non-negative maps of the same shape.

    Returns:
        ``(...)``.
    """
    a = a / a.sum((-2, -1), keepdim=True)
    b = b / b.sum((-2, -1), keepdim=True)
    return torch.minimum(a, b).sum((-2, -1))


def noise_sweep(model: torch.nn.Module, images: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                labels: Sequence[int], layer: int,
                settings: Sequence[tuple[float, float]] = ((10, 0.5), (25, 0.5), (50, 0.5), (75, 0.5)),
                seed: int = 0, img_size: int | None = None, device: str | torch.device = "cpu") -> list[dict]:
    """Figs. 11-12 measured on a set of images: for the clean images and each ``(sigma,
    fraction)``, Gaussian noise of ``sigma`` grey levels on ``fraction`` of the pixels
    (:func:`cratelib.eval.studies.add_gaussian_noise`, image ``j`` seeded ``seed + j``); the
    forward passes run on ``device``.

    Returns:
        One dict per setting, the clean one first: ``sigma``, ``fraction``, ``acc`` (top-1
        accuracy), ``object`` ``(J, K)`` (share of each head's attention on the object),
        ``iou`` ``(J,)`` (best head's 60 %-mass IoU with the object), ``overlap`` ``(J, K)``
        (:func:`map_overlap` of each head's map with its map on the clean image), ``maps``
        ``(J, K, h, w)`` and ``images`` (the noisy uint8 images).
    """
    size = img_size or model.config.img_size
    labels = np.asarray(labels)
    out, clean = [], None
    for sigma, fraction in [(0.0, 0.0), *settings]:
        noisy = [add_gaussian_noise(im, sigma, fraction, seed + j) for j, im in enumerate(images)]
        maps = extract(model, noisy, [layer], size, what=("attention",), device=device).attention[layer]
        clean = maps if clean is None else clean
        frac = object_fraction(truths, tuple(maps.shape[-2:]))
        out.append({"sigma": float(sigma), "fraction": float(fraction),
                    "acc": float((predict(model, noisy, size) == labels).mean()),
                    "object": attention_on(maps, frac).numpy(),
                    "iou": best_head_ious(maps, truths)[0],
                    "overlap": map_overlap(maps, clean).numpy(),
                    "maps": maps, "images": noisy})
    return out


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


@styled
def plot_series(series: Mapping[str, Mapping[float, float]], xlabel: str, ylabel: str, ax=None,
                title: str = "", styles: Mapping[str, str] | None = None):
    """Curves ``{label: {x: y}}`` on one axis (epochs, noise levels); returns the figure.

    Args:
        series: one mapping per curve; points are drawn in increasing x.
        ax: draw into this axis (default: a new figure).
        styles: optional matplotlib line style per label (e.g. ``"--"`` for baselines).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.0))
    for i, (label, values) in enumerate(series.items()):
        xs = sorted(values)
        ax.plot(xs, [values[x] for x in xs], (styles or {}).get(label, "-"), marker="o", ms=3.5,
                color=COLORS[i % len(COLORS)], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


@styled
def plot_head_measures(measures: Mapping[str, Mapping[str, np.ndarray]], image_share: Mapping[str, float]):
    """Stacked bars per head: the mean share of its attention on background, outline and interior
    patches, one group per model, with each kind's share of the image as a reference bar.

    Args:
        measures: ``model -> head_measures(...)``.
        image_share: ``kind -> `` the kind's mean share of the patches (what a uniform map gives).
    """
    labels, stacks = ["uniform\nmap"], [[image_share[k] for k in KINDS]]
    for model, m in measures.items():
        for k in range(m["object"].shape[1]):
            labels.append(f"{textwrap.fill(model, 12, break_long_words=False)}\nhead {k + 1}")
            stacks.append([float(np.mean(m[kind][:, k])) for kind in KINDS])
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
    """Heat maps ``class x head`` of a per-class mean (:func:`class_head_means`), one per model,
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
def plot_layer_epoch(values: np.ndarray, epochs: Sequence[int], label: str, title: str = ""):
    """Heat map ``epoch x layer`` of a segmentation measure (Figs. 6 and 10 in one picture),
    each cell printed; layers are shown 1-based.

    Args:
        values: ``(E, L)``.
        epochs: the E snapshot epochs (rows).
    """
    values = np.asarray(values, float)
    E, L = values.shape
    fig, ax = plt.subplots(figsize=(0.6 * L + 2.2, 0.32 * E + 1.2))
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    mid = (np.nanmin(values) + np.nanmax(values)) / 2
    for (e, l), v in np.ndenumerate(values):
        ax.text(l, e, f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}", ha="center", va="center", fontsize=7,
                color="white" if v < mid else "black")
    ax.set_xticks(range(L), [str(l + 1) for l in range(L)])
    ax.set_yticks(range(E), [str(e) for e in epochs])
    ax.set_xlabel("layer")
    ax.set_ylabel("epoch")
    fig.colorbar(im, ax=ax, label=label)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
