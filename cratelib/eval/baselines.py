"""Maps and features that nothing learned: what the images alone give away.

Every score of a trained model is read against them, measured by the same code:

* :func:`random_maps` - softmax of standard normal logits, as many heads as the model, so that
  a best-head rule has the same freedom (:func:`random_map_ious`: their best-head IoU);
* :func:`brightness_maps` - each patch's mean brightness as an attention map;
* :func:`brightness_features` - the same as a one-dimensional patch feature (for PCA);
* :func:`pixel_features` - the raw, normalised pixels of each patch as its feature (for MaskCut).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cratelib.eval.cues import cue_maps
from cratelib.eval.extract import to_model_input
from cratelib.eval.localisation import best_head_ious

__all__ = ["random_maps", "random_map_ious", "brightness_maps", "brightness_features", "pixel_features"]


def random_maps(num_images: int, heads: int, grid: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """``(J, K, h, w)`` random maps: the softmax of standard normal logits over the patches
    (drawn from a generator seeded ``seed``, image by image, head by head)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_images, heads, grid[0] * grid[1], generator=gen)
    return logits.softmax(-1).unflatten(-1, grid)


def random_map_ious(truths: Sequence[np.ndarray], grid: tuple[int, int], heads: int, mass: float = 0.6,
                    seed: int = 0) -> np.ndarray:
    """Chance level of :func:`cratelib.eval.localisation.best_head_ious`: ``heads`` random maps per
    image, the best one's IoU. It has the same freedom to pick a head as the trained model, so it
    is the fair baseline for "best head"."""
    return best_head_ious(random_maps(len(truths), heads, grid, seed), truths, mass)[0]


def _patch_brightness(images: Sequence[np.ndarray], patch_size: int) -> torch.Tensor:
    """``(J, h, w)``: each patch's mean brightness in [0, 1] (:func:`cratelib.eval.cues.cue_maps`)."""
    return cue_maps(images, patch_size, ["brightness"])["brightness"]


def brightness_maps(images: Sequence[np.ndarray], patch_size: int = 8) -> torch.Tensor:
    """``(J, 1, h, w)``: each patch's mean brightness (0-1), normalised to sum to one per image.

    A saliency map that nothing learned: on data where objects are lighter than the background it
    already points at them, so it tells how much of a model's localisation the data give away."""
    maps = _patch_brightness(images, patch_size)[:, None]
    return maps / maps.sum((-2, -1), keepdim=True)


def brightness_features(images: Sequence[np.ndarray], patch_size: int = 8) -> torch.Tensor:
    """``(J, N, 1)``: each patch's mean brightness in [0, 1], a one-dimensional feature.

    Its first principal component is the brightness itself (up to sign and offset), so eq. 12's
    foreground is "the brighter (or darker) half of the brightness range": the unlearned
    baseline that says how much of the separation the data give away."""
    return _patch_brightness(images, patch_size).flatten(1)[..., None]


def pixel_features(images: Sequence[np.ndarray], img_size: int, patch_size: int = 8
                   ) -> tuple[torch.Tensor, tuple[int, int]]:
    """The raw, ImageNet-normalised pixels of each patch as its feature, ``((J, N, 3 P^2), grid)``:
    MaskCut with no network at all, the baseline of what the images alone give away."""
    x = to_model_input(list(images), img_size)  # (J, 3, S, S)
    g = img_size // patch_size
    cols = x.unfold(2, patch_size, patch_size).unfold(3, patch_size, patch_size)  # (J, 3, g, g, P, P)
    feats = cols.permute(0, 2, 3, 1, 4, 5).reshape(len(images), g * g, -1)
    return feats, (g, g)
