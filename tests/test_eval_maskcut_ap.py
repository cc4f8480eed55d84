"""MaskCut over a data set (cratelib.eval.maskcut_eval): AP in percent, per-object hits, timings,
the per-layer driver; the replay of one cut's decisions; the solver choice."""
import json

import numpy as np
import pytest
import torch

from cratelib import create_model
from cratelib.eval.maskcut import choose_foreground, explain_cut
from cratelib.eval.maskcut_eval import METRIC_COLUMNS, layerwise_maskcut, maskcut_ap, object_hits
from cratelib.eval.ncut import solver_for, time_solvers
from cratelib.eval.sources import Sample, embedded_coco, gt_masks
from planted import SQUARE_BOX, SQUARE_GRID, planted_patch_features, square_images, square_mask

GRID, BOX = SQUARE_GRID, SQUARE_BOX


def _patch_mask():
    return square_mask().numpy()


def toy_set(coco_gt, num=2, size=64):
    """Images with one bright square on a dark background, features planted on the same square,
    and the COCO ground truth of the squares."""
    feats, samples, pixels = square_images(num, size)
    return feats, samples, coco_gt({i + 1: [(pixels, 5)] for i in range(num)}, categories={5: "square"})


def test_explain_cut_makes_the_decisions_of_choose_foreground():
    rng = np.random.default_rng(0)
    vectors = [rng.normal(size=64) for _ in range(40)]
    vectors += [planted_patch_features(GRID, 32, (BOX,), 0.5, seed=s)[0].numpy() @ rng.normal(size=32)
                for s in range(5)]
    for x in vectors:
        x = np.asarray(x, dtype=float)
        for limit in (2, 3):
            ex = explain_cut(x.reshape(GRID), limit)
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
    ex = explain_cut(x, corner_limit=3)
    assert ex.flipped and not ex.rejected and ex.corners == 4
    np.testing.assert_array_equal(ex.mask, x < 0)
    y = np.zeros(GRID)
    y[:, :4] = 1.0  # each side holds two corners
    y[0, 0] = 3.0
    ex = explain_cut(y, corner_limit=2)
    assert ex.flipped and ex.rejected and not ex.mask.any()
    assert not explain_cut(y, corner_limit=3).flipped


def test_maskcut_ap_finds_planted_objects_with_and_without_crf(coco_gt):
    feats, samples, gt = toy_set(coco_gt)
    res = maskcut_ap(feats, GRID, samples, gt, crf=True, crf_size=64, solver="dense")
    assert set(res.ap) == {"no_crf", "crf"} == set(res.scores) == set(res.hits)
    assert set(res.ap["no_crf"]) == set(METRIC_COLUMNS)
    assert res.ap["no_crf"]["det AP50"] == pytest.approx(100.0)
    assert res.ap["no_crf"]["det AP50"] == pytest.approx(100 * res.scores["no_crf"]["bbox"]["AP50"])
    assert res.ap["no_crf"]["seg AP75"] == pytest.approx(100.0)  # the square is whole patches
    assert res.ap["crf"]["seg AP50"] == pytest.approx(100.0)
    np.testing.assert_array_equal(res.hits["no_crf"], [1.0, 1.0])
    assert set(res.seconds) == {"maskcut", "crf", "coco"} and all(t >= 0 for t in res.seconds.values())
    assert len(res.patch_masks) == 2 and res.patch_masks[0].shape == (3, *GRID)
    np.testing.assert_array_equal(res.patch_masks[0][0], _patch_mask())
    without = maskcut_ap(feats, GRID, samples, gt)
    assert set(without.ap) == {"no_crf"} and "crf" not in without.seconds
    unscored = maskcut_ap(feats, GRID, samples, None, solver="dense")  # images without ground truth
    assert unscored.scores == {} and unscored.hits == {} and len(unscored.run.detections) >= 2


def test_maskcut_ap_scores_zero_for_masks_on_the_background(coco_gt):
    _, samples, gt = toy_set(coco_gt)
    off = ((5, 8, 5, 8),)  # plant the "object" elsewhere: MaskCut finds the wrong square
    feats = torch.stack([planted_patch_features(GRID, 32, off, 0.3, seed=i)[0] for i in range(2)])
    res = maskcut_ap(feats, GRID, samples, gt, solver="dense")
    assert res.ap["no_crf"]["det AP50"] == pytest.approx(0.0)
    np.testing.assert_array_equal(res.hits["no_crf"], [0.0, 0.0])


def test_object_hits_and_box_iou():
    gt = {"images": [{"id": 1}, {"id": 2}],
          "annotations": [{"image_id": 1, "bbox": [0, 0, 10, 10]}, {"image_id": 1, "bbox": [20, 20, 10, 10]},
                          {"image_id": 2, "bbox": [0, 0, 10, 10]}]}
    dets = [{"image_id": 1, "bbox": [0, 0, 10, 8]},  # IoU 0.8 with the first object
            {"image_id": 1, "bbox": [25, 25, 10, 10]},  # IoU 25/175 with the second
            {"image_id": 2, "bbox": [0, 0, 10, 10]}]
    np.testing.assert_array_equal(object_hits(dets, gt), [1, 0, 1])
    np.testing.assert_array_equal(object_hits(dets, gt, threshold=0.9), [0, 0, 1])
    np.testing.assert_array_equal(object_hits([], gt), [0, 0, 0])


def test_layerwise_maskcut_on_a_tiny_model(tmp_path, coco_gt):
    torch.manual_seed(0)
    model = create_model("crate_nano_patch8", img_size=32, num_classes=3, depth=2, dim=48, num_heads=2).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    samples = [Sample(im, i + 1, str(i)) for i, im in enumerate(images)]
    square = np.zeros((32, 32), bool)
    square[4:20, 4:20] = True  # box [4, 4, 16, 16], area 256
    gt = coco_gt({1: [square], 2: [square]})
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    out = layerwise_maskcut(model, samples, path)
    assert sorted(out) == [0, 1]
    for result in out.values():
        assert result.run.patch_masks[0].shape == (3, 4, 4)  # the model's own 32 px: a 4x4 grid
        assert 0 <= result.ap["no_crf"]["det AP"] <= result.ap["no_crf"]["det AP50"] <= 100
        assert result.hits["no_crf"].shape == (2,)
    last = layerwise_maskcut(model, samples, gt, layers=[-1], img_size=64, solver="dense")
    assert list(last) == [-1] and last[-1].run.patch_masks[0].shape == (3, 8, 8)


def test_time_solvers_times_every_solver():
    feats, _ = planted_patch_features((10, 10), 16, ((2, 6, 2, 6),), 0.3, seed=0)
    times = time_solvers(feats, repeats=2)
    assert set(times) == {"dense", "sparse"} and all(t > 0 for t in times.values())


def test_solver_for_picks_dense_for_small_grids_and_torch_on_cuda():
    assert solver_for((8, 8)) == "dense"
    assert solver_for((16, 16)) == "sparse"
    assert solver_for((60, 60), "cuda") == "torch"
    assert solver_for((10, 10), dense_up_to=99) == "sparse"


def test_embedded_coco_and_gt_masks(tmp_path):
    samples, gt = embedded_coco(2, tmp_path)
    assert len(samples) == 2 and gt.is_file()
    masks = gt_masks(gt, samples[0].image_id)
    assert masks and all(m.shape == samples[0].image.shape[:2] and m.dtype == bool for m in masks)
