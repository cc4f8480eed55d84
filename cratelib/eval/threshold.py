"""Binarising attention maps: the two readings of "keep P = 60 %".

Appendix B.3 of the paper says: "set the top P = 60 % entries to 1 and the
rest to 0" (``mode="top-entries"``).  DINO (Caron et al. 2021), whose
procedure the paper says it follows, instead keeps the smallest set of
patches that holds P of the attention *mass* (``mode="mass"``).  On a peaked
map the two differ a lot: 60 % of the entries is most of the image, 60 % of
the mass may be a handful of patches.  Both are offered; every function here
works on the last two axes (the patch grid) and any leading axes.
"""

from __future__ import annotations

from typing import Literal

import torch

ThresholdMode = Literal["top-entries", "mass"]


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _check_grid(maps: torch.Tensor) -> None:
    if maps.dim() < 2:
        raise ValueError(
            f"expected maps of shape (..., h, w), got shape {tuple(maps.shape)}"
        )


def top_entries_mask(maps: torch.Tensor, fraction: float = 0.6) -> torch.Tensor:
    """Keep the ``round(fraction * N)`` largest entries of each map (App. B.3).

    Args:
        maps: ``(..., h, w)`` real maps, ``N = h * w``.
        fraction: share of the *entries* set to 1; the paper's P = 0.6.

    Returns:
        ``(..., h, w)`` bool masks with exactly ``round(fraction * N)`` True
        entries each (ties broken by ``torch.topk``'s order).
    """
    _check_grid(maps)
    _check_fraction("fraction", fraction)
    flat = maps.flatten(-2)  # (..., N)
    k = int(round(fraction * flat.shape[-1]))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        idx = flat.topk(k, dim=-1).indices
        mask.scatter_(-1, idx, True)
    return mask.view(maps.shape)


def mass_mask(maps: torch.Tensor, mass: float = 0.6) -> torch.Tensor:
    """Keep the smallest set of largest entries holding ``mass`` of the total (DINO).

    Entries are sorted ascending and an entry is kept when the cumulative
    share up to and including it exceeds ``1 - mass``; the kept set is the
    top entries whose sum is at least ``mass`` of the map's sum, and no
    smaller top set reaches it.  Maps must be non-negative (attention weights).

    Args:
        maps: ``(..., h, w)`` non-negative maps (need not sum to one).
        mass: share of the attention mass to keep; DINO's default 0.6.

    Returns:
        ``(..., h, w)`` bool masks.
    """
    _check_grid(maps)
    _check_fraction("mass", mass)
    if (maps < 0).any():
        raise ValueError("mass_mask expects non-negative maps (attention weights)")
    flat = maps.flatten(-2).double()  # (..., N)
    val, idx = flat.sort(dim=-1)
    total = val.sum(-1, keepdim=True).clamp_min(torch.finfo(val.dtype).tiny)
    keep_sorted = (val / total).cumsum(-1) > (1.0 - mass)
    mask = torch.zeros_like(keep_sorted).scatter_(-1, idx, keep_sorted)
    return mask.view(maps.shape)


def threshold_maps(
    maps: torch.Tensor, p: float = 0.6, mode: ThresholdMode = "top-entries"
) -> torch.Tensor:
    """Binarise ``(..., h, w)`` maps at P = ``p`` by ``mode`` ("top-entries" or "mass")."""
    if mode == "top-entries":
        return top_entries_mask(maps, p)
    if mode == "mass":
        return mass_mask(maps, p)
    raise ValueError(f"mode must be 'top-entries' or 'mass', got {mode!r}")
