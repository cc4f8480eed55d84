"""MaskCut and its normalized-cut solvers on planted patch features."""

import numpy as np
import pytest
import torch

from cratelib.eval.maskcut import choose_foreground, mask_to_box, maskcut, upsample_mask
from cratelib.eval.metrics import iou
from cratelib.eval.ncut import dense_affinity, second_eigenvector, sparse_affinity
from planted import planted_patch_features

GRID = (20, 20)
ONE = ((5, 12, 6, 15),)
THREE = ((2, 8, 2, 9), (11, 18, 3, 9), (10, 17, 12, 18))


def test_sparse_affinity_is_dense_minus_eps_floor():
    feats, _ = planted_patch_features(GRID, 64, THREE, sigma=0.8, seed=1)
    for binary in (True, False):
        dense = dense_affinity(feats, 0.15, 1e-5, binary).numpy()
        s = sparse_affinity(feats, 0.15, binary, chunk=37).toarray()
        np.testing.assert_allclose(np.where(s > 0, s, 1e-5), dense, atol=1e-6)
    assert 0.0 < (dense > 0.5).mean() < 1.0  # a real threshold, not all or nothing


@pytest.mark.parametrize(
    "solver,binary", [("sparse", True), ("sparse", False), ("torch", True), ("auto", True)]
)
def test_solvers_agree_with_dense_generalised_eigh(solver, binary):
    feats, _ = planted_patch_features(GRID, 64, ONE, sigma=0.8, seed=2)
    x_ref, lam_ref = second_eigenvector(feats, binary=binary, solver="dense")
    x, lam = second_eigenvector(feats, binary=binary, solver=solver)
    cos = abs(x @ x_ref) / np.linalg.norm(x) / np.linalg.norm(x_ref)
    assert cos > 1 - 1e-6
    assert lam == pytest.approx(lam_ref, rel=1e-5, abs=1e-9)
    # the vector solves (D - W) x = lambda D x
    w = dense_affinity(feats, binary=binary).numpy()
    d = w.sum(1)
    np.testing.assert_allclose(d * x - w @ x, lam * d * x, atol=1e-6 * np.abs(d * x).max())


@pytest.mark.parametrize("solver", ["dense", "sparse", "torch"])
def test_maskcut_returns_the_planted_object(solver):
    feats, labels = planted_patch_features(GRID, 64, ONE, sigma=0.8, seed=3)
    result = maskcut(feats, GRID, num_objects=1, solver=solver)
    assert result.masks.shape == (1, *GRID)
    assert iou(result.masks[0], labels.numpy() == 1) == 1.0


def test_three_planted_objects_are_found_and_solvers_agree():
    feats, labels = planted_patch_features(GRID, 64, THREE, sigma=0.8, seed=4)
    truth = [labels.numpy() == i for i in (1, 2, 3)]
    dense = maskcut(feats, GRID, num_objects=3, solver="dense")
    sparse = maskcut(feats, GRID, num_objects=3, solver="sparse")
    cold = maskcut(feats, GRID, num_objects=3, solver="sparse", warm_start=False)
    np.testing.assert_array_equal(dense.masks, sparse.masks)
    np.testing.assert_array_equal(sparse.masks, cold.masks)
    for m in dense.masks:  # each cut is exactly one planted object, no overlap
        assert max(iou(m, t) for t in truth) == 1.0
    assert not (dense.masks.sum(0) > 1).any()
    assert {int(np.argmax([iou(m, t) for t in truth])) for m in dense.masks} == {0, 1, 2}


def test_sign_of_the_eigenvector_does_not_matter():
    feats, _ = planted_patch_features(GRID, 64, ONE, sigma=0.8, seed=5)
    x, _ = second_eigenvector(feats, solver="dense")
    a, seed_a = choose_foreground(x, GRID)
    b, seed_b = choose_foreground(-x, GRID)
    assert np.array_equal(a, b) and seed_a == seed_b


def test_corner_rule_reverses_and_skips():
    h, w = 6, 6
    # the seed (largest |x|) lies on the left half, which holds 2 corners
    x = np.where(np.arange(w) < 3, 1.0, -0.5)[None, :].repeat(h, 0).ravel()
    x[7] = 2.0
    mask, _ = choose_foreground(x, (h, w), corner_limit=3)
    assert mask[:, :3].all() and not mask[:, 3:].any()
    # with the stricter limit both halves hold 2 corners: no object
    assert choose_foreground(x, (h, w), corner_limit=2) is None
    # a frame-like side holding all 4 corners is reversed to the centre
    x = np.full(h * w, 1.0).reshape(h, w)
    x[2:4, 2:4] = -3.0
    mask, seed = choose_foreground(x.ravel(), (h, w), corner_limit=3)
    assert mask.sum() == 4 and mask[2:4, 2:4].all() and seed in (14, 15, 20, 21)


def test_keeps_only_the_seed_component():
    x = np.zeros((6, 6))
    x[0:2, 0:2] = 1.0  # component with the seed
    x[0, 0] = 5.0
    x[4:6, 4:6] = 1.0  # same side, not connected
    mask, seed = choose_foreground(x.ravel(), (6, 6), corner_limit=4)
    assert seed == 0 and mask.sum() == 4 and mask[0:2, 0:2].all()


def test_upsample_and_box():
    m = np.zeros((4, 4), dtype=bool)
    m[1, 2] = True
    up = upsample_mask(m, (32, 40))
    assert up.shape == (32, 40) and up.sum() == 8 * 10
    assert mask_to_box(up) == [20.0, 8.0, 10.0, 8.0]
    assert mask_to_box(np.zeros((3, 3), bool)) is None


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"N = 4\*4 = 16"):
        maskcut(torch.zeros(15, 8), (4, 4))
    with pytest.raises(ValueError, match="solver must be one of"):
        second_eigenvector(torch.rand(16, 8), solver="magic")
    with pytest.raises(ValueError, match="eps must be > 0"):
        second_eigenvector(torch.rand(16, 8), eps=0.0)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        second_eigenvector(torch.rand(16))
