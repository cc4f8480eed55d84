"""Pixel cues and the cue audit: how well do trivial pixel statistics find the object?

Before a data set measures a model, it must be measured itself: if plain brightness already
singles out the object, a model's attention map that matches the object says little. On the patch
grid of a patch size ``P`` (the grid a ViT or CRATE of that patch size sees), every image gets one
score per patch from each cue (:func:`cue_maps`):

* ``brightness``: mean of the R, G, B values of the patch (as :func:`cratelib.eval.baselines.brightness_maps`);
* ``saturation``: mean HSV saturation ``(max - min) / max`` of its pixels;
* ``colour_distance``: distance of the patch's mean colour from the image's median colour;
* ``edge_energy``: mean gradient magnitude (central differences of the brightness) in the patch.

:func:`audit` scores each cue exactly as the emergence study scores a model's attention map
(:func:`cratelib.eval.scoring.score_maps`): per image, the ROC AUC of the patch scores against
the main object's patches - patches that touch it (``rule="any"``) or lie at least half on it
(``rule="half"``) - beside random scores (about 0.5). A cue near 0.5 knows nothing; near 1 it gives
the object away. ``python -m cratelib data audit`` prints the table.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cratelib.data import SyntheticData
from cratelib.eval.scoring import RULES, Targets, score_maps

__all__ = ["CUES", "cue_maps", "audit", "format_audit"]

CUES = ("brightness", "saturation", "colour_distance", "edge_energy")


def _pool(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Mean over ``patch x patch`` blocks of ``(J, H, W)``: ``(J, H/P, W/P)``."""
    if x.shape[-1] % patch or x.shape[-2] % patch:
        raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of the patch size {patch}")
    return torch.nn.functional.avg_pool2d(x[:, None], patch)[:, 0]


def _brightness(x: torch.Tensor, patch: int) -> torch.Tensor:
    return _pool(x.mean(-1), patch)


def _saturation(x: torch.Tensor, patch: int) -> torch.Tensor:
    top, bottom = x.max(-1).values, x.min(-1).values
    return _pool(torch.where(top > 0, (top - bottom) / top.clamp_min(1e-6), torch.zeros_like(top)), patch)


def _colour_distance(x: torch.Tensor, patch: int) -> torch.Tensor:
    colour = torch.stack([_pool(x[..., c], patch) for c in range(3)], -1)  # (J, h, w, 3)
    median = x.flatten(1, 2).median(1).values  # (J, 3)
    return (colour - median[:, None, None]).norm(dim=-1)


def _edge_energy(x: torch.Tensor, patch: int) -> torch.Tensor:
    gy, gx = torch.gradient(x.mean(-1), dim=(1, 2))
    return _pool(torch.hypot(gx, gy), patch)


_CUE_FUNCTIONS = {"brightness": _brightness, "saturation": _saturation,
                  "colour_distance": _colour_distance, "edge_energy": _edge_energy}


def cue_maps(images: Sequence[np.ndarray] | np.ndarray, patch: int, cues: Sequence[str] = CUES
             ) -> dict[str, torch.Tensor]:
    """The per-patch score of each of ``cues``, ``{cue: (J, H/P, W/P)}``, for J uint8 ``(H, W, 3)``
    images."""
    unknown = sorted(set(cues) - set(_CUE_FUNCTIONS))
    if unknown:
        raise ValueError(f"unknown cues {unknown}; known: {list(_CUE_FUNCTIONS)}")
    x = torch.from_numpy(np.stack(list(images))).float() / 255  # (J, H, W, 3)
    return {name: _CUE_FUNCTIONS[name](x, patch) for name in cues}


def audit(data: SyntheticData, patch: int = 8, rule: str = "any", threshold: float = 0.65, seed: int = 0
          ) -> dict[str, dict]:
    """Per-image AUC of every cue, and of random scores, against the main object, summarised.

    Args:
        data: images with their instance maps (the main object is instance 1).
        patch: patch size of the grid (8 for the zoo's 64 px models: an 8x8 grid).
        rule: object patches: ``"any"`` object pixel, or at least ``"half"`` the patch.
        threshold: also report the share of images whose AUC exceeds it.
        seed: of the random scores.

    Returns:
        ``{cue: {"mean", "above", "unsigned", "auc"}}``: the mean AUC over images, the share of
        images above ``threshold``, the mean of ``max(AUC, 1 - AUC)``, and the ``(J,)`` AUCs.
        ``unsigned`` shows a cue whose sign flips from image to image: with objects and
        backgrounds of random colours, a mean of 0.5 can hide a per-image difference that a model
        could only use if it already knew which side is the object.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    maps = cue_maps(data.images, patch)
    grid = tuple(maps["brightness"].shape[-2:])
    maps["random"] = torch.rand(len(data), *grid, generator=torch.Generator().manual_seed(seed))
    targets = Targets.from_masks(list(data.instance_map == 1), grid)
    out = {}
    for name, score in maps.items():
        auc = score_maps(score[None, :, None], targets, measures=[f"auc_{rule}"])[f"auc_{rule}"][0, :, 0]  # (J,)
        out[name] = {"mean": float(np.nanmean(auc)), "above": float(np.nanmean(auc > threshold)),
                     "unsigned": float(np.nanmean(np.maximum(auc, 1 - auc))), "auc": auc}
    return out


def format_audit(result: dict[str, dict], threshold: float = 0.65) -> str:
    """A plain-text table of :func:`audit`'s result."""
    lines = [f"{'cue':<16} {'mean AUC':>9} {'> ' + format(threshold, '.2f'):>8} {'unsigned':>9}"]
    for name, r in result.items():
        lines.append(f"{name:<16} {r['mean']:>9.3f} {r['above']:>8.1%} {r['unsigned']:>9.3f}")
    return "\n".join(lines)
