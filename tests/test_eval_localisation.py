"""cratelib.eval.localisation and cratelib.eval.baselines: how well maps localise a known object,
per layer, image and head, and the maps and features that learned nothing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cratelib.eval import baselines
from cratelib.eval.extract import to_model_input
from cratelib.eval.scoring import MEASURES, Targets, score_maps
from cratelib.eval.localisation import (
    attention_on,
    best_head_ious,
    class_head_means,
    head_measures,
    map_auc,
    map_overlap,
    mass_coverage,
    object_fraction,
    patch_kinds,
    uniform_ious,
)


def _square_truth(size=16, rows=slice(4, 12), cols=slice(4, 12)):
    t = np.zeros((size, size), bool)
    t[rows, cols] = True
    return t


def _disc(r: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:64, :64]
    return (yy - 24) ** 2 + (xx - 24) ** 2 < r**2 / 4


def test_object_fraction_and_attention_on():
    truth = np.zeros((16, 16), bool)
    truth[:8, :8] = True  # the top-left patch of a 2 x 2 grid
    truth[8:12, 8:16] = True  # half of the bottom-right patch
    frac = object_fraction([truth], (2, 2))
    torch.testing.assert_close(frac, torch.tensor([[[1.0, 0.0], [0.0, 0.5]]]))
    on_object = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # (J=1, K=1, 2, 2)
    uniform = torch.full((1, 1, 2, 2), 0.25)
    assert attention_on(on_object, frac).item() == pytest.approx(1.0)
    assert attention_on(uniform, frac).item() == pytest.approx(frac.mean().item())


def test_patch_kinds_partition_the_patches():
    frac = torch.tensor([[[0.0, 0.5], [1.0, 0.25]]])
    kinds = patch_kinds(frac)
    assert set(kinds) == {"background", "outline", "interior"}
    torch.testing.assert_close(sum(kinds.values()), torch.ones_like(frac))
    assert kinds["background"][0, 0, 0] == 1 and kinds["interior"][0, 1, 0] == 1
    assert kinds["outline"][0].sum() == 2


def test_best_head_ious_picks_the_head_on_the_object():
    truth = np.zeros((16, 16), bool)
    truth[:8, :8] = True
    good = torch.tensor([[0.97, 0.01], [0.01, 0.01]])
    bad = torch.tensor([[0.01, 0.01], [0.01, 0.97]])
    ious, heads = best_head_ious(torch.stack([bad, good])[None], [truth])
    assert heads.tolist() == [1]
    assert ious[0] == pytest.approx(1.0)
    # a uniform map keeps every patch: IoU = the object's share of the image
    assert uniform_ious([truth])[0] == pytest.approx(0.25)


def test_map_auc_ranks_object_patches_without_a_threshold():
    truth = _square_truth()  # the middle 2x2 of a 4x4 grid
    frac = object_fraction([truth], (4, 4))
    on = 0.01 + frac  # every object patch above every background patch
    maps = torch.stack([on[0], 1.01 - frac[0], torch.ones(4, 4)])[None]  # (J=1, K=3, 4, 4)
    auc = map_auc(maps, frac)
    assert auc.shape == (1, 3) and auc.dtype == torch.float64
    torch.testing.assert_close(auc[0], torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64))
    # one object patch ranked below every background patch: 3 of its 4 x 12 pairs ... 36 / 48 = 0.75
    part = on.clone()
    part[0, 1, 1] = 0.0
    assert map_auc(part[None], frac).item() == pytest.approx(36 / 48)
    # an image that is all object has no AUC
    assert torch.isnan(map_auc(torch.rand(1, 1, 4, 4), torch.ones(1, 4, 4))).all()
    # min_share: "any object pixel" counts the half-covered patches too
    half = torch.zeros(1, 4, 4)
    half[0, 0, 0] = 0.25
    assert map_auc(half[:, None] + 0.01, half, min_share=0.5).isnan().all()
    assert map_auc(half[:, None] + 0.01, half, min_share=1e-6).item() == pytest.approx(1.0)


def test_score_maps_reward_a_map_on_the_object():
    truth = _disc()
    labels = truth.astype(np.uint8) * 3
    frac = object_fraction([truth], (8, 8))[0]
    inside = (frac == 1).float() + 1e-9  # attention only on patches wholly inside the object
    on_object = inside / inside.sum()
    uniform = torch.full((8, 8), 1 / 64)
    maps = torch.stack([on_object, uniform])[:, None, None].expand(2, 2, 1, 8, 8)  # (L=2, J=2, K=1)
    s = score_maps(maps, Targets.from_masks([truth, truth], (8, 8), labels=[labels, labels]))
    assert set(s.values) == {"auc_half", "auc_any", "on_main", "mass_iou", "miou"}  # no distractors given
    assert s["on_main"].shape == s["auc_half"].shape == (2, 2, 1)
    assert s["miou"].shape == s["mass_iou"].shape == (2, 2)
    assert s["on_main"][1, 0, 0] == pytest.approx(truth.mean(), abs=0.02)  # uniform map: the object's share
    assert s["on_main"][0, 0, 0] > 0.99 and s["auc_half"][1, 0, 0] == pytest.approx(0.5)  # flat ranks nothing
    # the interior patches outrank everything; the object's edge patches tie with the background
    positive = (frac >= 0.5).flatten()
    n1, n0, top = int(positive.sum()), int((~positive).sum()), int((frac == 1).sum())
    assert s["auc_half"][0, 0, 0] == pytest.approx((top * n0 + (n1 - top) * n0 / 2) / (n1 * n0))
    assert s["auc_any"][0, 0, 0] < s["auc_half"][0, 0, 0]  # edge patches now count as object
    assert s["mass_iou"][0, 0] > s["mass_iou"][1, 0]
    assert s.chosen("on_main").shape == s.head_mean("miou").shape == (2, 2)
    heads = score_maps(torch.rand(1, 2, 3, 8, 8), Targets.from_masks([truth, truth], (8, 8)))
    assert (heads.head("on_main") == heads.head()).all()  # no own head: reported at the AUC's head
    assert "miou" not in score_maps(maps, Targets.from_masks([truth, truth], (8, 8))).values  # no labels: no eq. 14


def test_score_maps_takes_one_measure_added_by_name():
    truth = _disc()
    maps = torch.rand(1, 3, 2, 8, 8)
    targets = Targets.from_masks([truth] * 3, (8, 8))
    MEASURES["peak"] = type(MEASURES["on_main"])(lambda m, t: m.flatten(-2).max(-1).values.numpy())
    try:
        s = score_maps(maps, targets, measures=["auc_half", "peak"])
    finally:
        del MEASURES["peak"]
    np.testing.assert_allclose(s["peak"], maps.flatten(-2).max(-1).values.numpy())
    with pytest.raises(ValueError, match="unknown measures"):
        score_maps(maps, targets, measures=["nope"])
    with pytest.raises(ValueError, match=r"\(L, J, K, h, w\)"):
        score_maps(maps[0], targets)


def test_head_measures_of_planted_heads():
    """4x4 grid of 4x4-pixel patches; the object fills the middle 2x2 patches. Head 1 attends to
    the background only, head 2 uniformly to the object, head 3 to the object's top row."""
    truth = _square_truth()
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, 0] = 1.0
    maps[0, 0, 1:3, 1:3] = 0.0
    maps[0, 1, 1:3, 1:3] = 1.0
    maps[0, 2, 1, 1:3] = 1.0
    m = head_measures(maps, [truth])
    assert all(v.shape == (1, 3) for v in m.values())
    np.testing.assert_allclose(m["object"][0], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(m["background"][0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(m["interior"][0] + m["outline"][0] + m["background"][0], 1.0)
    np.testing.assert_allclose(m["auc"][0], [0.0, 1.0, 0.75])  # top row: 24 wins, 12 ties of 48
    # the uniform object head: 3 of its 4 equal patches hold 60 % of the mass
    assert m["iou"][0, 1] == pytest.approx(0.75)
    assert m["best"][0].tolist() == [0.0, 1.0, 0.0]
    # the top-row head sits a quarter of the object's height above its centre, centred in x
    assert m["dy"][0, 2] == pytest.approx(-0.25)
    assert m["dx"][0, 2] == pytest.approx(0.0, abs=1e-6)
    assert m["dy"][0, 1] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(m["dy"][0, 0])  # no attention on the object: no position on it
    with pytest.raises(ValueError, match="masks"):
        head_measures(torch.rand(2, 2, 4, 4), [truth])


def test_class_head_means():
    values = np.array([[0.2, 0.8], [0.4, 0.6]])
    means = class_head_means(values, [1, 1], num_classes=3)
    assert np.isnan(means[0]).all() and np.isnan(means[2]).all()
    np.testing.assert_allclose(means[1], [0.3, 0.7])


def test_map_overlap_and_mass_coverage():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert map_overlap(a, 3 * a).item() == pytest.approx(1.0)
    assert map_overlap(a, b).item() == pytest.approx(0.0)
    assert map_overlap(a, torch.ones(2, 2)).item() == pytest.approx(0.5)
    peaked = torch.tensor([[0.97, 0.01], [0.01, 0.01]])
    assert mass_coverage(peaked).item() == pytest.approx(0.25)
    assert mass_coverage(torch.ones(3, 2, 2) / 4).tolist() == pytest.approx([0.75] * 3)


# --- baselines -----------------------------------------------------------------------------------


def test_random_maps_are_normalised_and_score_below_a_perfect_map():
    rand = baselines.random_maps(50, 2, (4, 4), seed=1)
    assert rand.shape == (50, 2, 4, 4)
    torch.testing.assert_close(rand.sum((-2, -1)), torch.ones(50, 2))
    torch.testing.assert_close(rand, baselines.random_maps(50, 2, (4, 4), seed=1))
    truth = np.zeros((32, 32), bool)
    truth[8:24, 8:24] = True
    chance = baselines.random_map_ious([truth] * 8, (4, 4), heads=4)
    assert chance.shape == (8,) and 0 < chance.mean() < 0.9


def test_brightness_maps_and_features_point_at_light_patches():
    image = np.full((16, 16, 3), 40, np.uint8)
    image[:8, 8:] = 220
    maps = baselines.brightness_maps([image], patch_size=8)
    assert maps.shape == (1, 1, 2, 2) and maps[0, 0].argmax().item() == 1  # top-right
    assert maps.sum().item() == pytest.approx(1.0)
    img = np.zeros((16, 16, 3), np.uint8)
    img[:8, :8] = 255
    f = baselines.brightness_features([img], patch_size=8)
    assert f.shape == (1, 4, 1)
    torch.testing.assert_close(f[0, :, 0], torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_pixel_features_are_the_patches_of_the_normalised_input():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    feats, grid = baselines.pixel_features(images, 32, patch_size=8)
    assert grid == (4, 4) and feats.shape == (2, 16, 3 * 64)
    x = to_model_input(images, 32)
    r, c = 2, 3
    np.testing.assert_allclose(feats[1, r * 4 + c].numpy(),
                               x[1, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8].reshape(-1).numpy())
