"""Attention maps under Gaussian noise (the paper's Figs. 11-12), measured.

:func:`add_gaussian_noise` perturbs a share of the pixels; :func:`noise_sweep` runs a model over
clean and noisy copies of a set of images and returns, per setting, the maps and what changed:
accuracy (with labels), localisation (with object masks) and how much of each head's clean map
survives.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cratelib.eval.classify import predict
from cratelib.eval.extract import layer_maps, model_img_size
from cratelib.eval.localisation import attention_on, best_head_ious, map_overlap, object_fraction

__all__ = ["add_gaussian_noise", "noise_sweep"]

FIG11_SETTINGS = ((10, 0.5), (25, 0.5), (50, 0.5), (75, 0.5))  # sigma at 50 % of the pixels


def add_gaussian_noise(image: np.ndarray, sigma: float, fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Figs. 11-12: add ``N(0, sigma^2)`` (0-255 scale) to a random ``fraction`` of the pixels.

    A chosen pixel gets independent noise on each of its 3 channels; the
    result is rounded and clipped to uint8.

    Args:
        image: ``(H, W, 3)`` uint8.
        sigma: noise standard deviation in grey levels (paper: 10, 25, 50, 75).
        fraction: share of pixels that are perturbed (paper: 0.1-0.75).
        seed: seed of the pixel choice and the noise.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if sigma < 0 or not 0 <= fraction <= 1:
        raise ValueError(f"need sigma >= 0 and fraction in [0, 1], got sigma={sigma}, fraction={fraction}")
    rng = np.random.default_rng(seed)
    chosen = rng.random(image.shape[:2]) < fraction
    noise = rng.normal(0.0, sigma, image.shape) * chosen[..., None]
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


def noise_sweep(model: torch.nn.Module, images: Sequence[np.ndarray], layer: int,
                settings: Sequence[tuple[float, float]] = FIG11_SETTINGS,
                truths: Sequence[np.ndarray] | None = None, labels: Sequence[int] | None = None,
                seed: int = 0, img_size: int | None = None, device: str | torch.device = "cpu") -> list[dict]:
    """Figs. 11-12 on a set of images: the clean images and, for each ``(sigma, fraction)``,
    Gaussian noise of ``sigma`` grey levels on ``fraction`` of the pixels (image ``j`` seeded
    ``seed + j``); maps of ``layer`` at ``img_size`` (default: the model's own), on ``device``.

    Returns:
        One dict per setting, the clean one first: ``sigma``, ``fraction``, ``images`` (the noisy
        uint8 images), ``maps`` ``(J, K, h, w)``, ``overlap`` ``(J, K)`` (:func:`map_overlap` of
        each head's map with its map on the clean image); with ``labels``: ``acc`` (top-1
        accuracy); with ``truths``: ``object`` ``(J, K)`` (share of each head's attention on the
        object) and ``iou`` ``(J,)`` (best head's 60 %-mass IoU with the object).
    """
    size = img_size or model_img_size(model)
    out, clean = [], None
    for sigma, fraction in [(0.0, 0.0), *settings]:
        noisy = [add_gaussian_noise(im, sigma, fraction, seed + j) for j, im in enumerate(images)]
        maps = layer_maps(model, noisy, [layer], size, device=device)[0]
        clean = maps if clean is None else clean
        entry = {"sigma": float(sigma), "fraction": float(fraction), "images": noisy, "maps": maps,
                 "overlap": map_overlap(maps, clean).numpy()}
        if labels is not None:
            entry["acc"] = float((predict(model, noisy, size) == np.asarray(labels)).mean())
        if truths is not None:
            entry["object"] = attention_on(maps, object_fraction(truths, tuple(maps.shape[-2:]))).numpy()
            entry["iou"] = best_head_ious(maps, truths)[0]
        out.append(entry)
    return out
