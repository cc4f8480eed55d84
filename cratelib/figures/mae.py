"""Figures of masked autoencoding (chapter 16): what the encoder saw and what the decoder filled in.

* :func:`display_images` - normalised model inputs ``(J, 3, H, W)`` back to uint8 pictures;
* :func:`plot_reconstructions` - per image: the original, the masked input (hidden patches grey),
  and one or more completions side by side.

Everything here draws arrays it is handed; the reconstructions come from
:meth:`cratelib.models.crate_mae.CRATEMAE.reconstruct`.
"""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.data import IMAGENET_MEAN, IMAGENET_STD
from cratelib.figures.style import finish, styled

__all__ = ["display_images", "plot_reconstructions"]


def display_images(x: torch.Tensor) -> np.ndarray:
    """ImageNet-normalised ``(J, 3, H, W)`` -> ``(J, H, W, 3)`` uint8 (values clipped to [0, 1])."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = (x.detach().float().cpu() * std + mean).clamp(0, 1)
    return (pixels * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@styled
def plot_reconstructions(images: np.ndarray, masks: np.ndarray, completions: Mapping[str, np.ndarray],
                         title: str = ""):
    """Rows = images; columns = the original, the masked input, then each completion.

    Args:
        images: ``(J, H, W, 3)`` uint8 originals.
        masks: ``(J, h, w)`` bool patch masks, True = hidden from the encoder.
        completions: ``{label: (J, H, W, 3) uint8}``, e.g. the model's output with the visible
            patches pasted back, and a baseline.
    """
    J = len(images)
    cols = 2 + len(completions)
    fig, axes = plt.subplots(J, cols, figsize=(1.35 * cols, 1.35 * J), squeeze=False)
    for j in range(J):
        h, w = masks[j].shape
        cover = np.kron(masks[j], np.ones((images.shape[1] // h, images.shape[2] // w), bool))
        masked = images[j].copy()
        masked[cover] = 128
        panels = [("image", images[j]), ("encoder's input", masked), *((k, v[j]) for k, v in completions.items())]
        for ax, (label, picture) in zip(axes[j], panels):
            ax.imshow(picture)
            if j == 0:
                ax.set_title(label, fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)
