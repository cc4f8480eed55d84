"""Shared fixtures: COCO ground truth built from object masks."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

from cratelib.eval.coco_eval import encode_mask

ObjectMasks = Mapping[int, Sequence["np.ndarray | tuple[np.ndarray, int]"]]


def coco_instances(objects: ObjectMasks, categories: Mapping[int, str] | None = None) -> dict:
    """A COCO instances dict: image id -> its objects, each an ``(H, W)`` boolean mask or a
    ``(mask, category id)`` pair (category 1 by default). Every annotation has the mask as RLE,
    its area and its tight ``[x, y, width, height]`` box, as in a COCO file."""
    images, annotations = [], []
    for image_id, objs in objects.items():
        for obj in objs:
            mask, category = obj if isinstance(obj, tuple) else (obj, 1)
            ys, xs = np.nonzero(mask)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category, "iscrowd": 0,
                "segmentation": encode_mask(mask), "area": float(mask.sum()),
                "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
            })
        h, w = np.shape(mask)
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "height": h, "width": w})
    used = sorted({a["category_id"] for a in annotations})
    names = categories or {c: f"category {c}" for c in used}
    return {"images": images, "annotations": annotations,
            "categories": [{"id": c, "name": names[c]} for c in used]}


@pytest.fixture
def coco_gt() -> Callable[..., dict]:
    """:func:`coco_instances`: COCO ground truth from object masks."""
    return coco_instances



@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (matplotlib keeps every pyplot figure open until closed)."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
