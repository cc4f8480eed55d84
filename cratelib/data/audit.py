"""Cue audit: how well do trivial pixel statistics find the object, before any model is measured?

On the patch grid of a patch size ``P`` (the grid a ViT/CRATE of that patch size sees), each image
gets one score per patch from each *cue*:

* ``brightness``: mean luma ``0.299 R + 0.587 G + 0.114 B`` of the patch;
* ``saturation``: mean HSV saturation ``(max - min) / max`` of its pixels;
* ``colour_distance``: distance of the patch's mean colour from the image's median colour;
* ``edge_energy``: mean gradient magnitude (central differences of the luma) in the patch;
* ``random``: a uniform random score (the chance level of the metric, about 0.5).

and a target per patch: the patch *touches* the main object (``rule="any"``: at least one of its
pixels) or is mostly object (``rule="half"``: at least half of its pixels). The score of a cue on
an image is the ROC AUC of its patch scores against the targets (:func:`roc_auc`: the probability
that an object patch scores higher than a background patch, ties counted half). A cue at 0.5 knows
nothing; near 1 it gives the object away, and every map a model produces must then be compared with
it. The same :func:`per_image_auc` scores the models' attention maps in :mod:`cratelib.eval`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .synthetic import SyntheticData

__all__ = ["CUES", "patch_cues", "patch_targets", "roc_auc", "per_image_auc", "audit",
           "format_audit"]

CUES = ("brightness", "saturation", "colour_distance", "edge_energy", "random")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _pool(x: np.ndarray, patch: int) -> np.ndarray:
    """Mean over ``patch x patch`` blocks: ``(n, H, W[, c])`` -> ``(n, H/P, W/P[, c])``."""
    n, h, w = x.shape[:3]
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {patch}")
    return x.reshape(n, h // patch, patch, w // patch, patch, *x.shape[3:]).mean((2, 4))


def patch_cues(images: np.ndarray, patch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Each cue's per-patch score: ``{cue: (n, H/P, W/P) float}`` for ``images`` ``(n, H, W, 3)``
    uint8 (``seed`` draws the ``random`` cue)."""
    x = images.astype(np.float32) / 255
    luma = x @ _LUMA  # (n, H, W)
    top, bottom = x.max(-1), x.min(-1)
    sat = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-6), 0.0)
    gy, gx = np.gradient(luma, axis=(1, 2))
    mean_colour = _pool(x, patch)  # (n, h, w, 3)
    median = np.median(x.reshape(len(x), -1, 3), axis=1)  # (n, 3)
    rng = np.random.default_rng(seed)
    return {
        "brightness": _pool(luma, patch),
        "saturation": _pool(sat, patch),
        "colour_distance": np.linalg.norm(mean_colour - median[:, None, None], axis=-1),
        "edge_energy": _pool(np.hypot(gx, gy), patch),
        "random": rng.random(mean_colour.shape[:3]),
    }


def patch_targets(mask: np.ndarray, patch: int, rule: str = "any") -> np.ndarray:
    """Object patches of masks ``(n, H, W)`` bool: ``(n, H/P, W/P)`` bool.

    Args:
        rule: ``"any"`` (a patch touches the object) or ``"half"`` (at least half of its pixels
            are object).
    """
    if rule not in ("any", "half"):
        raise ValueError(f"rule must be 'any' or 'half', got {rule!r}")
    frac = _pool(mask.astype(np.float32), patch)
    return frac > 0 if rule == "any" else frac >= 0.5


def roc_auc(scores: np.ndarray, target: np.ndarray) -> float:
    """ROC AUC of ``scores`` against the bool ``target`` (same shape, any): the Mann-Whitney
    probability that a positive scores above a negative, ties counted half. NaN when ``target`` is
    all True or all False."""
    s, t = np.asarray(scores, np.float64).ravel(), np.asarray(target, bool).ravel()
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # Average ranks over ties (1-based).
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def per_image_auc(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:func:`roc_auc` of every image: ``scores``/``targets`` ``(n, ...)`` -> ``(n,)`` float."""
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ in shape")
    return np.array([roc_auc(s, t) for s, t in zip(scores, targets)])


def audit(data: SyntheticData, patch: int = 8, rule: str = "any", threshold: float = 0.65,
          cues: Callable[[np.ndarray, int], dict[str, np.ndarray]] = patch_cues) -> dict[str, dict]:
    """Per-image AUC of every cue against the main object, summarised.

    Args:
        data: images with their instance maps (the main object is instance 1).
        patch: patch size of the grid (8 for the zoo's 64 px models: an 8x8 grid).
        rule: object patches, see :func:`patch_targets`.
        threshold: report the share of images whose AUC exceeds it.
        cues: ``(images, patch) -> {name: (n, h, w)}``, :func:`patch_cues` by default.

    Returns:
        ``{cue: {"mean": mean AUC, "above": share of images above threshold, "auc": (n,) AUCs,
        "unsigned": mean of max(AUC, 1 - AUC)}}``. ``unsigned`` shows a cue whose sign flips
        from image to image (random polarity): a mean of 0.5 can hide a per-image giveaway.
    """
    targets = patch_targets(data.instance_map == 1, patch, rule)
    out = {}
    for name, score in cues(data.images, patch).items():
        auc = per_image_auc(score, targets)
        out[name] = {"mean": float(np.nanmean(auc)), "above": float(np.nanmean(auc > threshold)),
                     "unsigned": float(np.nanmean(np.maximum(auc, 1 - auc))), "auc": auc}
    return out


def format_audit(result: dict[str, dict], threshold: float = 0.65) -> str:
    """A plain-text table of :func:`audit`'s result."""
    lines = [f"{'cue':<16} {'mean AUC':>9} {'> ' + format(threshold, '.2f'):>8} {'unsigned':>9}"]
    for name, r in result.items():
        lines.append(f"{name:<16} {r['mean']:>9.3f} {r['above']:>8.1%} {r['unsigned']:>9.3f}")
    return "\n".join(lines)
