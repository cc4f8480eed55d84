"""PCA of patch features, App. B.2 (eq. 12), and the Fig. 6/10 variant.

Features of layer l: CRATE's subspace projections ``U_k^T z_i`` of all K
heads concatenated, ``z~_i = [U_1^T z_i; ...; U_K^T z_i]`` (``K p`` values);
for a ViT the keys ``[K_1 z_i; ...; K_K z_i]``
(:func:`cratelib.eval.extract.concat_heads` of ``Trace.patch_features``).

Eq. 12 pipeline (:func:`pca_foreground`), over all patches of J images:

1. ``u0`` = first principal direction; projections ``<u0, z~>`` are
   normalised (see ``normalise``) and hard-thresholded at lambda = 1/2;
   patches on the kept side are the foreground ``Z~_s``;
2. PCA of the foreground patches; their projections on ``u1, u2, u3`` are
   the R, G, B channels (each min-max scaled to [0, 1] over all J images);
   background patches are black.

Sign of ``u0``: a principal direction is defined up to sign, so "keep the
positive side" is arbitrary.  ``foreground="smaller"`` (default) keeps the
side with fewer patches (objects are usually smaller than the background);
``"positive"`` / ``"negative"`` fix the side of ``u0`` as returned after the
sign convention below.

Sign convention of every component: flipped so that its projection with the
largest magnitude is positive (makes results deterministic).

PCA centres the features (the usual PCA of Amir et al. and DINOv2's demo);
``center=False`` uses the uncentred second moment ``Z~^T Z~`` as eq. 12 reads.

Measured against a known object: :func:`pca_by_group` (eq. 12 over the images
of one class at a time, App. B.2), :func:`foreground_ious` and
:func:`separation_auc`; from a model: :func:`layerwise_pca`.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.extract import FeatureCache, layer_features
from cratelib.eval.metrics import iou, roc_auc
from cratelib.eval.threads import single_thread

Normalise = Literal["minmax", "maxabs"]
Foreground = Literal["smaller", "positive", "negative"]


def principal_components(
    features: torch.Tensor, n: int, center: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``n`` principal directions of ``features (M, D)`` and the projections.

    Returns:
        ``(directions (n, D), projections (M, n))``, float64, sign convention
        of the module doc.
    """
    if features.dim() != 2:
        raise ValueError(f"expected features (M, D), got shape {tuple(features.shape)}")
    if not 1 <= n <= features.shape[1]:
        raise ValueError(f"n must be in [1, {features.shape[1]}], got {n}")
    x = features.double()
    if center:
        x = x - x.mean(0, keepdim=True)
    _, vecs = torch.linalg.eigh(x.T @ x)  # ascending eigenvalues
    dirs = vecs[:, -n:].flip(-1).T  # (n, D), largest first
    proj = x @ dirs.T  # (M, n)
    peak = proj.gather(0, proj.abs().argmax(0, keepdim=True))  # (1, n)
    sign = torch.where(peak < 0, -1.0, 1.0).to(proj.dtype)
    return dirs * sign.T, proj * sign


def _scale01(x: torch.Tensor) -> torch.Tensor:
    """Min-max scale every column of ``(M, c)`` to [0, 1] (constant columns -> 0)."""
    lo, hi = x.min(0, keepdim=True).values, x.max(0, keepdim=True).values
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def _normalise(p: torch.Tensor, how: Normalise) -> torch.Tensor:
    if how == "minmax":  # to [0, 1]: the threshold 1/2 is the middle of the range
        return _scale01(p[:, None])[:, 0]
    if how == "maxabs":  # to [-1, 1]: sigma_lambda of eq. 12 on a symmetric scale
        return p / p.abs().max().clamp_min(1e-12)
    raise ValueError(f"normalise must be 'minmax' or 'maxabs', got {how!r}")


def foreground_mask(
    features: torch.Tensor,
    lam: float = 0.5,
    normalise: Normalise = "minmax",
    foreground: Foreground = "smaller",
    center: bool = True,
) -> torch.Tensor:
    """Step 1 of eq. 12: ``(J, N, D) -> (J, N)`` bool foreground by thresholding PC1.

    Args:
        features: ``(J, N, D)`` patch features of J images.
        lam: threshold lambda on the normalised projection (paper: 1/2).
        normalise: ``"minmax"`` scales the projections to [0, 1];
            ``"maxabs"`` divides them by their largest magnitude (eq. 12's
            ``sigma_lambda`` on [-1, 1]).  Patches with a value ``>= lam``
            on the foreground side of ``u0`` are kept.
        foreground: which side of ``u0`` is the foreground (module doc);
            ``"smaller"`` orients ``u0`` so that fewer patches lie above the
            middle of the range (0 for ``"maxabs"``).
        center: centre before PCA.
    """
    if features.dim() != 3:
        raise ValueError(f"expected features (J, N, D), got shape {tuple(features.shape)}")
    if foreground not in ("smaller", "positive", "negative"):
        raise ValueError(f"foreground must be 'smaller', 'positive' or 'negative', got {foreground!r}")
    j, n, d = features.shape
    _, proj = principal_components(features.reshape(j * n, d), 1, center)
    p = proj[:, 0]
    if foreground == "negative":
        p = -p
    elif foreground == "smaller":  # orient u0 so that its positive side has fewer patches
        mid = 0.0 if normalise == "maxabs" else (p.min() + p.max()) / 2
        if (p > mid).sum() > (p < mid).sum():
            p = -p
    return (_normalise(p, normalise) >= lam).reshape(j, n)


def pca_foreground(
    features: torch.Tensor,
    grid: tuple[int, int],
    lam: float = 0.5,
    normalise: Normalise = "minmax",
    foreground: Foreground = "smaller",
    center: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 12: RGB = first three PCs of the foreground patches, background black.

    Args:
        features: ``(J, N, D)`` layer-l patch features of J images (module doc).
        grid: ``(h, w)``, ``h * w = N``.
        lam, normalise, foreground, center: see :func:`foreground_mask`.

    Returns:
        ``(rgb (J, h, w, 3) in [0, 1], foreground (J, h, w) bool)``.
    """
    j, n, d = features.shape
    if n != grid[0] * grid[1]:
        raise ValueError(f"features have {n} patches but the grid {grid} has {grid[0] * grid[1]}")
    fg = foreground_mask(features, lam, normalise, foreground, center)
    rgb = torch.zeros(j * n, 3, dtype=torch.float64)
    flat_fg = fg.reshape(-1)
    fg_feats = features.reshape(j * n, d)[flat_fg]
    k = min(3, d, max(int(flat_fg.sum()) - 1, 0))
    if k > 0:
        _, proj = principal_components(fg_feats, k, center)
        rgb[flat_fg, :k] = _scale01(proj)
    return rgb.reshape(j, *grid, 3), fg.reshape(j, *grid)


def pca_grey_rgb(
    features: torch.Tensor, grid: tuple[int, int], center: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Figs. 6/10: PC1 as a grey image and PCs 2-4 as RGB, no background removal.

    Args:
        features: ``(J, N, D)`` patch features, PCA over all ``J N`` patches.
        grid: ``(h, w)``.

    Returns:
        ``(grey (J, h, w), rgb (J, h, w, 3))``, each channel min-max scaled to [0, 1].
    """
    if features.dim() != 3 or features.shape[1] != grid[0] * grid[1]:
        raise ValueError(
            f"expected features (J, {grid[0] * grid[1]}, D) for grid {grid}, got {tuple(features.shape)}"
        )
    j, n, d = features.shape
    _, proj = principal_components(features.reshape(j * n, d), min(4, d), center)
    scaled = _scale01(proj)
    grey = scaled[:, 0].reshape(j, *grid)
    rgb = torch.zeros(j * n, 3, dtype=torch.float64)
    rgb[:, : scaled.shape[1] - 1] = scaled[:, 1:]
    return grey, rgb.reshape(j, *grid, 3)


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
        lam, normalise, foreground, center: see :func:`foreground_mask`.

    Returns:
        ``(rgb (J, h, w, 3), foreground (J, h, w) bool, pc1 (J, h, w))``: the eq. 12 picture, the
        thresholded first component, and the first component's projection (float64, its sign is
        the arbitrary one of :func:`principal_components`).
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


def separation_auc(pc1: torch.Tensor, object_fraction: torch.Tensor, groups: Sequence[int] | None = None,
                   ) -> float:
    """How well the first component separates object patches from background, folded over sign.

    A patch counts as object when at least half of its pixels are. Per group (the PCA's images),
    the ROC AUC of the projection for "object" (:func:`cratelib.eval.metrics.roc_auc`), folded to
    ``max(AUC, 1 - AUC)`` because the sign of a principal direction is arbitrary; the mean over
    groups weighted by their number of images. 0.5: the component ignores the object; 1: a
    threshold on it separates object and background exactly.

    Args:
        pc1: ``(J, h, w)`` projections (:func:`pca_by_group`).
        object_fraction: ``(J, h, w)`` share of each patch on the object
            (:func:`cratelib.eval.localisation.object_fraction`).
        groups: the groups the PCA was computed over (``None``: one).
    """
    g = _groups(groups, len(pc1))
    total, weight = 0.0, 0
    for group in np.unique(g):
        idx = torch.from_numpy(np.flatnonzero(g == group))
        a = float(roc_auc(pc1[idx].flatten(), object_fraction[idx].flatten() >= 0.5))
        if not np.isnan(a):
            total += len(idx) * max(a, 1 - a)
            weight += len(idx)
    return total / weight if weight else float("nan")


def layerwise_pca(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    layers: Sequence[int] | None = None,
    img_size: int | None = None,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer (default: all), PC1 grey and PCs 2-4 RGB over all images (Figs. 6, 10):
    ``l -> (grey (J, h, w), rgb (J, h, w, 3))``, at ``img_size`` (default: the model's own)."""
    feats, grid = layer_features(model, images, layers, img_size, device=device, cache=cache)
    keys = list(range(len(feats))) if layers is None else list(layers)
    return {l: pca_grey_rgb(f, grid) for l, f in zip(keys, feats)}
