"""Write a synthetic data set in the on-disk formats of COCO and PASCAL VOC 2012.

The evaluations read COCO val2017 and VOC 2012 val from disk; exporting the synthetic data in the
very same layouts lets the same evaluation code run on it, with exact ground truth:

* :func:`export_coco`: ``<out>/<split>/<id:012d>.jpg`` and
  ``<out>/annotations/instances_<split>.json`` (COCO "instances" format: categories, images,
  annotations with RLE masks, area, tight bbox, ``iscrowd = 0``), readable by
  ``pycocotools.coco.COCO`` and :class:`cratelib.data.COCODetection`.
* :func:`export_voc`: ``<out>/JPEGImages/*.jpg``, ``SegmentationClass/*.png`` and
  ``SegmentationObject/*.png`` (palette PNGs, 255 = ignore/void, unused here),
  ``ImageSets/Segmentation/<image_set>.txt``: the ``VOCdevkit/VOC2012`` layout read by
  :class:`cratelib.data.VOCSegmentation`.

Every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from cratelib.io import atomic_write

from .synthetic import SyntheticData

__all__ = ["export_coco", "export_voc", "voc_palette", "save_image", "save_label_png"]


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map as a flat 768-entry PIL palette (index 255 = (224, 224, 192))."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def save_image(image: np.ndarray, path: str | Path, quality: int = 95) -> Path:
    """Write an ``(H, W, 3)`` uint8 image atomically; the format follows the suffix (jpg/png)."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}[path.suffix.lower()]
    options = {"quality": quality} if fmt == "JPEG" else {}
    pil = Image.fromarray(image, "RGB")
    return atomic_write(path, lambda f: pil.save(f, format=fmt, **options))


def save_label_png(label: np.ndarray, path: str | Path) -> Path:
    """Write an ``(H, W)`` uint8 label map as a VOC palette PNG, atomically."""
    pil = Image.fromarray(label.astype(np.uint8), "P")
    pil.putpalette(voc_palette())
    return atomic_write(path, lambda f: pil.save(f, format="PNG"))


def _image_name(i: int) -> str:
    return f"{i + 1:06d}"


def export_coco(data: SyntheticData, out_dir: str | Path, split: str = "val2017",
                image_format: str = "jpg", quality: int = 95) -> Path:
    """Write images and a COCO instances JSON.

    Image ``i`` gets COCO id ``i + 1`` and file ``<id:012d>.<image_format>``; class ``c`` is
    category id ``c + 1``; each visible object is one annotation with an RLE mask.

    Args:
        data: the data set.
        out_dir: root of the COCO-style tree.
        split: name of the image folder and of ``annotations/instances_<split>.json``.
        image_format: ``"jpg"`` (as COCO) or ``"png"`` (lossless).
        quality: JPEG quality.

    Returns:
        Path of the annotation JSON (what ``COCO()`` / ``COCOeval`` read).
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out_dir = Path(out_dir)
    images, annotations = [], []
    for i, (image, objects) in enumerate(zip(data.images, data.instances)):
        file_name = f"{i + 1:012d}.{image_format}"
        save_image(image, out_dir / split / file_name, quality)
        h, w = image.shape[:2]
        images.append({"id": i + 1, "file_name": file_name, "height": h, "width": w})
        for obj in objects:
            rle = mask_utils.encode(np.asfortranarray(obj["mask"].astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": obj["class_id"] + 1,
                "segmentation": rle, "area": float(obj["area"]),
                "bbox": [float(v) for v in obj["box"]], "iscrowd": 0,
            })
    categories = [{"id": c + 1, "name": name, "supercategory": "shape"}
                  for c, name in enumerate(data.class_names)]
    coco = {
        "info": {"description": "cratelib synthetic shapes", "version": "1.0",
                 "config": json.loads(data.config.to_json())},
        "licenses": [], "images": images, "annotations": annotations, "categories": categories,
    }
    text = json.dumps(coco).encode()
    return atomic_write(out_dir / "annotations" / f"instances_{split}.json",
                        lambda f: f.write(text))


def export_voc(data: SyntheticData, out_dir: str | Path, image_set: str = "val",
               quality: int = 95) -> Path:
    """Write the data set in the PASCAL VOC 2012 segmentation layout.

    ``SegmentationClass`` holds the semantic maps (0 background, ``class_id + 1`` objects),
    ``SegmentationObject`` the instance maps (``k + 1`` for the ``k``-th object); image ``i`` is
    named ``<i + 1:06d>``. The list file names every image.

    Args:
        data: the data set.
        out_dir: the ``VOC2012`` directory to create.
        image_set: name of ``ImageSets/Segmentation/<image_set>.txt``.
        quality: JPEG quality.

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    names = [_image_name(i) for i in range(len(data))]
    for name, image, sem, inst in zip(names, data.images, data.semantic, data.instance_map):
        save_image(image, out_dir / "JPEGImages" / f"{name}.jpg", quality)
        save_label_png(sem, out_dir / "SegmentationClass" / f"{name}.png")
        save_label_png(inst, out_dir / "SegmentationObject" / f"{name}.png")
    listing = "".join(f"{n}\n" for n in names).encode()
    atomic_write(out_dir / "ImageSets" / "Segmentation" / f"{image_set}.txt",
                 lambda f: f.write(listing))
    return out_dir

