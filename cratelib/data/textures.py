"""Colours, fill patterns and cluttered backgrounds of the synthetic images.

All functions draw from a ``numpy.random.Generator`` and return float images in ``[0, 1]``.
Contrast is budgeted on purpose: the background is a dull, darker tone (value <= ~0.5) with
weak patterns and small distractors, while objects are light (value >= 0.8), of any hue, and
filled with a pattern of their own. So an object stands out from its surroundings, but neither
its colour nor its pattern tells its class.

Why light objects on a darker background: with objects both lighter and darker than the
background (an earlier version), a small ViT stayed at chance for 450+ steps on CPU, whereas with
this polarity it left chance after ~150 steps and reached 81 % at 600 steps (a CNN learns either
version quickly). A consistent polarity makes "object patch" an easy first feature for a
transformer; the shape must still be read to get the class.
"""

from __future__ import annotations

import colorsys
import functools
import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["object_colour", "pattern", "fill", "background"]

# Minimum RGB distance (0..1 scale, Euclidean) between an object's colour and the mean background.
MIN_OBJECT_CONTRAST = 0.35
# The background (with its distractors) is dimmed by this factor, so it stays darker than objects.
BACKGROUND_GAIN = 0.7


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)``, each ``(size, size)`` float32."""
    c = np.arange(size, dtype=np.float32) + 0.5
    return np.meshgrid(c, c)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def object_colour(rng: np.random.Generator, background_mean: np.ndarray) -> np.ndarray:
    """A light colour of any hue, ``(3,)``, at least ``MIN_OBJECT_CONTRAST`` from the background.

    HSV with saturation in ``[0.3, 0.9]`` and value in ``[0.8, 1.0]``; redrawn (up to 16 times,
    then the farthest is kept) while too close to ``background_mean`` ``(3,)``.
    """
    best, best_dist = None, -1.0
    for _ in range(16):
        c = _hsv(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.8, 1.0))
        dist = float(np.linalg.norm(c - background_mean))
        if dist >= MIN_OBJECT_CONTRAST:
            return c
        if dist > best_dist:
            best, best_dist = c, dist
    return best


def pattern(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """A ``(size, size)`` pattern in ``[0, 1]``; periods scale with the image size.

    Args:
        kind: ``"solid"`` (zeros), ``"stripes"``, ``"checker"``, ``"dots"`` or ``"gradient"``;
            all but solid have a random orientation and phase.
    """
    x, y = _grid(size)
    if kind == "solid":
        return np.zeros((size, size), dtype=np.float32)
    a = rng.uniform(0.0, math.pi)
    u = x * math.cos(a) + y * math.sin(a) + rng.uniform(0, size)
    v = -x * math.sin(a) + y * math.cos(a) + rng.uniform(0, size)
    period = rng.uniform(4.0, 9.0) * size / 64
    if kind == "stripes":
        return (np.sin(2 * math.pi * u / period) > 0).astype(np.float32)
    if kind == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "dots":
        fu, fv = u / period % 1 - 0.5, v / period % 1 - 0.5
        return (fu**2 + fv**2 < 0.09).astype(np.float32)
    if kind == "gradient":
        return ((u - u.min()) / (np.ptp(u) + 1e-6)).astype(np.float32)
    raise ValueError(f"unknown pattern kind {kind!r}")


OBJECT_PATTERNS = ("solid", "stripes", "checker", "dots", "gradient")


def fill(rng: np.random.Generator, size: int, colour: np.ndarray) -> np.ndarray:
    """Texture of one object: its colour modulated by a random pattern, ``(size, size, 3)``.

    The pattern mixes ``colour`` with a darker shade of it (55-75 %) that keeps the hue.
    """
    p = pattern(rng, size, OBJECT_PATTERNS[rng.integers(len(OBJECT_PATTERNS))])
    shade = colour * rng.uniform(0.55, 0.75)
    return colour * (1 - p[..., None]) + shade * p[..., None]


def _smooth_field(rng: np.random.Generator, size: int, cells: int, amplitude: float) -> np.ndarray:
    """Low-frequency colour noise, ``(size, size, 3)`` in ``[-amplitude, amplitude]``."""
    small = rng.uniform(-amplitude, amplitude, size=(cells, cells, 3)).astype(np.float32)
    up = Image.fromarray(((small / amplitude + 1) * 127.5).astype(np.uint8), "RGB")
    up = np.asarray(up.resize((size, size), Image.BICUBIC), dtype=np.float32)
    return (up / 127.5 - 1) * amplitude


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float) -> list[tuple]:
    """An irregular polygon (a random-radius star-convex blob) around ``(cx, cy)``."""
    n = int(rng.integers(5, 9))
    t = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = radius * rng.uniform(0.5, 1.0, n)
    return list(zip((cx + r * np.cos(t)).tolist(), (cy + r * np.sin(t)).tolist()))


def background(rng: np.random.Generator, size: int, clutter: float = 1.0) -> np.ndarray:
    """A busy, darker background with distractors, ``(size, size, 3)`` float in ``[0, 1]``.

    Layers: a desaturated mid-tone base colour; smooth colour noise; a weak stripe/checker/dot
    pattern; then ``round(clutter * U{6..12} * (size / 64))`` distractors, each an irregular blob
    (radius 2-6 % of the image), a thin line or a small dot, in colours drawn near the background
    or, for a third of them, from the object palette. Everything is then dimmed by
    ``BACKGROUND_GAIN``. Distractors are far smaller than objects and never regular shapes, so
    they are clearly not class objects.

    Args:
        clutter: scales the number of distractors (0 disables them).
    """
    base = _hsv(rng.random(), rng.uniform(0.05, 0.35), rng.uniform(0.35, 0.65))
    img = base + _smooth_field(rng, size, int(rng.integers(3, 7)), 0.12)
    kind = ("stripes", "checker", "dots", "solid")[rng.integers(4)]
    img = img + rng.uniform(0.04, 0.10) * (pattern(rng, size, kind)[..., None] - 0.5)
    canvas = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    n = int(round(clutter * rng.integers(6, 13) * size / 64))
    for _ in range(n):
        if rng.random() < 1 / 3:
            c = object_colour(rng, base)
        else:
            c = np.clip(base + rng.uniform(-0.25, 0.25, 3), 0, 1)
        colour = tuple(int(v) for v in (c * 255).astype(np.uint8))
        cx, cy = rng.uniform(0, size, 2)
        kind_d = rng.random()
        if kind_d < 0.5:
            draw.polygon(_blob(rng, cx, cy, size * rng.uniform(0.02, 0.06)), fill=colour)
        elif kind_d < 0.85:
            length, angle = size * rng.uniform(0.1, 0.35), rng.uniform(0, 2 * math.pi)
            end = (cx + length * math.cos(angle), cy + length * math.sin(angle))
            draw.line([(cx, cy), end], fill=colour, width=max(1, round(size / 48)))
        else:
            r = size * rng.uniform(0.01, 0.02)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    return np.asarray(canvas, dtype=np.float32) * (BACKGROUND_GAIN / 255)
