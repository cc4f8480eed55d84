"""Statistics of per-image scores: means with standard errors, paired differences, the main
effects of a 2x2 design, rank agreement, and summaries across seeds.

Every evaluation of :mod:`cratelib.eval` returns per-image (per-layer, per-head) arrays, so two
models scored on the same images can be compared image by image: the paired difference removes
what the images have in common (an easy image is easy for both), and its standard error says
whether the data can tell the models apart. ``nan`` entries (an image without an object, say)
are dropped, pairwise.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["mean_se", "paired", "compare", "factorial_effects", "effects_2x2", "order_agreement", "across_seeds"]


def mean_se(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error (``std(ddof=1) / sqrt(n)``) of ``values``, ``nan`` entries dropped.

    Raises:
        ValueError: fewer than 2 values are left.
    """
    v = np.asarray(values, float).ravel()
    v = v[~np.isnan(v)]
    if len(v) < 2:
        raise ValueError(f"need at least 2 values for a standard error, got {len(v)}")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))


def paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the paired differences ``a - b`` (same images, same order;
    pairs with a ``nan`` on either side are dropped)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return mean_se(a - b)


def compare(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, z: float = 2.0) -> int:
    """+1 if ``a`` is clearly above ``b`` (the paired mean difference exceeds ``z`` standard
    errors), -1 if clearly below, 0 if the data cannot tell."""
    mean, se = paired(a, b)
    return 0 if abs(mean) <= z * se else int(np.sign(mean))


def _effects(a1b1, a1b2, a2b1, a2b2) -> dict:
    return {"first": (a1b1 - a2b1 + a1b2 - a2b2) / 2,
            "second": (a1b1 - a1b2 + a2b1 - a2b2) / 2,
            "interaction": (a1b1 - a2b1 - a1b2 + a2b2) / 2}


def effects_2x2(a1b1: float, a1b2: float, a2b1: float, a2b2: float) -> dict[str, float]:
    """Main effects and interaction of a 2x2 design from its four cell values.

    Factor A has levels 1, 2 and factor B levels 1, 2; ``aXbY`` is the value with A at X and B at
    Y. ``first``: A1 minus A2 averaged over B, ``((a1b1 - a2b1) + (a1b2 - a2b2)) / 2``;
    ``second``: B1 minus B2 averaged over A; ``interaction``: how much the effect of A depends
    on B, ``((a1b1 - a2b1) - (a1b2 - a2b2)) / 2``.
    """
    return {k: float(v) for k, v in _effects(a1b1, a1b2, a2b1, a2b2).items()}


def factorial_effects(a1b1, a1b2, a2b1, a2b2) -> dict[str, tuple[float, float]]:
    """:func:`effects_2x2` image by image: each effect as ``(mean, standard error)`` over the
    images, from four ``(J,)`` arrays of per-image scores of the four cells on the same images."""
    cells = [np.asarray(c, float) for c in (a1b1, a1b2, a2b1, a2b2)]
    return {k: mean_se(v) for k, v in _effects(*cells).items()}


def order_agreement(ours: Mapping[str, float], reference: Mapping[str, float]) -> tuple[int, int]:
    """How many pairs of the names in both mappings are ordered alike: ``(concordant, pairs)``;
    ties on either side count as not concordant."""
    names = [n for n in ours if n in reference]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    same = sum(np.sign(ours[a] - ours[b]) * np.sign(reference[a] - reference[b]) > 0 for a, b in pairs)
    return int(same), len(pairs)


def across_seeds(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and spread (standard deviation, ``ddof=1``) of one number measured once per seed;
    the spread is ``nan`` for a single seed."""
    v = np.asarray(values, float).ravel()
    if len(v) == 0:
        raise ValueError("no values")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")
