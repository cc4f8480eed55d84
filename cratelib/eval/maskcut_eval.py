"""MaskCut over a data set: masks, CRF, COCO detections and their AP (Table 1).

Per image (features of the last layer at ``img_size``, e.g. 480 px / patch 8):
:func:`cratelib.eval.maskcut.maskcut` gives up to n = 3 patch masks; each is
upsampled (nearest) to the image, its box is the tight rectangle.  With
``crf=True`` each mask is also refined by the dense CRF on the image resized
to ``img_size`` (as the official code refines at its fixed 480 px size), and
dropped when implausible (:func:`cratelib.eval.crf.refine_mask`).  Table 1
compares models *without* CRF; both sets of detections are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cratelib.eval.coco_eval import detections_for_image, evaluate_detections
from cratelib.eval.crf import refine_mask
from cratelib.eval.maskcut import maskcut, upsample_mask
from cratelib.eval.ncut import Solver
from cratelib.eval.sources import Sample


@dataclass
class MaskCutRun:
    """Output of :func:`run_maskcut`.

    Attributes:
        image_ids: the images processed.
        patch_masks: per image, ``(n, h, w)`` bool masks on the patch grid.
        detections: COCO results without CRF.
        detections_crf: COCO results after CRF (``None`` if it was not run).
    """

    image_ids: list[int] = field(default_factory=list)
    patch_masks: list[np.ndarray] = field(default_factory=list)
    detections: list[dict] = field(default_factory=list)
    detections_crf: list[dict] | None = None


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))


def run_maskcut(
    features: torch.Tensor,
    grid: tuple[int, int],
    samples: list[Sample],
    num_objects: int = 3,
    tau: float = 0.15,
    solver: Solver = "auto",
    crf: bool = True,
    crf_size: int = 480,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MaskCutRun:
    """MaskCut on ``J`` images.

    Args:
        features: ``(J, N, D)`` last-layer patch features (``extract(..., what=("features",))``).
        grid: patch grid ``(h, w)``.
        samples: the J images (their sizes and ids are used).
        num_objects, tau, solver: MaskCut settings (paper: 3, 0.15).
        crf: also produce CRF-refined detections.
        crf_size: side of the square image the CRF runs on.
        device: where the cuts are computed (``"cuda"`` with ``solver="auto"``
            uses the torch eigensolver on the GPU).
        progress: tqdm bar.
    """
    if features.shape[0] != len(samples):
        raise ValueError(f"{features.shape[0]} feature maps but {len(samples)} samples")
    run = MaskCutRun(detections_crf=[] if crf else None)
    for feats, sample in tqdm(list(zip(features, samples)), desc="maskcut", disable=not progress):
        result = maskcut(feats.to(device), grid, num_objects, tau, solver=solver)
        size = sample.image.shape[:2]
        run.image_ids.append(sample.image_id)
        run.patch_masks.append(result.masks)
        run.detections += detections_for_image(
            sample.image_id, [upsample_mask(m, size) for m in result.masks]
        )
        if crf:
            run.detections_crf += crf_detections(result.masks, sample, crf_size)
    return run


def crf_detections(patch_masks: np.ndarray, sample: Sample, crf_size: int = 480) -> list[dict]:
    """COCO results of one image's MaskCut masks after CRF refinement (what ``crf=True`` adds).

    Each non-empty ``(h, w)`` patch mask is upsampled to the image resized to ``crf_size``
    square, refined there (:func:`cratelib.eval.crf.refine_mask`: CRF, hole filling, dropped
    when implausible) and upsampled to the image's own size; the ``i``-th cut keeps the score
    ``1 / (1 + i)``.

    Args:
        patch_masks: ``(n, h, w)`` bool masks of :func:`cratelib.eval.maskcut.maskcut`.
        sample: the image (its pixels, size and id).
        crf_size: side of the square image the CRF runs on (official: 480).
    """
    size = sample.image.shape[:2]
    small = _resized(sample.image, crf_size)
    refined, scores = [], []
    for i, m in enumerate(patch_masks):
        if not m.any():
            continue
        r = refine_mask(small, upsample_mask(m, (crf_size, crf_size)))
        if r is not None:
            refined.append(upsample_mask(r, size))
            scores.append(1.0 / (1 + i))
    return detections_for_image(sample.image_id, refined, scores)


def evaluate_maskcut(run: MaskCutRun, gt: dict | str | Path) -> dict[str, dict[str, dict[str, float]]]:
    """Class-agnostic COCO AP of a run: ``{"no_crf": {"bbox": ..., "segm": ...}, "crf": ...}``."""
    out = {"no_crf": evaluate_detections(gt, run.detections, run.image_ids)}
    if run.detections_crf is not None:
        out["crf"] = evaluate_detections(gt, run.detections_crf, run.image_ids)
    return out
