"""Dense-CRF refinement of a coarse mask, as MaskCut post-processes its masks.

A fully connected CRF (Kraehenbuehl & Koltun 2011, ``pydensecrf``) with the
official MaskCut settings: unary from the softmax of the (background,
foreground) logits ``(1 - m, m)`` bilinearly resized to the image, a Gaussian
smoothness kernel (sxy 3, weight 7) and a bilateral appearance kernel (sxy 50,
srgb 5, weight 10), 10 mean-field iterations.  MaskCut then fills holes and
drops the mask when the refined one has IoU < 0.5 with the coarse one (an
"implausible" mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F

from cratelib.eval.metrics import iou


@dataclass(frozen=True)
class CRFParams:
    """Kernel settings of the official MaskCut ``crf.py``."""

    iterations: int = 10
    pos_weight: float = 7.0
    pos_xy_std: float = 3.0
    bi_weight: float = 10.0
    bi_xy_std: float = 50.0
    bi_rgb_std: float = 5.0


def _densecrf_module():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:
        raise ImportError(
            "dense-CRF refinement needs pydensecrf: `pip install pydensecrf2` "
            "(or `pip install cratelib[crf]`; on Python 3.13 add `--no-build-isolation` with Cython 3 "
            "installed); run MaskCut with crf=False to skip it"
        ) from err
    return dcrf


def available() -> bool:
    """True when ``pydensecrf`` (cratelib's ``crf`` extra, ``pip install pydensecrf2``) imports."""
    try:
        _densecrf_module()
    except ImportError:
        return False
    return True


def densecrf(image: np.ndarray, mask: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """MAP labelling ``(H, W)`` bool of a CRF seeded by ``mask``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image.
        mask: ``(h, w)`` coarse mask in [0, 1] at any resolution (patch grid
            or image); its logits are bilinearly resized to ``(H, W)``.
        params: kernel settings (official MaskCut defaults).
    """
    dcrf = _densecrf_module()
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an (H, W, 3) uint8 image, got shape {image.shape} dtype {image.dtype}"
        )
    image = np.array(image, order="C")  # a writable C-contiguous copy (pydensecrf needs one)
    fg = torch.as_tensor(np.asarray(mask, dtype=np.float64))
    if fg.dim() != 2:
        raise ValueError(f"expected a 2-D mask, got shape {tuple(fg.shape)}")
    h, w = image.shape[:2]
    logits = torch.stack([1.0 - fg, fg])[None]  # (1, 2, h', w')
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0]
    probs = logits.softmax(0).numpy()  # (2, H, W)
    unary = np.ascontiguousarray(-np.log(probs.reshape(2, -1)).astype(np.float32))
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.pos_xy_std, compat=params.pos_weight)
    crf.addPairwiseBilateral(
        sxy=params.bi_xy_std, srgb=params.bi_rgb_std, rgbim=image, compat=params.bi_weight
    )
    q = np.asarray(crf.inference(params.iterations)).reshape(2, h, w)
    return q.argmax(0).astype(bool)


def refine_mask(
    image: np.ndarray,
    mask: np.ndarray,
    min_iou: float = 0.5,
    params: CRFParams = CRFParams(),
) -> np.ndarray | None:
    """MaskCut's post-processing: CRF, fill holes, drop implausible masks.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool coarse mask at image resolution.
        min_iou: the refined mask is dropped (``None``) when its IoU with
            ``mask`` is below this (official: 0.5).

    Returns:
        the refined ``(H, W)`` bool mask, or ``None``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask must have the image's size {image.shape[:2]}, got {mask.shape}"
        )
    refined = scipy.ndimage.binary_fill_holes(densecrf(image, mask, params))
    if not refined.any() or iou(mask, refined) < min_iou:
        return None
    return refined
