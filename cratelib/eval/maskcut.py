"""MaskCut (App. B.4, Algorithm 4; Wang et al. 2023, CutLER) on patch features.

For ``i = 1..n`` (n = 3):

1. build the affinity of the patches not yet taken (taken patches get zero
   features, so eps affinity to everything, as the official code does) and
   take the normalized-cut vector ``x`` (:mod:`cratelib.eval.ncut`);
2. bipartition at the mean, ``x > mean(x)``;
3. foreground = the side holding the seed ``argmax |x|``; if that side holds
   ``corner_limit`` or more of the 4 grid corners, take the other side, and if
   that one does too, this cut gives no object (see *Corners* below);
4. keep the 4-connected component (``scipy.ndimage.label``) of the side's
   extreme patch ``argmax(s * x)`` (``s = +-1`` the side's sign);
5. from the second cut on, drop the mask if its IoU with the previous cut's
   mask exceeds 0.5 or it covers at most 1 % of the grid;
6. add the mask to the taken patches; report it minus the earlier masks.

Corners: the official ``maskcut.py`` reverses at 3 or more corners
(``nc >= 3``), the default here; ``corner_limit=2`` gives the stricter rule
of "at least two corners".  The official code decides the side from the
eigenvector's sign as LAPACK returns it, which can keep a corner-heavy side;
here the rule is applied to the seed's side, so the result does not depend on
the arbitrary sign of ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch

from cratelib.eval.metrics import iou
from cratelib.eval.ncut import Solver, second_eigenvector


@dataclass
class MaskCutResult:
    """Output of :func:`maskcut` for one image.

    Attributes:
        masks: ``(n, h, w)`` bool patch masks, one per cut; an all-False mask
            means the cut found no acceptable object.
        eigenvectors: ``(n, h, w)`` the normalized-cut vector of each cut.
        eigenvalues: ``(n,)`` its generalised eigenvalue (the relaxed ncut value).
    """

    masks: np.ndarray
    eigenvectors: np.ndarray
    eigenvalues: np.ndarray


def num_corners(mask: np.ndarray) -> int:
    """How many of the 4 corner cells of a ``(h, w)`` bool mask are set."""
    return int(mask[0, 0]) + int(mask[0, -1]) + int(mask[-1, 0]) + int(mask[-1, -1])


def choose_foreground(
    x: np.ndarray, grid: tuple[int, int], corner_limit: int = 3
) -> tuple[np.ndarray, int] | None:
    """Steps 2-4: the seed's connected component of the foreground side of ``x``.

    Args:
        x: ``(N,)`` normalized-cut vector, ``N = h * w`` in row-major order.
        grid: ``(h, w)``.
        corner_limit: a side holding this many corners is not foreground.

    Returns:
        ``(mask (h, w) bool, seed index)`` or ``None`` when both sides hold
        ``corner_limit`` or more corners.
    """
    h, w = grid
    if x.shape != (h * w,):
        raise ValueError(f"expected a vector of {h * w} = {h}x{w} entries, got shape {x.shape}")
    positive = (x > x.mean()).reshape(h, w)
    seed = int(np.argmax(np.abs(x)))
    sign = 1.0 if positive.flat[seed] else -1.0
    side = positive if sign > 0 else ~positive
    if num_corners(side) >= corner_limit:
        sign, side = -sign, ~side
        if num_corners(side) >= corner_limit:
            return None
    seed = int(np.argmax(sign * x))
    labels, _ = scipy.ndimage.label(side)
    return labels == labels.flat[seed], seed


@dataclass
class CutExplanation:
    """The decisions of one normalized cut (steps 2-4 of Alg. 4, as :func:`choose_foreground`
    makes them), kept for display.

    Attributes:
        positive: ``(h, w)`` bool, ``x > mean(x)``: one side of the bipartition.
        seed: ``(row, col)`` of ``argmax |x|``, the most confident patch.
        side: ``(h, w)`` bool, the side holding the seed.
        corners: how many of the 4 grid corners ``side`` holds.
        flipped: the corner rule rejected the seed's side and took the other one.
        rejected: both sides hold too many corners: the cut gives no object.
        mask: ``(h, w)`` bool, the connected component kept (empty when rejected).
    """

    positive: np.ndarray
    seed: tuple[int, int]
    side: np.ndarray
    corners: int
    flipped: bool
    rejected: bool
    mask: np.ndarray


def explain_cut(x: np.ndarray, corner_limit: int = 3) -> CutExplanation:
    """Steps 2-4 of Alg. 4 on an ``(h, w)`` normalized-cut vector, with every decision kept."""
    x = np.asarray(x, dtype=float)
    h, w = x.shape
    positive = x > x.mean()
    seed = int(np.argmax(np.abs(x)))
    side = positive if positive.flat[seed] else ~positive
    corners = num_corners(side)
    chosen = choose_foreground(x.reshape(-1), (h, w), corner_limit)
    mask = np.zeros((h, w), dtype=bool) if chosen is None else chosen[0]
    return CutExplanation(positive, divmod(seed, w), side, corners, corners >= corner_limit, chosen is None, mask)


def explain_cuts(result: "MaskCutResult", corner_limit: int = 3) -> list[CutExplanation]:
    """:func:`explain_cut` of every cut of a :func:`maskcut` result, in order."""
    return [explain_cut(x, corner_limit) for x in result.eigenvectors]


def maskcut(
    features: torch.Tensor | np.ndarray,
    grid: tuple[int, int],
    num_objects: int = 3,
    tau: float = 0.15,
    eps: float = 1e-5,
    binary: bool = True,
    solver: Solver = "auto",
    corner_limit: int = 3,
    warm_start: bool = True,
) -> MaskCutResult:
    """Algorithm 4 on one image's patch features.

    Args:
        features: ``(N, d)`` patch features of the last layer, ``N = h * w``
            (CRATE: the heads' ``U_k^T z_i`` concatenated, so ``<f_i, f_j> =
            sum_k <U_k^T z_i, U_k^T z_j>`` is the paper's ``M_ij``; ViT: keys).
        grid: patch grid ``(h, w)``.
        num_objects: n, the number of cuts (paper: 3).
        tau: affinity threshold on the cosine similarity (paper: 0.15).
        eps, binary: graph weights, see :mod:`cratelib.eval.ncut`.
        solver: ``"auto"`` (torch on CUDA features, else sparse), ``"dense"``,
            ``"sparse"`` or ``"torch"``.
        corner_limit: see the module doc (official: 3).
        warm_start: start the sparse solver of cut ``i`` from cut ``i - 1``'s vector.

    Returns:
        a :class:`MaskCutResult` with ``n`` masks at patch resolution.
    """
    feats = torch.as_tensor(features)
    h, w = grid
    if feats.dim() != 2 or feats.shape[0] != h * w:
        raise ValueError(
            f"expected features (N, d) with N = {h}*{w} = {h * w}, got shape {tuple(feats.shape)}"
        )
    if num_objects < 1:
        raise ValueError(f"num_objects must be >= 1, got {num_objects}")
    taken = np.zeros((h, w), dtype=bool)
    found = np.zeros((h, w), dtype=bool)
    previous = np.zeros((h, w), dtype=bool)
    masks, vectors, values = [], [], []
    x = None
    for i in range(num_objects):
        keep = torch.as_tensor(~taken.reshape(-1), device=feats.device)
        x, lam = second_eigenvector(
            feats * keep[:, None].to(feats.dtype), tau, eps, binary, solver,
            x0=x if warm_start else None,
        )
        chosen = choose_foreground(x, grid, corner_limit)
        mask = np.zeros((h, w), dtype=bool) if chosen is None else chosen[0]
        if i > 0 and (iou(previous, mask) > 0.5 or mask.mean() <= 0.01):
            mask = np.zeros((h, w), dtype=bool)
        previous = mask
        taken |= mask
        masks.append(mask & ~found)
        found |= mask
        vectors.append(x.reshape(h, w))
        values.append(lam)
    return MaskCutResult(np.stack(masks), np.stack(vectors), np.asarray(values))


def upsample_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a ``(h, w)`` bool mask to ``size = (H, W)`` pixels."""
    mask = np.asarray(mask, dtype=bool)
    rows = (np.arange(size[0]) * mask.shape[0]) // size[0]
    cols = (np.arange(size[1]) * mask.shape[1]) // size[1]
    return mask[rows[:, None], cols[None, :]]


def mask_to_box(mask: np.ndarray) -> list[float] | None:
    """Tight box ``[x, y, width, height]`` (COCO, pixels) of a bool mask; ``None`` if empty."""
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
