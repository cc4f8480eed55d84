"""Generator version 4: scenes without pixel shortcuts.

In version 3 (:mod:`cratelib.data.textures`) objects are light and saturated on a dimmed, greyish
background, so plain patch brightness finds the object (per-image ROC AUC 0.95 on the 8x8 grid).
Version 4 removes every such cue by drawing *every surface from one distribution*:

* the background is split into 2-3 regions (a Voronoi partition with wavy borders);
* 1-2 *distractors*, irregular blobs of object size that belong to no class, lie on it;
* then 0-2 smaller secondary class objects and, on top, the main object (its class is the label).

All surfaces (regions, distractors, objects) get colours drawn jointly and *exchangeably*: one set
of colours, uniform in the RGB cube, pairwise at least :data:`MIN_CONTRAST` apart, shuffled over
the surfaces. So the object is neither brighter, nor more saturated, nor farther from the image's
median colour than the rest, in distribution (:mod:`cratelib.data.audit` measures it).

Fills: ``"flat"`` paints each surface in its colour (the shape-only variant: the class lives only
in the outline). ``"texture"`` gives every surface a two-tone texture from :data:`TEXTURES`; the
texture of a class object is its class's own (``texture_class[c]``) with probability
``texture_correlation`` and a uniformly random one otherwise, while regions and distractors always
draw it uniformly. Then the interior carries label evidence too, but only for a model that knows
which region is the object.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["MIN_CONTRAST", "TEXTURES", "surface_colours", "regions", "blob_mask", "texture",
           "paint"]

# Minimum Euclidean RGB distance (0..1 scale) between the colours of any two surfaces of an image.
MIN_CONTRAST = 0.3
# Two-tone textures: (kind, angle in degrees, period in pixels at 64 px). Class c's own texture is
# TEXTURES[c]; ten textures for the ten classes.
TEXTURES: tuple[tuple[str, float, float], ...] = (
    ("stripes", 0.0, 4.0), ("stripes", 45.0, 4.0), ("stripes", 90.0, 4.0), ("stripes", 135.0, 4.0),
    ("stripes", 0.0, 8.0), ("stripes", 90.0, 8.0), ("checker", 0.0, 6.0), ("checker", 45.0, 6.0),
    ("dots", 0.0, 6.0), ("rings", 0.0, 6.0),
)


def surface_colours(rng: np.random.Generator, n: int, tries: int = 200) -> np.ndarray:
    """``n`` RGB colours in ``[0, 1]``, ``(n, 3)`` float32, pairwise >= :data:`MIN_CONTRAST` apart.

    The whole set is redrawn until every pair is far enough (after ``tries`` sets, the set with
    the largest minimum distance is kept), so the colours are exchangeable: no position in the
    returned order is special. Callers assign them to surfaces in a random order.
    """
    best, best_gap = None, -1.0
    for _ in range(tries):
        c = rng.random((n, 3), dtype=np.float32)
        d = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(n, dtype=np.float32) * 9
        gap = float(d.min()) if n > 1 else 9.0
        if gap >= MIN_CONTRAST:
            return c
        if gap > best_gap:
            best, best_gap = c, gap
    return best


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.arange(size, dtype=np.float32) + 0.5
    return np.meshgrid(c, c)


def regions(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """A partition of the image into ``count`` regions, ``(size, size)`` int in ``[0, count)``.

    Voronoi cells of random seeds, with distances perturbed by a low-frequency wave so that the
    borders are gently curved. Every region is non-empty (seeds lie inside their own cells).
    """
    x, y = _grid(size)
    seeds = rng.uniform(0, size, (count, 2))
    dist = np.stack([np.hypot(x - sx, y - sy) for sx, sy in seeds])  # (count, S, S)
    for k in range(count):
        a, f, p = rng.uniform(0, math.pi), rng.uniform(1, 2.5) * 2 * math.pi / size, rng.uniform(0, 6.3)
        dist[k] += 0.06 * size * np.sin(f * (x * math.cos(a) + y * math.sin(a)) + p)
    return dist.argmin(0)


def blob_mask(rng: np.random.Generator, size: int, area: float, supersample: int = 4) -> np.ndarray:
    """An irregular, lumpy blob of about ``area`` (fraction of the image), fully inside the image.

    Star-convex: radius ``r(t) = r0 (1 + sum_k a_k cos(k t + phi_k))`` with harmonics k = 2..5 of
    amplitude 0.06-0.18 each: a lumpy potato, with no symmetry, corners or single dominant lobe
    count, so it resembles no class. Returns a ``(size, size)`` bool mask.
    """
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    r = np.ones_like(t)
    for k in (2, 3, 4, 5):
        r += rng.uniform(0.06, 0.18) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    r0 = math.sqrt(area * size * size / (0.5 * float(np.mean(r**2)) * 2 * math.pi))
    r0 = min(r0, (size - 2) / (2 * float(r.max())))
    extent = r0 * float(r.max())
    cx, cy = rng.uniform(extent + 1, size - extent - 1, 2)
    s = supersample
    canvas = Image.new("L", (size * s, size * s), 0)
    pts = np.stack([cx + r0 * r * np.cos(t), cy + r0 * r * np.sin(t)], 1) * s - 0.5
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in pts.tolist()], fill=255)
    return np.asarray(canvas.reduce(s)) >= 128


def texture(rng: np.random.Generator, size: int, kind: int) -> np.ndarray:
    """Texture ``TEXTURES[kind]`` with a random phase, ``(size, size)`` bool (True = second tone).

    Periods scale with the image size (given at 64 px); angles vary by up to 10 degrees.
    """
    name, angle, period = TEXTURES[kind]
    period *= size / 64
    x, y = _grid(size)
    a = math.radians(angle + rng.uniform(-10, 10))
    u = x * math.cos(a) + y * math.sin(a) + rng.uniform(0, period)
    v = -x * math.sin(a) + y * math.cos(a) + rng.uniform(0, period)
    if name == "stripes":
        return (u / period) % 1 < 0.5
    if name == "checker":
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 1
    fu, fv = (u / period) % 1 - 0.5, (v / period) % 1 - 0.5
    if name == "dots":
        return fu**2 + fv**2 < 0.1
    if name == "rings":
        return (fu**2 + fv**2 > 0.06) & (fu**2 + fv**2 < 0.2)
    raise ValueError(f"unknown texture {name!r}")


def paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, colour: np.ndarray,
          texture_kind: int | None) -> None:
    """Paint ``mask`` of ``image`` ``(S, S, 3)`` float in ``colour`` ``(3,)``, flat or textured.

    A texture's second tone is the colour moved 40 % of the way to white (dark colours) or to
    black (light ones); the same rule holds for every surface, so it is no object cue.
    """
    if texture_kind is None:
        image[mask] = colour
        return
    light = float(colour @ np.array([0.299, 0.587, 0.114], np.float32)) < 0.5
    second = colour + ((1.0 if light else 0.0) - colour) * 0.4
    tone = texture(rng, image.shape[0], texture_kind)
    image[mask & ~tone] = colour
    image[mask & tone] = second
