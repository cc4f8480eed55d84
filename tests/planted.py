"""Planted patch features: a known answer for MaskCut, PCA and their benchmarks (a test fixture;
``bench/maskcut.py`` imports it too).

Each patch of an ``h x w`` grid gets the feature ``c_r + sigma * noise``,
where ``c_r`` is the random unit centre of the region ``r`` the patch lies in
(region 0 is the background, region ``i`` the ``i``-th planted rectangle).
Random centres in ``d >= 64`` dimensions are nearly orthogonal, so patches of
the same region have cosine similarity ``~ 1 / (1 + sigma^2)`` and patches of
different regions ``~ 0``: the affinity above tau = 0.15 is block-structured.
"""

from __future__ import annotations

from typing import Sequence

import torch

Box = tuple[int, int, int, int]  # (row0, row1, col0, col1), half-open, in patches


def planted_patch_features(
    grid: tuple[int, int] = (60, 60),
    dim: int = 384,
    objects: Sequence[Box] = ((10, 30, 12, 34),),
    sigma: float = 0.5,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(h * w, dim)`` and region labels ``(h, w)`` (0 = background).

    Args:
        grid: patch grid ``(h, w)``; 480 px at patch 8 is ``(60, 60)``.
        dim: feature size (384 = ViT-S / CRATE-T width).
        objects: planted rectangles; later ones are painted over earlier ones.
        sigma: noise scale relative to the unit centres.
        seed: seed of the generator (the result is deterministic).
    """
    h, w = grid
    labels = torch.zeros(h, w, dtype=torch.long)
    for i, (r0, r1, c0, c1) in enumerate(objects, start=1):
        if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
            raise ValueError(f"object {i} box {(r0, r1, c0, c1)} is outside the grid {grid}")
        labels[r0:r1, c0:c1] = i
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(objects) + 1, dim, generator=gen)
    centres = centres / centres.norm(dim=1, keepdim=True)
    noise = torch.randn(h * w, dim, generator=gen) / dim**0.5
    return centres[labels.flatten()] + sigma * noise, labels


SQUARE_GRID = (8, 8)
SQUARE_BOX: Box = (2, 6, 1, 5)  # rows 2-5, columns 1-4 of the 8x8 grid


def square_mask(box: Box = SQUARE_BOX, grid: tuple[int, int] = SQUARE_GRID) -> torch.Tensor:
    """``(h, w)`` bool: the patches of ``box``."""
    m = torch.zeros(grid, dtype=torch.bool)
    m[box[0]:box[1], box[2]:box[3]] = True
    return m


def square_images(num: int = 2, size: int = 64) -> tuple[torch.Tensor, list, "np.ndarray"]:
    """``num`` images of one bright square (the patches of :data:`SQUARE_BOX` on an 8x8 grid of a
    ``size`` px image) on a dark background, as evaluation samples, with features planted on the
    same square: ``(features (num, 64, 32), samples, square pixels (size, size) bool)``."""
    import numpy as np

    from cratelib.eval.maskcut import upsample_mask
    from cratelib.eval.sources import Sample

    pixels = upsample_mask(square_mask().numpy(), (size, size))
    samples, feats = [], []
    for i in range(num):
        image = np.full((size, size, 3), 30, dtype=np.uint8)
        image[pixels] = 220
        samples.append(Sample(image, i + 1, f"toy{i}"))
        feats.append(planted_patch_features(SQUARE_GRID, 32, (SQUARE_BOX,), 0.3, seed=i)[0])
    return torch.stack(feats), samples, pixels
