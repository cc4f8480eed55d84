"""Figures of the PCA chapter (cratelib.figures.pca_maps), layers numbered from 1."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cratelib import create_model  # noqa: E402
from cratelib.eval.extract import layer_features  # noqa: E402
from cratelib.eval.pca import pca_by_group, pca_grey_rgb  # noqa: E402
from cratelib.figures import pca_maps as pm  # noqa: E402


def test_pca_figures_have_a_panel_per_layer_and_image():
    model = create_model("crate_nano_patch8", img_size=32, num_classes=3).eval()
    images = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    feats, grid = layer_features(model, images)
    rgb = torch.stack([pca_by_group(feats[l], grid)[0] for l in range(model.depth)])
    truths = [np.zeros((32, 32), bool) for _ in images]
    fig = pm.plot_pca_layers(images, rgb, truths=truths, row_labels=["a", "b", "c"])
    assert len(fig.axes) == 3 * (model.depth + 1) and fig.axes[1].get_title() == "layer 1"
    _, fg, pc1 = pca_by_group(feats[0], grid)
    pictures = {"crate": rgb[-1], "crate, layer 1": rgb[0]}
    fig = pm.plot_pca_models(images, pictures, truths=truths, title="t")
    assert len(fig.axes) == 3 * 3
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["image", "crate", "crate, layer 1"]
    assert np.array_equal(fig.axes[4].get_images()[0].get_array(), rgb[-1, 1].numpy())  # row crate, image 2
    with pytest.raises(ValueError, match=r"\(2, h, w, 3\) for 2 images, got \(3, "):
        pm.plot_pca_models(images[:2], pictures)
    fig = pm.plot_pca_detail(images[0], pc1[0], fg[0], rgb[0, 0], truth=truths[0])
    assert len(fig.axes) == 5  # four panels and a colour bar
    grey, rgb4 = pca_grey_rgb(feats[-1], grid)
    fig = pm.plot_pca(images, rgb4, grey, title="t")
    assert len(fig.axes) == 3 * 3 and [ax.get_title() for ax in fig.axes[:3]] == ["image", "PC1", "PCA RGB"]
    fig = pm.plot_pca(images[:1], rgb4[:1])
    assert len(fig.axes) == 2
