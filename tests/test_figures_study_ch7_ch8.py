"""Figures of the study chapters 7 and 8 (cratelib.figures.attention): models side by side.
Layers and heads numbered from 1."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cratelib.figures import attention as att  # noqa: E402


def _images(n: int, size: int = 32) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8) for i in range(n)]


def test_plot_layers_models_has_a_row_per_image_and_model():
    images = _images(2)
    maps = {m: torch.rand(3, 2, 4, 4).softmax(-1) for m in ("crate", "vit-cls")}  # (L, J, h, w)
    truth = np.zeros((32, 32), bool)
    truth[8:24, 8:24] = True
    fig = att.plot_layers_models(images, maps, truths=[truth, truth], heads={"crate": [0, 3, 1]})
    assert len(fig.axes) == 2 * 2 * (3 + 1)
    assert fig.axes[1].get_title() == "layer 1" and fig.axes[3].get_title() == "layer 3"
    assert [fig.axes[r * 4].get_ylabel() for r in range(4)] == ["crate", "vit-cls", "crate", "vit-cls"]
    assert fig.axes[2].texts[0].get_text() == "h4"  # crate, layer 2 chose head 4
    assert not fig.axes[5].texts  # no heads given for vit-cls
    matplotlib.pyplot.close(fig)


def test_plot_heads_models_puts_every_head_of_every_model_in_a_row():
    images = _images(3)
    maps = {"crate": torch.rand(3, 4, 4, 4), "vit-gap": torch.rand(3, 2, 4, 4)}  # (J, K, h, w)
    fig = att.plot_heads_models(images, maps)
    assert len(fig.axes) == 3 * (1 + 4 + 2)
    titles = [ax.get_title() for ax in fig.axes[:7]]
    assert titles == ["image", "crate\nhead 1", "head 2", "head 3", "head 4", "vit-gap\nhead 1", "head 2"]
    matplotlib.pyplot.close(fig)


def test_plot_heads_per_model_has_a_row_per_image_and_model_and_blank_heads_beyond_a_models_own():
    images = _images(2, 40)[:1] + [np.zeros((30, 50, 3), np.uint8)]  # photographs of any sizes
    maps = {"crate-alpha": torch.rand(2, 4, 5, 5), "dino": torch.rand(2, 2, 10, 10)}  # (J, K, h, w), own grids
    fig = att.plot_heads_per_model(images, maps)
    rows, cols = 2 * 2, 1 + 4
    assert len(fig.axes) == rows * cols
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 2 * (1 + 4) + 2 * (1 + 2)  # per image: the image and every head, model by model
    assert [fig.axes[r * cols].get_ylabel() for r in range(rows)] == ["crate-alpha", "dino"] * 2
    dino_row = fig.axes[1 * cols : 2 * cols]
    assert [bool(ax.images) for ax in dino_row] == [True, True, True, False, False]
    assert not dino_row[3].axison  # blank, not an empty frame
    assert [ax.get_title() for ax in fig.axes[1:cols]] == [f"head {k}" for k in range(1, 5)]
    assert fig.axes[3 * cols + 1].images[0].get_array().shape == (30, 50)  # each map at its photograph's size
    matplotlib.pyplot.close(fig)
