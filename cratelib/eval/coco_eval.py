"""COCO-format MaskCut detections and class-agnostic COCO evaluation (Table 1).

MaskCut finds objects without knowing their class, so the paper scores it
class-agnostically: every ground-truth annotation and every detection gets
category 1, then the official ``pycocotools`` ``COCOeval`` runs for ``bbox``
and ``segm``.  Reported: AP (IoU .50:.95), AP50, AP75, as fractions in [0, 1]
(the paper prints percent).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cratelib.eval.maskcut import mask_to_box
from cratelib.io import atomic_write_text

IOU_TYPES = ("bbox", "segm")
METRICS = ("AP", "AP50", "AP75")


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of a ``(H, W)`` bool mask, ``counts`` as a JSON-ready str."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def detections_for_image(
    image_id: int, masks: Sequence[np.ndarray], scores: Sequence[float] | None = None
) -> list[dict]:
    """COCO result entries (RLE ``segmentation``, tight ``bbox``, ``score``, category 1).

    Empty masks are skipped.  ``scores`` defaults to ``1 / (1 + i)`` for the
    ``i``-th mask (earlier cuts ranked first).
    """
    if scores is not None and len(scores) != len(masks):
        raise ValueError(f"got {len(masks)} masks but {len(scores)} scores")
    out = []
    for i, mask in enumerate(masks):
        box = mask_to_box(mask)
        if box is None:
            continue
        score = float(scores[i]) if scores is not None else 1.0 / (1 + i)
        out.append(
            {
                "image_id": int(image_id),
                "category_id": 1,
                "segmentation": encode_mask(mask),
                "bbox": box,
                "score": score,
            }
        )
    return out


def write_detections(detections: list[dict], path: str | Path) -> Path:
    """Write the result list as JSON atomically (temp file + ``os.replace``)."""
    return atomic_write_text(Path(path), json.dumps(detections))


def class_agnostic_coco(gt: dict | str | Path) -> COCO:
    """A ``COCO`` index of ``gt`` (dict or path to instances JSON) with every category set to 1."""
    if not isinstance(gt, dict):
        with open(gt) as f:
            gt = json.load(f)
    for key in ("images", "annotations"):
        if key not in gt:
            raise ValueError(f"ground truth is not a COCO instances file: no {key!r} key")
    data = copy.deepcopy(gt)
    data["categories"] = [{"id": 1, "name": "object", "supercategory": "object"}]
    for ann in data["annotations"]:
        ann["category_id"] = 1
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def evaluate_detections(
    gt: dict | str | Path | COCO,
    detections: list[dict],
    image_ids: Iterable[int] | None = None,
    iou_types: Sequence[str] = IOU_TYPES,
) -> dict[str, dict[str, float]]:
    """Class-agnostic ``COCOeval``: ``{"bbox": {"AP", "AP50", "AP75"}, "segm": {...}}``.

    Args:
        gt: COCO instances ground truth (dict, path, or a class-agnostic ``COCO``).
        detections: result entries as from :func:`detections_for_image`.
        image_ids: images to score (default: all images of ``gt``); pass the
            images actually processed when running on a subset.
        iou_types: any of ``"bbox"``, ``"segm"``.

    Returns:
        fractions in [0, 1]; 0 for all metrics when there are no detections.
    """
    coco = gt if isinstance(gt, COCO) else class_agnostic_coco(gt)
    ids = sorted(coco.getImgIds() if image_ids is None else {int(i) for i in image_ids})
    dets = [dict(d, category_id=1) for d in detections if d["image_id"] in set(ids)]
    results: dict[str, dict[str, float]] = {}
    for iou_type in iou_types:
        if iou_type not in IOU_TYPES:
            raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
        if not dets:
            results[iou_type] = {m: 0.0 for m in METRICS}
            continue
        # bbox scoring reads "bbox"; segm scoring reads the RLE and its area
        typed = [
            {k: v for k, v in d.items() if k != ("bbox" if iou_type == "segm" else "segmentation")}
            for d in dets
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = COCOeval(coco, coco.loadRes(typed), iou_type)
            evaluator.params.imgIds = ids
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        stats = [max(float(s), 0.0) for s in evaluator.stats[:3]]  # -1 = no ground truth
        results[iou_type] = dict(zip(METRICS, stats))
    return results
