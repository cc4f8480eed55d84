"""The evaluation data sets of the paper (Section 3) in their original on-disk formats.

* :class:`VOCSegmentation`: PASCAL VOC 2012 segmentation (``JPEGImages``, ``SegmentationClass``
  palette PNGs with 255 = void, ``ImageSets/Segmentation/<split>.txt``), for the coarse
  segmentation mIoU (Fig. 4b, Table 2).
* :class:`COCODetection`: COCO 2017 (``<split>/*.jpg`` + ``annotations/instances_<split>.json``),
  for MaskCut's class-agnostic detection/segmentation AP (Table 1); it exposes the JSON path and a
  ``pycocotools`` ``COCO`` object for ``COCOeval``.

:func:`cratelib.data.export_voc` / :func:`cratelib.data.export_coco` write the synthetic data in
these layouts, so the same evaluation code runs on it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._errors import DatasetFormatError, find_root, require

__all__ = ["VOCSegmentation", "COCODetection", "VOC_CLASSES", "VOC_IGNORE_INDEX"]

VOC_IGNORE_INDEX = 255
VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


class VOCSegmentation(Dataset):
    """PASCAL VOC 2012 semantic segmentation.

    Items are ``(image, target)``: ``image`` is a PIL RGB image or ``transform(image)``;
    ``target`` is the label map, an ``(H, W)`` int64 tensor at the original resolution with
    0 = background, 1..20 = classes (1..C for the synthetic export) and 255 = void/ignore.

    Args:
        root: the ``VOC2012`` folder, or a parent holding ``VOC2012`` or ``VOCdevkit/VOC2012``.
        split: list file ``ImageSets/Segmentation/<split>.txt`` (``"val"``: 1,449 images).
        transform: PIL image -> anything (the target is never transformed).
    """

    HOW = ("Download it with cratelib.data.download('voc', root) (torchvision; the Oxford mirror "
           "is sometimes offline), or get VOCtrainval_11-May-2012.tar from "
           "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and extract it into root.")

    def __init__(self, root: str | Path, split: str = "val",
                 transform: Callable | None = None) -> None:
        list_rel = f"ImageSets/Segmentation/{split}.txt"
        self.root = find_root(root, ("VOC2012", "VOCdevkit/VOC2012"), list_rel,
                              f"the VOC 2012 segmentation list '{list_rel}'", self.HOW)
        self.names = [n.strip() for n in (self.root / list_rel).read_text().splitlines()
                      if n.strip()]
        if not self.names:
            raise DatasetFormatError(f"{self.root / list_rel} lists no images. {self.HOW}")
        for sub in ("JPEGImages", "SegmentationClass"):
            require(self.root / sub, f"the VOC folder {sub!r}", self.HOW)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.names)

    def label(self, i: int) -> np.ndarray:
        """Label map of item ``i``: ``(H, W)`` uint8 palette indices (255 = void)."""
        path = self.root / "SegmentationClass" / f"{self.names[i]}.png"
        with Image.open(require(path, "a VOC label PNG", self.HOW)) as img:
            if img.mode not in ("P", "L"):
                raise DatasetFormatError(
                    f"{path}: expected a palette (mode 'P') PNG whose indices are class ids, got "
                    f"mode {img.mode!r} (colour-rendered labels cannot be read). {self.HOW}")
            return np.array(img)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor]:
        path = self.root / "JPEGImages" / f"{self.names[i]}.jpg"
        with Image.open(require(path, "a VOC image", self.HOW)) as img:
            image = img.convert("RGB")
        target = self.label(i)
        if target.shape != (image.height, image.width):
            raise DatasetFormatError(f"{self.names[i]}: label {target.shape} and image "
                                     f"{(image.height, image.width)} differ in size. {self.HOW}")
        return (self.transform(image) if self.transform else image), torch.from_numpy(
            target.astype(np.int64))


class COCODetection(Dataset):
    """COCO images with their ids, for class-agnostic detection / instance segmentation AP.

    Items are ``(image, image_id)``: ``image`` is a PIL RGB image or ``transform(image)``. The
    ground truth stays in the JSON: use :attr:`annotation_file` / :attr:`coco` with ``COCOeval``.

    Args:
        root: folder holding ``<split>/`` and ``annotations/instances_<split>.json`` (or a parent
            holding ``coco/``).
        split: ``"val2017"`` (5,000 images) or another COCO-style split name.
        transform: PIL image -> anything.

    Attributes:
        annotation_file: path of the instances JSON.
        images: the JSON's image records (``id``, ``file_name``, ``height``, ``width``), by id.
    """

    HOW = ("Get http://images.cocodataset.org/zips/val2017.zip and "
           "http://images.cocodataset.org/annotations/annotations_trainval2017.zip and extract "
           "both into root (or call cratelib.data.download('coco', root)).")

    def __init__(self, root: str | Path, split: str = "val2017",
                 transform: Callable | None = None) -> None:
        ann_rel = f"annotations/instances_{split}.json"
        self.root = find_root(root, ("coco",), ann_rel, f"the COCO annotations '{ann_rel}'",
                              self.HOW)
        self.annotation_file = self.root / ann_rel
        self.image_dir = require(self.root / split, f"the COCO image folder {split!r}", self.HOW)
        expected = (f"{self.annotation_file}: expected a COCO instances JSON object with "
                    f"'images' (id, file_name, ...), 'annotations' and 'categories'")
        try:
            data = json.loads(self.annotation_file.read_text())
            missing = [k for k in ("images", "annotations", "categories") if k not in data]
            self.images = sorted(data["images"], key=lambda r: r["id"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DatasetFormatError(f"{expected} ({err!r}). {self.HOW}") from err
        if missing:
            raise DatasetFormatError(f"{expected}; missing {missing}. {self.HOW}")
        self.categories = data["categories"]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_ids(self) -> list[int]:
        """COCO image ids in item order."""
        return [r["id"] for r in self.images]

    @functools.cached_property
    def coco(self):
        """``pycocotools.coco.COCO`` of :attr:`annotation_file` (its progress prints are muted)."""
        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(self.annotation_file))

    def __getitem__(self, i: int) -> tuple[Any, int]:
        record = self.images[i]
        path = self.image_dir / record["file_name"]
        with Image.open(require(path, "a COCO image listed in the JSON", self.HOW)) as img:
            image = img.convert("RGB")
        return (self.transform(image) if self.transform else image), int(record["id"])
