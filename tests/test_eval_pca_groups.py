"""cratelib.eval.pca measured against a known object: eq. 12 per group, IoU, separation AUC."""
import numpy as np
import pytest
import torch

from cratelib.eval.localisation import object_fraction
from cratelib.eval.pca import foreground_ious, pca_by_group, pca_foreground, separation_auc


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
    rgb, fg, pc1 = pca_by_group(feats, (4, 4))
    assert rgb.shape == (4, 4, 4, 3) and fg.shape == (4, 4, 4) and pc1.shape == (4, 4, 4)
    assert torch.equal(fg, obj.expand(4, 4, 4))
    assert (rgb[~fg] == 0).all() and (rgb[fg] >= 0).all() and (rgb[fg] <= 1).all()
    np.testing.assert_allclose(foreground_ious(fg, truths), 1.0)
    assert separation_auc(pc1, object_fraction(truths, (4, 4))) == pytest.approx(1.0)


def test_pca_by_group_runs_one_pca_per_group():
    feats, _, _ = planted(num_images=4)
    groups = np.array([0, 1, 0, 1])
    rgb, fg, _ = pca_by_group(feats, (4, 4), groups)
    for g in (0, 1):
        idx = torch.from_numpy(np.flatnonzero(groups == g))
        rgb_g, fg_g = pca_foreground(feats[idx], (4, 4))
        torch.testing.assert_close(rgb[idx], rgb_g)
        assert torch.equal(fg[idx], fg_g)
    with pytest.raises(ValueError, match="one group id per image"):
        pca_by_group(feats, (4, 4), [0, 1])


def test_separation_auc_is_sign_free_and_half_for_noise():
    _, obj, truths = planted(num_images=2)
    frac = object_fraction(truths, (4, 4))
    score = obj.double().expand(2, 4, 4)
    assert separation_auc(score, frac) == pytest.approx(1.0)
    assert separation_auc(-score, frac) == pytest.approx(1.0)  # folded over the sign
    assert separation_auc(torch.zeros(2, 4, 4), frac) == pytest.approx(0.5)  # all ties
    # a partial ordering: object patches 1, 1, 1, 0 on a background of 0 -> AUC from mid-ranks
    part = score.clone()
    part[:, 1, 1] = 0
    assert separation_auc(part, frac) == pytest.approx(0.875)


def test_foreground_ious_checks_lengths():
    with pytest.raises(ValueError, match="foreground masks"):
        foreground_ious(torch.zeros(2, 4, 4, dtype=torch.bool), [np.zeros((32, 32), bool)])
