"""Helpers of the MaskCut chapter (cratelib.figures.maskcut)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cratelib.eval.maskcut import choose_foreground, maskcut, upsample_mask  # noqa: E402
from cratelib.eval.reference import TABLE1_COCO_MASKCUT  # noqa: E402
from cratelib.eval.sources import Sample  # noqa: E402
from cratelib.figures import maskcut as mc  # noqa: E402
from planted import planted_patch_features  # noqa: E402

GRID = (8, 8)
BOX = (2, 6, 1, 5)  # rows 2-5, columns 1-4 of the 8x8 grid


def _patch_mask(box=BOX, grid=GRID):
    m = np.zeros(grid, dtype=bool)
    m[box[0]:box[1], box[2]:box[3]] = True
    return m


def test_explain_cut_makes_the_decisions_of_choose_foreground():
    rng = np.random.default_rng(0)
    vectors = [rng.normal(size=64) for _ in range(40)]
    vectors += [planted_patch_features(GRID, 32, (BOX,), 0.5, seed=s)[0].numpy() @ rng.normal(size=32)
                for s in range(5)]
    for x in vectors:
        x = np.asarray(x, dtype=float)
        for limit in (2, 3):
            ex = mc.explain_cut(x.reshape(GRID), limit)
            chosen = choose_foreground(x, GRID, limit)
            if chosen is None:
                assert ex.rejected and not ex.mask.any()
            else:
                assert not ex.rejected
                np.testing.assert_array_equal(ex.mask, chosen[0])
            assert ex.seed == divmod(int(np.argmax(np.abs(x))), GRID[1])


def test_explain_cut_flips_a_corner_side_and_rejects_when_both_have_corners():
    x = np.full(GRID, 1.0)
    x[3:5, 3:5] = -0.5  # the seed (|x| largest) is on the background side that holds 4 corners
    x[0, 0] = 2.0
    ex = mc.explain_cut(x, corner_limit=3)
    assert ex.flipped and not ex.rejected and ex.corners == 4
    np.testing.assert_array_equal(ex.mask, x < 0)
    y = np.zeros(GRID)
    y[:, :4] = 1.0  # each side holds two corners
    y[0, 0] = 3.0
    ex = mc.explain_cut(y, corner_limit=2)
    assert ex.flipped and ex.rejected and not ex.mask.any()
    assert not mc.explain_cut(y, corner_limit=3).flipped


def test_pixel_features_are_the_patches_of_the_normalised_input():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    feats, grid = mc.pixel_features(images, 32, patch=8)
    assert grid == (4, 4) and feats.shape == (2, 16, 3 * 64)
    from cratelib.eval.extract import to_model_input

    x = to_model_input(images, 32)
    r, c = 2, 3
    np.testing.assert_allclose(feats[1, r * 4 + c].numpy(), x[1, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8].reshape(-1).numpy())


def _toy_set(coco_gt, num=2, size=64):
    """Images with one bright square on a dark background, features planted on the same square,
    and the COCO ground truth of the squares."""
    samples, feats = [], []
    patch = _patch_mask()
    pixels = upsample_mask(patch, (size, size))
    for i in range(num):
        image = np.full((size, size, 3), 30, dtype=np.uint8)
        image[pixels] = 220
        samples.append(Sample(image, i + 1, f"toy{i}"))
        f, _ = planted_patch_features(GRID, 32, (BOX,), 0.3, seed=i)
        feats.append(f)
    gt = coco_gt({i + 1: [(pixels, 5)] for i in range(num)}, categories={5: "square"})
    return torch.stack(feats), samples, gt


def test_maskcut_ap_finds_planted_objects_with_and_without_crf(coco_gt):
    feats, samples, gt = _toy_set(coco_gt)
    res = mc.maskcut_ap(feats, GRID, samples, gt, crf=True, crf_size=64, solver="dense")
    assert set(res.ap) == {"no_crf", "crf"}
    assert set(res.ap["no_crf"]) == set(mc.METRIC_COLUMNS)
    assert res.ap["no_crf"]["det AP50"] == pytest.approx(100.0)
    assert res.ap["no_crf"]["seg AP75"] == pytest.approx(100.0)  # the square is whole patches
    assert res.ap["crf"]["seg AP50"] == pytest.approx(100.0)
    assert set(res.seconds) == {"maskcut", "crf", "coco"} and all(t >= 0 for t in res.seconds.values())
    assert len(res.patch_masks) == 2 and res.patch_masks[0].shape == (3, *GRID)
    np.testing.assert_array_equal(res.patch_masks[0][0], _patch_mask())
    without = mc.maskcut_ap(feats, GRID, samples, gt)
    assert set(without.ap) == {"no_crf"} and "crf" not in without.seconds


def test_maskcut_ap_scores_zero_for_masks_on_the_background(coco_gt):
    feats, samples, gt = _toy_set(coco_gt)
    off = ((5, 8, 5, 8),)  # plant the "object" elsewhere: MaskCut finds the wrong square
    feats = torch.stack([planted_patch_features(GRID, 32, off, 0.3, seed=i)[0] for i in range(2)])
    res = mc.maskcut_ap(feats, GRID, samples, gt, solver="dense")
    assert res.ap["no_crf"]["det AP50"] == pytest.approx(0.0)


def test_table1_rows_put_the_paper_beside_ours():
    ours = {"mine": {c: float(i) for i, c in enumerate(mc.METRIC_COLUMNS)}}
    rows = mc.table1_rows(ours)
    assert len(rows) == len(TABLE1_COCO_MASKCUT) + 1
    crate = next(r for r in rows if r["model"] == "CRATE-S/8")
    assert (crate["det AP50"], crate["det AP75"], crate["det AP"]) == TABLE1_COCO_MASKCUT["CRATE-S/8"]["det"]
    assert (crate["seg AP50"], crate["seg AP75"], crate["seg AP"]) == TABLE1_COCO_MASKCUT["CRATE-S/8"]["seg"]
    assert rows[-1]["model"] == "mine" and rows[-1]["seg AP"] == 5.0
    assert len(mc.table1_rows(ours, paper_models=["ViT-S/8"])) == 2
    with pytest.raises(KeyError, match="missing"):
        mc.table1_rows({"bad": {"det AP50": 1.0}})


def test_time_solvers_times_every_solver():
    feats, _ = planted_patch_features((10, 10), 16, ((2, 6, 2, 6),), 0.3, seed=0)
    times = mc.time_solvers(feats, repeats=2)
    assert set(times) == {"dense", "sparse"} and all(t > 0 for t in times.values())


def test_solver_for_picks_dense_for_small_grids_and_torch_on_cuda():
    assert mc.solver_for((8, 8)) == "dense"
    assert mc.solver_for((16, 16)) == "sparse"
    assert mc.solver_for((60, 60), "cuda") == "torch"
    assert mc.solver_for((10, 10), dense_up_to=99) == "sparse"


def test_embedded_coco_and_gt_masks(tmp_path):
    samples, gt = mc.embedded_coco(2, tmp_path)
    assert len(samples) == 2 and gt.is_file()
    masks = mc.gt_masks(gt, samples[0].image_id)
    assert masks and all(m.shape == samples[0].image.shape[:2] and m.dtype == bool for m in masks)


def test_figures_have_one_panel_per_step(coco_gt):
    feats, samples, gt = _toy_set(coco_gt, num=2)
    result = maskcut(feats[0], GRID, 3, solver="dense")
    image = samples[0].image
    truth = [upsample_mask(_patch_mask(), image.shape[:2])]
    fig = mc.plot_cuts(image, result, truths=truth)
    assert len(fig.axes) == 12
    plt.close(fig)
    fig = mc.plot_graph(image, feats[0], GRID, truths=truth)
    assert len([a for a in fig.axes if a.get_title()]) == 4
    plt.close(fig)
    coarse = [upsample_mask(m, image.shape[:2]) for m in result.masks if m.any()]
    fig = mc.plot_crf(image, coarse, [coarse[0]] + [None] * (len(coarse) - 1), truth)
    assert "1.00" in fig.axes[0].get_title()
    plt.close(fig)
    fig = mc.plot_detections([s.image for s in samples], {"a": [coarse, coarse], "b": [[], coarse]}, [truth, truth])
    assert len(fig.axes) == 4
    plt.close(fig)
    fig = mc.plot_maskcut_detail(image, result, truth)
    assert "IoU 1.00" in fig.axes[1].get_title()
    plt.close(fig)
