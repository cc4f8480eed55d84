"""Image transforms of the paper's recipe (Appendix C.1): centre crop + random flip, ImageNet stats.

Both transforms take a PIL image (or an ``(H, W, 3)`` uint8 array) and return a normalised
``(3, image_size, image_size)`` float tensor.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "train_transform", "eval_transform"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _tail(mean: tuple[float, ...], std: tuple[float, ...]) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def train_transform(image_size: int, mean: tuple[float, ...] = IMAGENET_MEAN,
                    std: tuple[float, ...] = IMAGENET_STD, crop: str = "center",
                    crop_fraction: float = 1.0) -> v2.Compose:
    """Training augmentation.

    Args:
        image_size: output side length.
        mean, std: per-channel normalisation.
        crop: ``"center"`` (the paper: resize the shorter side to ``image_size / crop_fraction``,
            centre crop, random horizontal flip) or ``"random_resized"`` (timm/DeiT-style
            ``RandomResizedCrop`` + flip).
        crop_fraction: for ``"center"``, the fraction of the resized image that is kept (1.0 keeps
            the central square; 0.875 is the classic ImageNet 256 -> 224).

    Returns:
        A callable PIL image -> ``(3, image_size, image_size)`` float tensor.
    """
    if crop == "center":
        geometry = [v2.Resize(round(image_size / crop_fraction), antialias=True),
                    v2.CenterCrop(image_size)]
    elif crop == "random_resized":
        geometry = [v2.RandomResizedCrop(image_size, antialias=True)]
    else:
        raise ValueError(f"crop must be 'center' or 'random_resized', got {crop!r}")
    return v2.Compose([v2.ToImage(), *geometry, v2.RandomHorizontalFlip(), *_tail(mean, std)])


def eval_transform(image_size: int, mean: tuple[float, ...] = IMAGENET_MEAN,
                   std: tuple[float, ...] = IMAGENET_STD, crop_fraction: float = 1.0) -> v2.Compose:
    """Deterministic evaluation transform: resize shorter side, centre crop, normalise.

    Args:
        image_size: output side length.
        mean, std: per-channel normalisation.
        crop_fraction: as in :func:`train_transform`.

    Returns:
        A callable PIL image -> ``(3, image_size, image_size)`` float tensor.
    """
    return v2.Compose([v2.ToImage(), v2.Resize(round(image_size / crop_fraction), antialias=True),
                       v2.CenterCrop(image_size), *_tail(mean, std)])
