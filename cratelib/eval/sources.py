"""Images (and ground truth) for the evaluations, read from the on-disk formats.

* ``voc``: a PASCAL VOC 2012 tree (``JPEGImages``, palette PNGs in
  ``SegmentationClass`` with 255 = ignore, ``ImageSets/Segmentation/<set>.txt``);
* ``coco``: ``<root>/<split>/*.jpg`` and ``<root>/annotations/instances_<split>.json``;
* ``folder``: every image file of a directory, no ground truth;
* ``embedded``: cratelib's synthetic data set exported once into both layouts
  (:mod:`cratelib.data.export`) and then read by the same readers as the real
  data, so the whole path from files to metrics is exercised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class Sample:
    """One evaluation image.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        image_id: COCO image id (VOC / folder: 1-based position).
        name: file stem.
        labels: ``(H, W)`` int64 semantic labels (VOC: 0 background, 255
            ignore), or ``None``.
    """

    image: np.ndarray
    image_id: int
    name: str
    labels: np.ndarray | None = None


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB pixels of an image file."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _voc_dir(root: Path) -> Path:
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir() and (cand / "SegmentationClass").is_dir():
            return cand
    raise FileNotFoundError(
        f"no PASCAL VOC tree under {root}: expected JPEGImages/ and SegmentationClass/ "
        "in it, in VOC2012/ or in VOCdevkit/VOC2012/"
    )


def voc_samples(root: str | Path, image_set: str = "val", limit: int | None = None) -> list[Sample]:
    """The images of ``ImageSets/Segmentation/<image_set>.txt`` with their class maps."""
    voc = _voc_dir(Path(root))
    listing = voc / "ImageSets" / "Segmentation" / f"{image_set}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"missing the image list {listing}")
    names = listing.read_text().split()[:limit]
    out = []
    for i, name in enumerate(names, start=1):
        with Image.open(voc / "SegmentationClass" / f"{name}.png") as im:
            if im.mode not in ("P", "L"):
                raise ValueError(f"{name}.png: expected a palette or grey label PNG, got mode {im.mode}")
            labels = np.asarray(im).astype(np.int64)
        out.append(Sample(read_rgb(voc / "JPEGImages" / f"{name}.jpg"), i, name, labels))
    return out


def coco_annotation_file(root: str | Path, split: str = "val2017") -> Path:
    """``<root>/annotations/instances_<split>.json``, checked to exist."""
    path = Path(root) / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no COCO annotations at {path}")
    return path


def coco_samples(root: str | Path, split: str = "val2017", limit: int | None = None) -> list[Sample]:
    """The first ``limit`` images (by id) of a COCO split."""
    with open(coco_annotation_file(root, split)) as f:
        images = sorted(json.load(f)["images"], key=lambda im: im["id"])[:limit]
    return [
        Sample(read_rgb(Path(root) / split / im["file_name"]), int(im["id"]), Path(im["file_name"]).stem)
        for im in images
    ]


def folder_samples(root: str | Path, limit: int | None = None) -> list[Sample]:
    """Every image file directly in ``root`` (sorted by name), no ground truth."""
    files = sorted(p for p in Path(root).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    return [Sample(read_rgb(p), i, p.stem) for i, p in enumerate(files, start=1)]


def export_embedded(out_dir: str | Path, num_images: int = 16, image_size: int = 224, seed: int = 0) -> Path:
    """Write the embedded synthetic val set as ``<out>/VOC2012`` and ``<out>/coco`` (once).

    The directory name carries the data's cache key, so a finished export is reused.

    Returns:
        the export's root directory.
    """
    from cratelib.data.export import export_coco, export_voc
    from cratelib.data.synthetic import SyntheticConfig, load_or_generate

    config = SyntheticConfig(
        num_images=num_images, image_size=image_size, min_objects=1, max_objects=3,
        seed=seed, split="val",
    )
    root = Path(out_dir) / f"embedded-{config.cache_key()}"
    done = root / "COMPLETE"
    if not done.exists():
        data = load_or_generate(config)
        export_voc(data, root / "VOC2012")
        export_coco(data, root / "coco", split="val2017")
        done.write_text(config.to_json())  # written last: marks a finished export
    return root


def iter_batches(samples: list[Sample], batch_size: int) -> Iterator[list[Sample]]:
    """Consecutive chunks of ``batch_size`` samples."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i in range(0, len(samples), batch_size):
        yield samples[i : i + batch_size]
