"""The embedded default data set: shapes on cluttered backgrounds, generated from a seed.

No download is needed: :func:`generate` draws a data set deterministically from a
:class:`SyntheticConfig`, with exact ground truth for every image (class label, per-pixel semantic
map, instance masks after occlusion, tight boxes). :func:`load_or_generate` caches the arrays on
disk and :class:`SyntheticDataset` wraps them as a torch ``Dataset``
(:mod:`cratelib.data.synthetic_store`).

Each image shows one *main* object (drawn on top, never occluded; its class is the label) and
optionally smaller secondary objects (placed to stay at least half visible; one hidden entirely
would be dropped). Position, scale and rotation (up to ``max_rotation`` and each class's limit,
see :mod:`cratelib.data.shapes`) are random. Two generator versions, chosen by
``SyntheticConfig.version``:

* **4** (:mod:`cratelib.data.scenes`, the default): every surface - 2-3 background regions, 1-2
  distractor blobs of object size, the objects - has a colour from one exchangeable draw, flat or
  textured, so no pixel statistic marks the object (:func:`cratelib.eval.cues.audit` measures it).
  Main objects cover 8-30 % of the image, and 0-2 secondary class objects are drawn by default.
  The default fill is the emergence study's: class-correlated textures (``fill="texture"``,
  ``texture_correlation=1.0``); ``fill="flat"`` gives the shape-only variant.
* **3** (:mod:`cratelib.data.textures`, kept for the record and for the first zoo, which was
  trained on it): light, saturated objects covering 20-45 % of the image on a dimmed, greyish
  background with small clutter. Patch brightness alone finds the object there (per-image AUC
  about 0.95 on the 8x8 grid). Ask for it with ``version=3``; a serialised config without a
  ``version`` field (:meth:`SyntheticConfig.from_json`) is version 3, which predates the field.

Randomness: image ``i`` of a split is drawn from ``np.random.default_rng([seed, split_id, 1, i])``
and the (exactly balanced, shuffled) labels from ``[seed, split_id, 0]``, so the splits
``train``/``val``/``test`` of one seed are independent draws. ``generate(config, epoch=e)`` draws
a fresh training set per epoch (see :func:`generate`;
:func:`cratelib.data.synthetic_store.epoch_images` caches its images).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from . import scenes
from .shapes import CLASS_NAMES, SHAPES, Shape, rasterize, shape_extent
from .textures import background, fill, object_colour

__all__ = ["SyntheticConfig", "SyntheticData", "CLASS_NAMES", "SPLITS", "generate", "GENERATOR_VERSIONS",
           "HELD_OUT_SEED"]

# Generator versions that can be drawn (a new drawing code gets a new number, so that caches and
# records of one version are never mixed with another).
GENERATOR_VERSIONS = (3, 4)
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
# The seed of every held-out evaluation set (the zoo's records, the emergence study's probe images);
# no training config uses it.
HELD_OUT_SEED = 10_007
# Defaults that depend on the version, for the fields left at None.
_VERSION_DEFAULTS = {
    3: {"main_area": (0.20, 0.45), "other_area": (0.04, 0.12), "min_objects": 1, "max_objects": 1,
        "clutter": 1.0},
    4: {"main_area": (0.08, 0.30), "other_area": (0.03, 0.06), "min_objects": 1, "max_objects": 3,
        "fill": "texture"},
}
# Fields that exist only in one version (they are left out of the other version's JSON).
_ONLY = {3: ("clutter",), 4: ("version", "fill", "texture_correlation", "distractors",
                              "background_regions")}


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate.

    Fields left at ``None`` take their version's default (:data:`_VERSION_DEFAULTS`); a field of
    the other version must be left at its default (``None`` or, for the version-4 ranges, the
    shown tuple) and stays so.

    Attributes:
        num_images: number of images ``n``.
        image_size: side ``H = W`` in pixels, a multiple of 8 in ``[32, 224]``.
        num_classes: ``C`` in ``[2, 10]``; the first ``C`` of :data:`CLASS_NAMES` are used.
        min_objects, max_objects: class objects per image (the main one included), drawn
            uniformly; version 3: 1..1 (3 for detection), version 4: 1..3.
        seed: non-negative seed.
        split: ``"train"``, ``"val"`` or ``"test"``: independent draws for one seed.
        main_area: range of the main object's area as a fraction of the image (version 3:
            0.20-0.45, version 4: 0.08-0.30). Thin shapes (arrow, star, triangle) are capped by
            the image size and reach about 0.25-0.40 at most.
        other_area: range of the secondary objects' areas; its maximum must be below
            ``main_area[0]`` so that the main object is always the largest.
        clutter: version 3: scales the number of small background distractors (0 = none;
            default 1).
        max_rotation: rotations are uniform in ``[-r, r]`` degrees with ``r`` the smaller of
            this and the class's own limit (:attr:`Shape.max_rotation`: its symmetry, or where
            it would start to look like another class). The default of 15 degrees keeps
            orientation a mild nuisance; full rotations (``180``) make the task much slower to
            learn for small transformers, which lack a CNN's built-in local edge detectors.
        version: generator version, 4 (default) or 3 (see the module docstring).
        fill: version 4: ``"texture"`` (default: two-tone textures on every surface, see
            :mod:`cratelib.data.scenes`) or ``"flat"`` (shape only).
        texture_correlation: version 4: probability that a class object wears its class's
            texture (else a random one); 0 makes textures uninformative. Default 1.0 with
            ``fill="texture"``, and it must be 0 with ``fill="flat"``.
        distractors: version 4: range of the number of distractor blobs (area as objects).
        background_regions: version 4: range of the number of background regions.
    """

    num_images: int
    image_size: int = 64
    num_classes: int = 10
    min_objects: int | None = None
    max_objects: int | None = None
    seed: int = 0
    split: str = "train"
    main_area: tuple[float, float] | None = None
    other_area: tuple[float, float] | None = None
    clutter: float | None = None
    max_rotation: float = 15.0
    version: int = 4
    fill: str | None = None
    texture_correlation: float | None = None
    distractors: tuple[int, int] = (1, 2)
    background_regions: tuple[int, int] = (2, 3)

    def __post_init__(self) -> None:
        if self.version not in GENERATOR_VERSIONS:
            raise ValueError(f"SyntheticConfig: version must be one of {GENERATOR_VERSIONS}, "
                             f"got {self.version!r}")
        for name in ("distractors", "background_regions"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        other = 3 if self.version == 4 else 4
        base = SyntheticConfig.__dataclass_fields__
        for name in _ONLY[other]:
            if name != "version" and getattr(self, name) != base[name].default:
                raise ValueError(f"SyntheticConfig: {name} applies to generator version {other} "
                                 f"only; got {name}={getattr(self, name)!r} with version "
                                 f"{self.version}")
        defaults = dict(_VERSION_DEFAULTS[self.version])
        if self.version == 4:
            defaults["texture_correlation"] = 1.0 if (self.fill or defaults["fill"]) == "texture" else 0.0
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
            elif isinstance(value, tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        checks = [
            (self.num_images >= 1, "num_images must be >= 1"),
            (32 <= self.image_size <= 224 and self.image_size % 8 == 0,
             "image_size must be a multiple of 8 in [32, 224]"),
            (2 <= self.num_classes <= len(SHAPES), f"num_classes must be in [2, {len(SHAPES)}]"),
            (1 <= self.min_objects <= self.max_objects <= 5,
             "need 1 <= min_objects <= max_objects <= 5"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.split in SPLITS, f"split must be one of {sorted(SPLITS)}"),
            (0 < self.main_area[0] <= self.main_area[1] < 1, "need 0 < main_area[0] <= [1] < 1"),
            (0 < self.other_area[0] <= self.other_area[1] < self.main_area[0],
             "need 0 < other_area[0] <= other_area[1] < main_area[0]"),
            (0 <= self.max_rotation <= 180, "max_rotation must be in [0, 180] degrees"),
        ]
        checks += [(self.clutter >= 0, "clutter must be >= 0")] if self.version == 3 else [
            (self.fill in ("flat", "texture"), "fill must be 'flat' or 'texture'"),
            (0 <= self.texture_correlation <= 1, "texture_correlation must be in [0, 1]"),
            (self.texture_correlation == 0 or self.fill == "texture",
             "texture_correlation > 0 needs fill='texture'"),
            (0 <= self.distractors[0] <= self.distractors[1] <= 4,
             "need 0 <= distractors[0] <= distractors[1] <= 4"),
            (1 <= self.background_regions[0] <= self.background_regions[1] <= 6,
             "need 1 <= background_regions[0] <= background_regions[1] <= 6"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SyntheticConfig: {message}; got {self}")

    def to_json(self) -> str:
        """Canonical JSON of the fields of this version (tuples become lists).

        A version-3 config serialises exactly as before version 4 existed, so its caches, the
        shipped samples and the zoo's records stay valid.
        """
        other = 3 if self.version == 4 else 4
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in _ONLY[other]}
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SyntheticConfig:
        """Inverse of :meth:`to_json`; JSON without a ``version`` field is version 3."""
        return cls(**{"version": 3, **json.loads(text)})

    def cache_key(self) -> str:
        """16 hex digits of SHA-256 over the version and the fields."""
        text = f"v{self.version}:{self.to_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A generated data set with exact ground truth.

    Attributes:
        config: what was generated.
        images: ``(n, H, W, 3)`` uint8 RGB.
        labels: ``(n,)`` int64 class of the main object, in ``[0, C)``.
        semantic: ``(n, H, W)`` uint8: 0 background, ``class_id + 1`` on visible object pixels.
        instance_map: ``(n, H, W)`` uint8: 0 background, ``k + 1`` on the visible pixels of the
            image's ``k``-th object (``k = 0`` is the main object). Visible masks are disjoint.
        distractor_map: ``(n, H, W)`` uint8: 0 elsewhere, ``j + 1`` on the visible pixels of the
            ``j``-th distractor blob (version 4; all zeros for version 3, whose small clutter is
            not tracked). Distractors are background in ``semantic`` and ``instance_map``.
    """

    config: SyntheticConfig
    images: np.ndarray
    labels: np.ndarray
    semantic: np.ndarray
    instance_map: np.ndarray
    distractor_map: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, s = self.config.num_images, self.config.image_size
        if self.distractor_map is None:
            object.__setattr__(self, "distractor_map", np.zeros((n, s, s), np.uint8))
        expected = {"images": ((n, s, s, 3), np.uint8), "labels": ((n,), np.int64),
                    "semantic": ((n, s, s), np.uint8), "instance_map": ((n, s, s), np.uint8),
                    "distractor_map": ((n, s, s), np.uint8)}
        for name, (shape, dtype) in expected.items():
            arr = getattr(self, name)
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(f"SyntheticData.{name}: expected {dtype.__name__} {shape} for "
                                 f"{self.config}, got {arr.dtype} {arr.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the ``C`` classes; ``class_names[c]`` is class id ``c``."""
        return CLASS_NAMES[: self.config.num_classes]

    @functools.cached_property
    def instances(self) -> list[list[dict]]:
        """Per image, its objects (main first) as dicts with keys ``mask`` ((H, W) bool, after
        occlusion), ``class_id`` (int in ``[0, C)``), ``box`` (tight ``(x, y, w, h)`` ints, in
        pixels) and ``area`` (pixels)."""
        out = []
        for inst, sem in zip(self.instance_map, self.semantic):
            objects = []
            for k in range(1, int(inst.max()) + 1):
                mask = inst == k
                ys, xs = np.nonzero(mask)
                box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                       int(ys.max() - ys.min() + 1))
                objects.append({"mask": mask, "class_id": int(sem[ys[0], xs[0]]) - 1, "box": box,
                                "area": int(mask.sum())})
            out.append(objects)
        return out


def _place(rng: np.random.Generator, shape: Shape, size: int, area: float, max_rotation: float
           ) -> tuple[tuple[float, float], float, float]:
    """Random ``(centre, scale, angle)`` for a shape of ``area`` (fraction) fully in the image."""
    limit = min(max_rotation, shape.max_rotation)
    angle = rng.uniform(-limit, limit)
    lo, hi = shape_extent(shape, angle)
    margin = 1.0
    scale = min(math.sqrt(area * size * size / shape.unit_area),
                (size - 2 * margin) / float((hi - lo).max()))
    low = margin - lo * scale  # (2,) smallest centre that keeps the shape inside
    span = np.maximum(size - margin - hi * scale - low, 0.0)
    cx, cy = (low + span * rng.random(2)).tolist()
    return (cx, cy), scale, angle


def _secondary_mask(rng: np.random.Generator, shape: Shape, size: int, area: float,
                    max_rotation: float, covered: np.ndarray) -> np.ndarray:
    """Full mask of a secondary object placed to be at least half visible under ``covered``.

    Tries 8 positions per size and shrinks the object (x0.7 area) up to 4 times; keeps the
    position with the largest visible fraction.
    """
    best, best_visible = None, -1.0
    for attempt in range(5):
        for _ in range(8):
            placement = _place(rng, shape, size, area * 0.7**attempt, max_rotation)
            mask = rasterize(shape, *placement, size)
            visible = float((mask & ~covered).sum()) / max(1, int(mask.sum()))
            if visible > best_visible:
                best, best_visible = mask, visible
        if best_visible >= 0.5:
            break
    return best


def _visible_placement(rng: np.random.Generator, shape: Shape, size: int, area: float,
                       max_rotation: float, covered: np.ndarray, tries: int = 16) -> np.ndarray:
    """Full mask of a secondary object at the first of up to ``tries`` random placements that
    leaves at least 80 % of it outside ``covered`` (else the most visible one)."""
    best, best_visible = None, -1.0
    for _ in range(tries):
        mask = rasterize(shape, *_place(rng, shape, size, area, max_rotation), size)
        visible = float((mask & ~covered).sum()) / max(1, int(mask.sum()))
        if visible >= 0.8:
            return mask
        if visible > best_visible:
            best, best_visible = mask, visible
    return best


def _visible_maps(classes: list[int], full: list[np.ndarray], size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Semantic and instance maps of objects listed top-down (``full[0]`` is on top)."""
    semantic = np.zeros((size, size), np.uint8)
    instance_map = np.zeros((size, size), np.uint8)
    taken = np.zeros((size, size), bool)
    k = 0
    for c, mask in zip(classes, full):  # visible = not covered by objects above
        visible = mask & ~taken
        taken |= mask
        if visible.any():
            k += 1
            instance_map[visible] = k
            semantic[visible] = c + 1
    return semantic, instance_map


def _render_v4(config: SyntheticConfig, label: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One version-4 image (see :mod:`cratelib.data.scenes`):
    ``(image (S, S, 3) uint8, semantic, instance_map, distractor_map (S, S) uint8)``."""
    size, rot = config.image_size, config.max_rotation
    n_regions = int(rng.integers(config.background_regions[0], config.background_regions[1] + 1))
    n_blobs = int(rng.integers(config.distractors[0], config.distractors[1] + 1))
    n_obj = int(rng.integers(config.min_objects, config.max_objects + 1))
    classes = [label] + rng.integers(config.num_classes, size=n_obj - 1).tolist()
    main = _place(rng, SHAPES[label], size, rng.uniform(*config.main_area), rot)
    full = [rasterize(SHAPES[label], *main, size)]
    covered = full[0].copy()
    for c in classes[1:]:
        full.append(_visible_placement(rng, SHAPES[c], size, rng.uniform(*config.other_area), rot,
                                       covered))
        covered |= full[-1]
    blobs = [scenes.blob_mask(rng, size, rng.uniform(*config.main_area)) for _ in range(n_blobs)]
    colours = scenes.surface_colours(rng, n_regions + n_blobs + n_obj)[rng.permutation(
        n_regions + n_blobs + n_obj)]
    textured = config.fill == "texture"
    n_tex = len(scenes.TEXTURES)

    def any_texture() -> int | None:
        return int(rng.integers(n_tex)) if textured else None

    img = np.zeros((size, size, 3), np.float32)
    part = scenes.regions(rng, size, n_regions)
    for r in range(n_regions):
        scenes.paint(rng, img, part == r, colours[r], any_texture())
    for j, blob in enumerate(blobs):
        scenes.paint(rng, img, blob, colours[n_regions + j], any_texture())
    # Paint bottom-up (last object first, main object last = on top).
    for k in reversed(range(n_obj)):
        own = textured and rng.random() < config.texture_correlation
        kind = classes[k] % n_tex if own else any_texture()
        scenes.paint(rng, img, full[k], colours[n_regions + n_blobs + k], kind)
    semantic, instance_map = _visible_maps(classes, full, size)
    distractor_map = np.zeros((size, size), np.uint8)
    for j, blob in enumerate(blobs):
        distractor_map[blob & ~covered] = j + 1  # later blobs lie on earlier ones
    image = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return image, semantic, instance_map, distractor_map


def _render(config: SyntheticConfig, label: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image of ``config.version``: ``(image (S, S, 3) uint8, semantic, instance_map,
    distractor_map)`` (version 3 does not track its clutter: its distractor map is all zeros)."""
    if config.version == 4:
        return _render_v4(config, label, rng)
    size = config.image_size
    img = background(rng, size, config.clutter)
    bg_mean = img.mean((0, 1))
    n_obj = int(rng.integers(config.min_objects, config.max_objects + 1))
    classes = [label] + rng.integers(config.num_classes, size=n_obj - 1).tolist()
    rot = config.max_rotation
    main = _place(rng, SHAPES[label], size, rng.uniform(*config.main_area), rot)
    full = [rasterize(SHAPES[label], *main, size)]
    covered = full[0].copy()
    for c in classes[1:]:
        area = rng.uniform(*config.other_area)
        full.append(_secondary_mask(rng, SHAPES[c], size, area, rot, covered))
        covered |= full[-1]
    # Paint bottom-up (last object first, main object last = on top).
    for mask in reversed(full):
        img[mask] = fill(rng, size, object_colour(rng, bg_mean))[mask]
    semantic, instance_map = _visible_maps(classes, full, size)
    image = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return image, semantic, instance_map, np.zeros((size, size), np.uint8)


def generate(config: SyntheticConfig, epoch: int | None = None) -> SyntheticData:
    """Draw the data set described by ``config`` (deterministic; see the module docstring).

    Args:
        epoch: ``None`` draws the split itself; an integer ``e >= 0`` draws a fresh set of the
            same size for training epoch ``e`` from ``[seed, split_id, 2 + e, ...]`` (labels) and
            ``[seed, split_id, 1, i, e]`` (image ``i``), independent of the split and of every
            other epoch, and reproducible, so that an interrupted run resumes exactly.
    """
    split_id = SPLITS[config.split]
    n, size = config.num_images, config.image_size
    if epoch is not None and (not isinstance(epoch, int) or epoch < 0):
        raise ValueError(f"epoch must be None or an int >= 0, got {epoch!r}")
    tail = [] if epoch is None else [epoch]
    label_rng = np.random.default_rng([config.seed, split_id, 0] if epoch is None
                                      else [config.seed, split_id, 2 + epoch])
    labels = label_rng.permutation(np.arange(n) % config.num_classes).astype(np.int64)
    images = np.empty((n, size, size, 3), np.uint8)
    semantic = np.empty((n, size, size), np.uint8)
    instance_map = np.empty((n, size, size), np.uint8)
    distractor_map = np.empty((n, size, size), np.uint8)
    for i in range(n):
        rng = np.random.default_rng([config.seed, split_id, 1, i, *tail])
        images[i], semantic[i], instance_map[i], distractor_map[i] = _render(
            config, int(labels[i]), rng)
    return SyntheticData(config, images, labels, semantic, instance_map, distractor_map)
