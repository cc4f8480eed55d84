"""MaskCut over a data set: masks, CRF, COCO detections and their AP (Table 1).

Per image (features of the last layer at ``img_size``, e.g. 480 px / patch 8):
:func:`cratelib.eval.maskcut.maskcut` gives up to n = 3 patch masks; each is
upsampled (nearest) to the image, its box is the tight rectangle.  With
``crf=True`` each mask is also refined by the dense CRF on the image resized
to ``img_size`` (as the official code refines at its fixed 480 px size), and
dropped when implausible (:func:`cratelib.eval.crf.refine_mask`).  Table 1
compares models *without* CRF; both sets of detections are kept.

The drivers: :func:`maskcut_ap` (one layer's features of a data set -> timed,
class-agnostic AP in percent and per-object hits) and
:func:`layerwise_maskcut` (a model and a data set -> the same for every
layer). The chapters, the command line and the tests call them.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cratelib.eval.coco_eval import detections_for_image, evaluate_detections
from cratelib.eval.crf import refine_mask
from cratelib.eval.extract import FeatureCache, extract
from cratelib.eval.maskcut import maskcut, upsample_mask
from cratelib.eval.ncut import Solver
from cratelib.eval.sources import Sample
from cratelib.eval.threads import single_thread

METRIC_COLUMNS = ("det AP50", "det AP75", "det AP", "seg AP50", "seg AP75", "seg AP")


@dataclass
class MaskCutRun:
    """Output of :func:`run_maskcut`.

    Attributes:
        image_ids: the images processed.
        patch_masks: per image, ``(n, h, w)`` bool masks on the patch grid.
        detections: COCO results without CRF.
        detections_crf: COCO results after CRF (``None`` until :func:`maskcut_ap` adds them).
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
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MaskCutRun:
    """MaskCut on ``J`` images (the CRF-refined detections are added by :func:`maskcut_ap`).

    Args:
        features: ``(J, N, D)`` last-layer patch features (``extract(..., what=("features",))``).
        grid: patch grid ``(h, w)``.
        samples: the J images (their sizes and ids are used).
        num_objects, tau, solver: MaskCut settings (paper: 3, 0.15).
        device: where the cuts are computed (``"cuda"`` with ``solver="auto"``
            uses the torch eigensolver on the GPU).
        progress: tqdm bar.
    """
    if features.shape[0] != len(samples):
        raise ValueError(f"{features.shape[0]} feature maps but {len(samples)} samples")
    run = MaskCutRun()
    for feats, sample in tqdm(list(zip(features, samples)), desc="maskcut", disable=not progress):
        result = maskcut(feats.to(device), grid, num_objects, tau, solver=solver)
        size = sample.image.shape[:2]
        run.image_ids.append(sample.image_id)
        run.patch_masks.append(result.masks)
        run.detections += detections_for_image(
            sample.image_id, [upsample_mask(m, size) for m in result.masks]
        )
    return run


def crf_detections(patch_masks: np.ndarray, sample: Sample, crf_size: int = 480) -> list[dict]:
    """COCO results of one image's MaskCut masks after CRF refinement (what ``maskcut_ap(crf=True)``
    adds).

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


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two COCO boxes ``[x, y, w, h]``."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def object_hits(detections: Sequence[dict], gt: dict | str | Path, threshold: float = 0.5) -> np.ndarray:
    """Per ground-truth object (in the order of ``gt["annotations"]``): 1 if some detected box of
    its image overlaps it with IoU >= ``threshold``, else 0. Its mean is the recall at that IoU; as
    a per-object score it has a standard error, which the AP of a small set has not."""
    if not isinstance(gt, dict):
        gt = json.loads(Path(gt).read_text())
    boxes: dict[int, list] = {}
    for d in detections:
        boxes.setdefault(int(d["image_id"]), []).append(d["bbox"])
    return np.asarray([float(any(_box_iou(b, a["bbox"]) >= threshold for b in boxes.get(a["image_id"], [])))
                       for a in gt["annotations"]])


@dataclass
class APResult:
    """Class-agnostic COCO scores of MaskCut on a set of images.

    Attributes:
        scores: ``{"no_crf": {"bbox": {"AP50", "AP75", "AP"}, "segm": {...}}, "crf": {...}}``
            as :func:`evaluate_maskcut` returns them (fractions); ``"crf"`` only when it was run.
        hits: ``{"no_crf": (M,), "crf": (M,)}`` :func:`object_hits` of each of the M true objects
            at box IoU 0.5.
        seconds: ``{"maskcut": ..., "crf": ..., "coco": ...}`` wall time of each phase.
        run: the masks and detections (:class:`MaskCutRun`).
    """

    scores: dict[str, dict[str, dict[str, float]]]
    hits: dict[str, np.ndarray]
    seconds: dict[str, float]
    run: MaskCutRun

    @property
    def ap(self) -> dict[str, dict[str, float]]:
        """``{"no_crf": {"det AP50": ..., ..., "seg AP": ...}, "crf": ...}`` in percent (the
        paper's unit; "det" scores the masks' boxes, "seg" the masks)."""
        names = {"bbox": "det", "segm": "seg"}
        return {setting: {f"{names[t]} {m}": 100 * v for t, per in scores.items() for m, v in per.items()}
                for setting, scores in self.scores.items()}

    @property
    def patch_masks(self) -> list[np.ndarray]:
        """Per image, the ``(n, h, w)`` patch masks."""
        return self.run.patch_masks


def maskcut_ap(features: torch.Tensor, grid: tuple[int, int], samples: Sequence[Sample], gt: str | Path | dict | None,
               num_objects: int = 3, tau: float = 0.15, crf: bool = False, crf_size: int = 480,
               solver: Solver = "auto", device: str | torch.device = "cpu", progress: bool = False) -> APResult:
    """Alg. 4 on every image, optionally the CRF, then class-agnostic COCO AP (Table 1), timed.

    On a CPU the cuts run on one thread (:func:`cratelib.eval.threads.single_thread`): each is a
    tiny problem.

    Args:
        features: ``(J, N, D)`` patch features of one layer
            (:func:`cratelib.eval.extract.layer_features`).
        grid: patch grid ``(h, w)``.
        samples: the J images (ids and sizes), in the order of ``features``.
        gt: their COCO instances JSON (a path or the loaded dict); ``None`` (images without
            ground truth): masks and detections only, no scores or hits.
        num_objects, tau: MaskCut's n and affinity threshold (paper: 3, 0.15).
        crf: also score the CRF-refined masks (Table 1 is without).
        crf_size: side of the square image the CRF runs on (official: 480).
        solver, device: where and how the cuts are solved (:func:`cratelib.eval.maskcut.maskcut`).
        progress: tqdm bar.
    """
    samples = list(samples)
    if gt is not None and not isinstance(gt, dict):
        gt = json.loads(Path(gt).read_text())
    t0 = time.perf_counter()
    cpu = torch.device(device).type == "cpu"
    with single_thread() if cpu else contextlib.nullcontext():
        run = run_maskcut(features, grid, samples, num_objects, tau, solver=solver, device=device, progress=progress)
    seconds = {"maskcut": time.perf_counter() - t0}
    if crf:
        t0 = time.perf_counter()
        run.detections_crf = [d for masks, s in zip(run.patch_masks, samples)
                              for d in crf_detections(masks, s, crf_size)]
        seconds["crf"] = time.perf_counter() - t0
    if gt is None:
        return APResult({}, {}, seconds, run)
    t0 = time.perf_counter()
    scores = evaluate_maskcut(run, gt)
    seconds["coco"] = time.perf_counter() - t0
    hits = {"no_crf": object_hits(run.detections, gt)}
    if run.detections_crf is not None:
        hits["crf"] = object_hits(run.detections_crf, gt)
    return APResult(scores, hits, seconds, run)


def layerwise_maskcut(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    gt: dict | str | Path | None,
    layers: Sequence[int] | None = None,
    img_size: int | None = None,
    crf: bool = False,
    solver: Solver = "auto",
    tau: float = 0.15,
    crf_size: int = 480,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    progress: bool = False,
    batch_size: int = 8,
) -> dict[int, APResult]:
    """MaskCut's class-agnostic COCO AP with each layer's features (Fig. 6; Table 1 and 2 at the
    last layer): ``layer -> APResult`` for ``layers`` (default: all) at ``img_size`` (default: the
    model's own)."""
    samples = list(samples)
    ex = extract(model, [s.image for s in samples], layers, img_size, what=("features",), batch_size=batch_size,
                 device=device, progress=progress, cache=cache)
    return {l: maskcut_ap(f, ex.grid, samples, gt, tau=tau, crf=crf, crf_size=crf_size, solver=solver, device=device,
                          progress=progress)
            for l, f in ex.features.items()}
