"""cratelib.eval.segmentation beyond one image: stacks of layers, the ceiling of the top-entries
rule, eq. 14 against the threshold, and the driver from a model."""
import numpy as np
import pytest
import torch

from cratelib.eval.baselines import random_maps
from cratelib.eval.segmentation import coarse_segmentation, miou_vs_threshold, top_entries_ceiling


def square_labels(size=32, lo=8, hi=24, cls=3):
    lab = np.zeros((size, size), np.int64)
    lab[lo:hi, lo:hi] = cls
    return lab


def test_a_stack_of_layers_is_scored_layer_by_layer():
    gen = torch.Generator().manual_seed(0)
    maps = torch.rand(3, 2, 4, 4, 4, generator=gen)  # (L, J, K, h, w)
    labels = [square_labels(), square_labels(lo=0, hi=16)]
    res = coarse_segmentation(maps, labels, 0.5, "mass")
    assert sorted(res.miou) == [0, 1, 2]
    for l in range(3):
        assert res.miou[l] == coarse_segmentation({0: maps[l]}, labels, 0.5, "mass").miou[0]
    with pytest.raises(ValueError, match="stack of maps"):
        coarse_segmentation(maps[0], labels)


def test_a_map_on_the_object_reaches_the_ceiling_random_maps_do_not():
    lab = square_labels()  # object: the central 16x16 of 32x32 = 2x2 of a 4x4 grid, share 1/4
    on_object = torch.full((1, 1, 4, 4), 0.01)
    on_object[..., 1:3, 1:3] = 1.0
    # top-entries with P = 0.25 keeps exactly the 4 object patches: IoU 1 = the ceiling at that P
    assert coarse_segmentation(on_object[None], [lab], 0.25).miou[0] == pytest.approx(1.0)
    assert top_entries_ceiling([lab], (4, 4), 0.25) == pytest.approx(1.0)
    # at P = 0.6 the set keeps round(9.6) = 10 patches: ceiling (4/16) / (10/16) = 0.4, reached
    assert top_entries_ceiling([lab], (4, 4), 0.6) == pytest.approx(0.4)
    assert coarse_segmentation(on_object[None], [lab], 0.6).miou[0] == pytest.approx(0.4)
    chance = coarse_segmentation(random_maps(50, 2, (4, 4), seed=1)[None], [lab] * 50, 0.25).miou[0]
    assert 0.05 < chance < 0.6


def test_top_entries_ceiling_bounds_any_map():
    gen = torch.Generator().manual_seed(3)
    labels = [square_labels(lo=4, hi=28), square_labels(lo=12, hi=20)]
    ceiling = top_entries_ceiling(labels, (8, 8), 0.6)
    for _ in range(20):
        maps = torch.rand(1, 2, 3, 8, 8, generator=gen)
        assert coarse_segmentation(maps, labels, 0.6).miou[0] <= ceiling + 1e-9


def test_miou_vs_threshold_is_eq14_at_each_p():
    gen = torch.Generator().manual_seed(2)
    maps = torch.rand(2, 3, 4, 4, generator=gen)
    labels = [square_labels(), square_labels(lo=0, hi=8)]
    ps = [0.2, 0.6]
    curve = miou_vs_threshold(maps, labels, ps, "top-entries")
    assert curve.shape == (2,)
    for value, p in zip(curve, ps):
        assert value == pytest.approx(coarse_segmentation(maps[None], labels, p).miou[0])
