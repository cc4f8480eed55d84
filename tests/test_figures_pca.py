"""Helpers of the PCA chapter (cratelib.figures.pca_maps): eq. 12 per group, IoU, AUC, plots."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from cratelib import create_model
from cratelib.eval.pca import pca_foreground
from cratelib.figures import pca_maps as pm
from cratelib.figures.attention import object_fraction


def planted(num_images=4, grid=(4, 4), dim=6, seed=0):
    """Features whose first direction is 'object' (a square in the grid's top-left corner)."""
    gen = torch.Generator().manual_seed(seed)
    obj = torch.zeros(grid, dtype=torch.bool)
    obj[:2, :2] = True
    feats = 0.05 * torch.randn(num_images, grid[0] * grid[1], dim, generator=gen)
    feats[:, obj.flatten(), 0] += 3.0  # object patches far out along e_0
    truths = [np.kron(obj.numpy(), np.ones((8, 8), bool)) for _ in range(num_images)]
    return feats, obj, truths


def test_pca_by_group_finds_the_planted_object():
    feats, obj, truths = planted()
    rgb, fg, pc1 = pm.pca_by_group(feats, (4, 4))
    assert rgb.shape == (4, 4, 4, 3) and fg.shape == (4, 4, 4) and pc1.shape == (4, 4, 4)
    assert torch.equal(fg, obj.expand(4, 4, 4))
    assert (rgb[~fg] == 0).all() and (rgb[fg] >= 0).all() and (rgb[fg] <= 1).all()
    np.testing.assert_allclose(pm.foreground_ious(fg, truths), 1.0)
    assert pm.separation_auc(pc1, object_fraction(truths, (4, 4))) == pytest.approx(1.0)


def test_pca_by_group_runs_one_pca_per_group():
    feats, _, _ = planted(num_images=4)
    groups = np.array([0, 1, 0, 1])
    rgb, fg, _ = pm.pca_by_group(feats, (4, 4), groups)
    for g in (0, 1):
        idx = torch.from_numpy(np.flatnonzero(groups == g))
        rgb_g, fg_g = pca_foreground(feats[idx], (4, 4))
        torch.testing.assert_close(rgb[idx], rgb_g)
        assert torch.equal(fg[idx], fg_g)
    with pytest.raises(ValueError, match="one group id per image"):
        pm.pca_by_group(feats, (4, 4), [0, 1])


def test_separation_auc_is_sign_free_and_half_for_noise():
    _, obj, truths = planted(num_images=2)
    frac = object_fraction(truths, (4, 4))
    score = obj.double().expand(2, 4, 4)
    assert pm.separation_auc(score, frac) == pytest.approx(1.0)
    assert pm.separation_auc(-score, frac) == pytest.approx(1.0)  # folded over the sign
    assert pm.separation_auc(torch.zeros(2, 4, 4), frac) == pytest.approx(0.5)  # all ties
    # a partial ordering: object patches 1, 1, 1, 0 on a background of 0 -> AUC from mid-ranks
    part = score.clone()
    part[:, 1, 1] = 0
    assert pm.separation_auc(part, frac) == pytest.approx(0.875)


def test_foreground_ious_checks_lengths():
    with pytest.raises(ValueError, match="foreground masks"):
        pm.foreground_ious(torch.zeros(2, 4, 4, dtype=torch.bool), [np.zeros((32, 32), bool)])


def test_brightness_features_are_patch_means():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:8, :8] = 255
    f = pm.brightness_features([img])
    assert f.shape == (1, 4, 1)
    torch.testing.assert_close(f[0, :, 0], torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_layer_features_and_plots():
    model = create_model("crate_nano_patch8", img_size=32, num_classes=3).eval()
    images = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    feats, grid = pm.layer_features(model, images)
    assert grid == (4, 4) and feats.shape[:3] == (model.depth, 3, 16)
    rgb = torch.stack([pm.pca_by_group(feats[l], grid)[0] for l in range(model.depth)])
    truths = [np.zeros((32, 32), bool) for _ in images]
    fig = pm.plot_pca_layers(images, rgb, truths=truths, row_labels=["a", "b", "c"])
    assert len(fig.axes) == 3 * (model.depth + 1)
    _, fg, pc1 = pm.pca_by_group(feats[0], grid)
    fig = pm.plot_pca_detail(images[0], pc1[0], fg[0], rgb[0, 0], truth=truths[0])
    assert len(fig.axes) == 5  # four panels and a colour bar
