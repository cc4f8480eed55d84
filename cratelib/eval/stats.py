"""Statistics of per-image scores: means with standard errors, paired differences, the main
effects of a 2x2 design, and summaries across seeds.

Every evaluation of :mod:`cratelib.eval` returns per-image (per-layer, per-head) arrays, so two
models scored on the same images can be compared image by image: the paired difference removes
what the images have in common (an easy image is easy for both), and its standard error says
whether the data can tell the models apart. ``nan`` entries (an image without an object, say)
are dropped, pairwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["SeedBand", "seed_bands", "mean_std", "mean_se", "paired", "effects_2x2", "across_seeds"]


def mean_std(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation along ``axis``, ``nan`` entries dropped."""
    v = np.asarray(values, float)
    return np.nanmean(v, axis), np.nanstd(v, axis)


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


def effects_2x2(a1b1: float, a1b2: float, a2b1: float, a2b2: float) -> dict[str, float]:
    """Main effects and interaction of a 2x2 design from its four cell values.

    Factor A has levels 1, 2 and factor B levels 1, 2; ``aXbY`` is the value with A at X and B at
    Y. ``first``: A1 minus A2 averaged over B, ``((a1b1 - a2b1) + (a1b2 - a2b2)) / 2``;
    ``second``: B1 minus B2 averaged over A; ``interaction``: how much the effect of A depends
    on B, ``((a1b1 - a2b1) - (a1b2 - a2b2)) / 2``.
    """
    return {"first": float(a1b1 - a2b1 + a1b2 - a2b2) / 2, "second": float(a1b1 - a1b2 + a2b1 - a2b2) / 2,
            "interaction": float(a1b1 - a2b1 - a1b2 + a2b2) / 2}


def across_seeds(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and spread (standard deviation, ``ddof=1``) of one number measured once per seed;
    the spread is ``nan`` for a single seed."""
    v = np.asarray(values, float).ravel()
    if len(v) == 0:
        raise ValueError("no values")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


@dataclass
class SeedBand:
    """One model's measure along an axis (layers, epochs, stages) across its training seeds.

    Attributes:
        x: the positions, sorted.
        values: ``(X, S)`` each seed's value at each position (``nan`` where a seed lacks it).
        mean, low, high: ``(X,)`` the mean over the seeds and their range.
    """

    x: list
    values: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def seeds(self) -> int:
        return self.values.shape[1]

    def means(self) -> dict:
        """``{x: mean over the seeds}``."""
        return {x: float(m) for x, m in zip(self.x, self.mean)}


def seed_bands(curves: Mapping[str, Mapping[int, Mapping]]) -> dict[str, SeedBand]:
    """:class:`SeedBand` of every model of ``{model: {seed: {x: value}}}`` (e.g.
    :func:`cratelib.eval.study.tables.seed_curves`)."""
    out = {}
    for name, seeds in curves.items():
        xs = sorted({x for values in seeds.values() for x in values}, key=lambda x: (isinstance(x, str), x))
        table = np.array([[values.get(x, np.nan) for values in seeds.values()] for x in xs], float).reshape(len(xs), -1)
        out[name] = SeedBand(xs, table, np.nanmean(table, 1), np.nanmin(table, 1), np.nanmax(table, 1))
    return out
