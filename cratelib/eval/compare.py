"""Several models side by side: the rows of the paper's Tables 1 and 2 and of Fig. 10.

Models are loaded modules (cratelib models or timm ViTs, or training snapshots of one run); data
are lists of :class:`cratelib.eval.sources.Sample`. Every number comes from the drivers
:func:`cratelib.eval.maskcut_eval.layerwise_maskcut`,
:func:`cratelib.eval.segmentation.layerwise_miou` and :func:`cratelib.eval.pca.layerwise_pca`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from cratelib.eval.maskcut_eval import layerwise_maskcut
from cratelib.eval.pca import layerwise_pca
from cratelib.eval.segmentation import layerwise_miou
from cratelib.eval.sources import Sample
from cratelib.eval.threshold import ThresholdMode

__all__ = ["compare_models", "training_snapshots"]


def compare_models(
    models: Mapping[str, torch.nn.Module],
    voc: list[Sample] | None = None,
    coco: list[Sample] | None = None,
    coco_gt: dict | str | Path | None = None,
    seg_layer: int = -1,
    det_layer: int = -1,
    seg_img_size: int | None = None,
    det_img_size: int | None = None,
    crf: bool = False,
    mode: ThresholdMode = "top-entries",
    device: str = "cpu",
) -> list[dict]:
    """One row per model (Table 1, Table 2, Fig. 10 with training snapshots as "models").

    Row keys: ``model``; with ``coco`` and ``coco_gt``: ``det AP50, det AP75, det AP, seg AP50,
    seg AP75, seg AP`` (percent, MaskCut without CRF unless ``crf``); with ``voc``: ``voc mIoU``
    (percent, eq. 14 at ``seg_layer``). Sizes default to each model's own (the paper: 224 px for
    the maps, 480 px for MaskCut).
    """
    if coco is not None and coco_gt is None:
        raise ValueError("compare_models: coco samples given without coco_gt")
    rows = []
    for name, model in models.items():
        row: dict = {"model": name}
        if coco is not None:
            result = layerwise_maskcut(model, coco, coco_gt, [det_layer], det_img_size, crf, device=device)[det_layer]
            row.update(result.ap["crf" if crf else "no_crf"])
        if voc is not None:
            row["voc mIoU"] = 100 * layerwise_miou(model, voc, [seg_layer], seg_img_size, mode=mode,
                                                   device=device).miou[seg_layer]
        rows.append(row)
    return rows


def training_snapshots(
    snapshots: Mapping[str, torch.nn.Module],
    coco: list[Sample],
    coco_gt: dict | str | Path,
    pca_samples: list[Sample] | None = None,
    layer: int = -1,
    det_img_size: int | None = None,
    pca_img_size: int | None = None,
    device: str = "cpu",
) -> tuple[list[dict], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Fig. 10: MaskCut detection AP and PCA of ``layer`` for each training snapshot.

    Args:
        snapshots: ``label -> model`` in training order (e.g. "init", "epoch 2", ...).
        coco, coco_gt: detection data and its ground truth.
        pca_samples: images for the PCA panels (default: the first 4 of ``coco``).

    Returns:
        ``(rows, pca)``: rows as :func:`compare_models` (``model`` = label) and
        ``label -> (grey (J, h, w), rgb (J, h, w, 3))``.
    """
    rows = compare_models(snapshots, coco=coco, coco_gt=coco_gt, det_layer=layer,
                          det_img_size=det_img_size, device=device)
    images = [s.image for s in (pca_samples if pca_samples is not None else coco[:4])]
    pca = {label: layerwise_pca(model, images, [layer], pca_img_size, device)[layer]
           for label, model in snapshots.items()}
    return rows, pca
