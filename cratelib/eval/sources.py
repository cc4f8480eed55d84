"""Images (and ground truth) for the evaluations, as plain arrays.

Thin adapters over :mod:`cratelib.data`'s loaders:

* ``voc``: PASCAL VOC 2012 (:class:`cratelib.data.VOCSegmentation`), label maps
  with 0 background and 255 ignore;
* ``coco``: a COCO split (:class:`cratelib.data.COCODetection`), ground truth
  in its instances JSON;
* ``folder``: every image file of a directory, no ground truth;
* ``embedded``: cratelib's synthetic shapes written in both layouts, read by
  the same two loaders as the real data: the shipped 8-image, 224 px sample
  (``shapes224``), or a larger synthetic val set exported once on demand
  (:func:`embedded_root`, :func:`embedded_coco`);
* any :class:`cratelib.data.SyntheticData` (e.g. the held-out test images of
  the zoo) as samples with label maps and a COCO export
  (:func:`held_out_samples`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cratelib.data import COCODetection, SyntheticConfig, SyntheticData, VOCSegmentation, export_coco, export_voc
from cratelib.data import load_or_generate, sample_dir
from cratelib.data.sample import SAMPLE_CONFIGS
from cratelib.eval.coco_eval import class_agnostic_coco
from cratelib.io import atomic_write_text, cache_home

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
EMBEDDED_SAMPLE = "shapes224"


@dataclass
class Sample:
    """One evaluation image.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        image_id: COCO image id (VOC / folder: 1-based position).
        name: file stem.
        labels: ``(H, W)`` int64 semantic labels (0 background, 255 ignore) or ``None``.
    """

    image: np.ndarray
    image_id: int
    name: str
    labels: np.ndarray | None = None


def voc_samples(root: str | Path, split: str = "val", limit: int | None = None) -> list[Sample]:
    """The first ``limit`` images of a VOC segmentation split, with their label maps."""
    voc = VOCSegmentation(root, split=split)
    n = len(voc) if limit is None else min(limit, len(voc))
    out = []
    for i in range(n):
        image, target = voc[i]
        out.append(Sample(np.asarray(image), i + 1, voc.names[i], target.numpy()))
    return out


def coco_samples(root: str | Path, split: str = "val2017", limit: int | None = None) -> tuple[list[Sample], Path]:
    """The first ``limit`` images (by id) of a COCO split and the path of its instances JSON."""
    coco = COCODetection(root, split=split)
    n = len(coco) if limit is None else min(limit, len(coco))
    out = []
    for i in range(n):
        image, image_id = coco[i]
        out.append(Sample(np.asarray(image), image_id, Path(coco.images[i]["file_name"]).stem))
    return out, coco.annotation_file


def folder_samples(root: str | Path, limit: int | None = None) -> list[Sample]:
    """Every image file directly in ``root`` (sorted by name), no ground truth."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a directory of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    out = []
    for i, path in enumerate(files, start=1):
        with Image.open(path) as im:
            out.append(Sample(np.asarray(im.convert("RGB")), i, path.stem))
    return out


def embedded_root(num_images: int, cache_dir: str | Path | None = None) -> Path:
    """Folder with ``VOC2012/``, ``val2017/`` and ``annotations/`` of the embedded data.

    Up to 8 images: the shipped ``shapes224`` sample.  More: a synthetic val
    set of ``num_images`` 224 px images with 1-3 objects, exported once into
    ``cache_dir`` (default: ``cache_home("eval", "data")``, the folder the
    ``evaluate`` command uses; the folder name carries the data's cache key; a
    marker file written last tells a finished export).
    """
    if num_images <= SAMPLE_CONFIGS[EMBEDDED_SAMPLE].num_images:
        return sample_dir(EMBEDDED_SAMPLE)
    config = SyntheticConfig(num_images, image_size=224, min_objects=1, max_objects=3, split="val",
                             version=3)
    root = Path(cache_dir or cache_home("eval", "data")) / f"embedded-{config.cache_key()}"
    if not (root / "COMPLETE").exists():
        data = load_or_generate(config)
        export_voc(data, root / "VOC2012", image_set="val")
        export_coco(data, root, split="val2017")
        atomic_write_text(root / "COMPLETE", config.to_json())
    return root


def embedded_coco(num_images: int, cache_dir: str | Path | None = None) -> tuple[list[Sample], Path]:
    """The embedded data in COCO format (:func:`embedded_root`): ``num_images`` samples with 1-3
    objects each and the path of their instances JSON."""
    return coco_samples(embedded_root(num_images, cache_dir), "val2017", num_images)


def gt_masks(gt: str | Path | dict, image_id: int) -> list[np.ndarray]:
    """The ground-truth object masks ``(H, W)`` bool of one image of a COCO instances file."""
    coco = class_agnostic_coco(gt)
    return [coco.annToMask(a).astype(bool) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]


def held_out_samples(data: SyntheticData, folder: str | Path) -> tuple[list[Sample], Path]:
    """The images of ``data`` as evaluation samples, and their COCO instances JSON.

    Sample ``i`` has COCO id ``i + 1`` (the id :func:`cratelib.data.export_coco` gives image
    ``i``) and the semantic map as its label map (0 background, ``class + 1`` on the object), so
    the same list serves eq. 14 (:func:`cratelib.eval.segmentation.layerwise_miou`) and MaskCut's
    AP (:func:`cratelib.eval.maskcut_eval.layerwise_maskcut`).

    Args:
        data: e.g. the held-out test set of the zoo.
        folder: where the COCO export (images and ``annotations/``) is written.

    Returns:
        ``(samples, path of the instances JSON)``.
    """
    gt = export_coco(data, folder, split="val2017", image_format="png")
    samples = [Sample(image, i + 1, f"{i + 1:06d}", sem.astype(np.int64))
               for i, (image, sem) in enumerate(zip(data.images, data.semantic))]
    return samples, gt
