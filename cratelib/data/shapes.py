"""Shape classes of the synthetic data set and their exact rasterisation.

Every class is a union/difference of polygons in *unit coordinates* (x right, y up, the shape fits
in the unit disc around the origin). :func:`rasterize` places a shape in an image (centre, scale in
pixels, rotation) and returns its binary mask: the shape is drawn at ``supersample`` times the
resolution and a pixel belongs to the mask when at least half of it is covered. The synthetic images
are then *painted from these masks*, so the masks are the exact ground truth of the pixels.

The classes were chosen to stay distinguishable under their rotation limits: no allowed rotation
turns one class into another (a square turned by 45 degrees is still the only square-like class;
triangles and hearts stay roughly upright so that a heart never looks like a downward triangle;
ellipses are clearly elongated, rings have a large hole).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["Shape", "SHAPES", "CLASS_NAMES", "rasterize", "shape_extent"]


@dataclass(frozen=True)
class Shape:
    """One object class.

    Attributes:
        name: class name.
        parts: ``((vertices (V, 2) float, additive), ...)`` drawn in order; an additive part fills,
            a subtractive part cuts a hole (ring, crescent).
        max_rotation: the largest rotation (degrees, either way) that keeps the class
            recognisable and distinct; beyond a symmetry period it adds nothing new.
            :class:`~cratelib.data.SyntheticConfig` can lower it further.
    """

    name: str
    parts: tuple[tuple[np.ndarray, bool], ...]
    max_rotation: float

    @functools.cached_property
    def outline(self) -> np.ndarray:
        """Vertices of the additive parts, ``(V, 2)``: they bound the shape's extent."""
        return np.concatenate([v for v, additive in self.parts if additive])

    @functools.cached_property
    def unit_area(self) -> float:
        """Area of the shape at scale 1 (unit coordinates), measured on a 1024 x 1024 raster."""
        mask = rasterize(self, (256.0, 256.0), 250.0, 0.0, 512, supersample=2)
        return float(mask.sum()) / 250.0**2


def _ellipse(rx: float, ry: float, cx: float = 0.0, cy: float = 0.0, n: int = 96) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _regular(n: int, radius: float = 1.0, phase_deg: float = 90.0) -> np.ndarray:
    t = np.deg2rad(phase_deg) + np.arange(n) * 2.0 * math.pi / n
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = np.deg2rad(90.0) + np.arange(2 * points) * math.pi / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _heart(n: int = 96) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    xy = np.stack([x, y], axis=1)
    xy -= (xy.max(0) + xy.min(0)) / 2  # centre the bounding box
    return xy / np.abs(xy).max()


_CROSS = np.array(
    [[0.3, 1], [0.3, 0.3], [1, 0.3], [1, -0.3], [0.3, -0.3], [0.3, -1],
     [-0.3, -1], [-0.3, -0.3], [-1, -0.3], [-1, 0.3], [-0.3, 0.3], [-0.3, 1]], dtype=float,
)
_ARROW = np.array(
    [[-1, -0.25], [0.1, -0.25], [0.1, -0.65], [1, 0], [0.1, 0.65], [0.1, 0.25], [-1, 0.25]],
    dtype=float,
)

# Order matters: ``num_classes=C`` uses the first C classes.
SHAPES: tuple[Shape, ...] = (
    Shape("disc", ((_ellipse(1, 1), True),), 0.0),
    Shape("square", ((_regular(4, math.sqrt(2) * 0.72, 45.0), True),), 45.0),
    Shape("triangle", ((_regular(3), True),), 25.0),
    Shape("star", ((_star(), True),), 36.0),
    Shape("cross", ((_CROSS, True),), 45.0),
    Shape("ring", ((_ellipse(1, 1), True), (_ellipse(0.55, 0.55), False)), 0.0),
    Shape("heart", ((_heart(), True),), 25.0),
    Shape("arrow", ((_ARROW, True),), 180.0),
    Shape("crescent", ((_ellipse(1, 1), True), (_ellipse(0.85, 0.85, cx=0.5), False)), 180.0),
    Shape("ellipse", ((_ellipse(1, 0.5), True),), 90.0),
)
CLASS_NAMES: tuple[str, ...] = tuple(s.name for s in SHAPES)


def _to_pixels(vertices: np.ndarray, center: tuple[float, float], scale: float,
               angle_deg: float) -> np.ndarray:
    """Unit coordinates (y up) -> continuous pixel coordinates (x right, y down), ``(V, 2)``."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    xy = vertices @ rot.T * scale
    return np.stack([center[0] + xy[:, 0], center[1] - xy[:, 1]], axis=1)


def shape_extent(shape: Shape, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box of the rotated shape at scale 1 in pixel orientation: ``(lo (2,), hi (2,))``."""
    xy = _to_pixels(shape.outline, (0.0, 0.0), 1.0, angle_deg)
    return xy.min(0), xy.max(0)


def rasterize(shape: Shape, center: tuple[float, float], scale: float, angle_deg: float,
              size: int, supersample: int = 4) -> np.ndarray:
    """Binary mask of a placed shape.

    Args:
        shape: the class to draw.
        center: ``(x, y)`` of the unit origin in continuous pixel coordinates (pixel ``j`` spans
            ``[j, j + 1)``).
        scale: pixels per unit length.
        angle_deg: counter-clockwise rotation.
        size: the image is ``size x size``.
        supersample: sub-pixels per pixel and axis; a pixel is in the mask when at least half of
            its sub-pixels are.

    Returns:
        ``(size, size)`` bool mask (all False if the shape lies outside the image).
    """
    parts = [(_to_pixels(v, center, scale, angle_deg), add) for v, add in shape.parts]
    outline = np.concatenate([p for p, add in parts if add])
    x0, y0 = np.clip(np.floor(outline.min(0)).astype(int), 0, size)
    x1, y1 = np.clip(np.ceil(outline.max(0)).astype(int) + 1, 0, size)
    mask = np.zeros((size, size), dtype=bool)
    if x1 <= x0 or y1 <= y0:
        return mask
    s = supersample
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(canvas)
    for pts, add in parts:
        # PIL puts integer coordinates at sub-pixel centres: shift by half a sub-pixel.
        local = (pts - np.array([x0, y0])) * s - 0.5
        draw.polygon([tuple(p) for p in local.tolist()], fill=255 if add else 0)
    # Box-average the s x s sub-pixels (in C); a pixel is in when >= half of them (k_min) are.
    cover = np.asarray(canvas.reduce(s)) if s > 1 else np.asarray(canvas)
    k_min = -(-s * s // 2)
    mask[y0:y1, x0:x1] = cover > 255 * (k_min - 0.5) / (s * s)
    return mask
