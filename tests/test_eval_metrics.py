"""IoU, eqs. 13-14, confusion-matrix mIoU and the two thresholding modes."""

import numpy as np
import pytest
import torch

from cratelib.eval.metrics import (
    best_head_iou,
    best_head_miou,
    confusion_matrix,
    iou,
    nan_mean,
    miou_from_confusion,
)
from cratelib.eval.threshold import mass_mask, threshold_maps, top_entries_mask


def square(h, w, r0, r1, c0, c1):
    m = np.zeros((h, w), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def test_iou_perfect_empty_and_partial():
    gt = square(8, 8, 2, 6, 2, 6)  # 16 pixels
    assert iou(gt, gt) == 1.0
    assert iou(np.zeros_like(gt), gt) == 0.0
    half = square(8, 8, 2, 4, 2, 6)  # 8 pixels inside gt
    assert iou(half, gt) == pytest.approx(8 / 16)
    shifted = square(8, 8, 4, 8, 2, 6)  # overlap 8, union 24
    assert iou(shifted, gt) == pytest.approx(8 / 24)
    assert np.isnan(iou(np.zeros_like(gt), np.zeros_like(gt)))


def test_iou_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        iou(np.zeros((4, 4)), np.zeros((4, 5)))


def test_best_head_picks_the_matching_head():
    gt = square(8, 8, 0, 4, 0, 8)
    heads = np.stack([square(8, 8, 4, 8, 0, 8), square(8, 8, 0, 4, 0, 4), gt])
    val, k = best_head_iou(heads, gt)
    assert (val, k) == (1.0, 2)
    val, k = best_head_iou(heads[:2], gt)
    assert k == 1 and val == pytest.approx(0.5)


def test_best_head_miou_averages_classes_and_ignores_255():
    labels = np.zeros((8, 8), dtype=np.int64)
    labels[0:4, 0:4] = 3
    labels[4:8, 4:8] = 7
    labels[0, :] = 255  # ignore row: head pixels there must not count
    head_a = labels == 3
    head_a[0, :] = True  # extra pixels only in the ignored row
    head_b = square(8, 8, 4, 8, 4, 6)  # half of class 7
    miou, per, heads = best_head_miou(np.stack([head_a, head_b]), labels)
    assert per == {3: 1.0, 7: pytest.approx(0.5)} and heads == {3: 0, 7: 1}
    assert miou == pytest.approx(0.75)
    miou_bg, per_bg, _ = best_head_miou(np.stack([head_a, head_b]), labels, include_background=True)
    assert set(per_bg) == {0, 3, 7} and miou_bg < miou
    assert np.isnan(best_head_miou(np.stack([head_a]), np.zeros((8, 8), int))[0])


def test_known_confusion_matrix_by_hand():
    target = np.array([0, 0, 0, 1, 1, 2, 2, 2, 255])
    pred = np.array([0, 0, 1, 1, 1, 2, 0, 2, 1])
    conf = confusion_matrix(pred, target, num_classes=3)
    expected = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 2]])
    np.testing.assert_array_equal(conf, expected)
    miou, per = miou_from_confusion(conf)
    # class 0: tp 2, fp 1, fn 1 -> 2/4; class 1: 2/3; class 2: 2/3
    np.testing.assert_allclose(per, [0.5, 2 / 3, 2 / 3])
    assert miou == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)


def test_confusion_perfect_and_absent_class():
    t = np.array([[0, 1], [1, 0]])
    miou, per = miou_from_confusion(confusion_matrix(t, t, num_classes=4))
    assert miou == 1.0 and np.isnan(per[2]) and np.isnan(per[3])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        confusion_matrix(np.array([5]), np.array([0]), num_classes=4)


def test_nan_mean_skips_nan():
    assert nan_mean([0.5, float("nan"), 1.0]) == 0.75


HAND_MAP = torch.tensor(
    [[0.40, 0.20, 0.10], [0.10, 0.05, 0.05], [0.04, 0.03, 0.03]]
)  # sums to 1


def test_mass_threshold_on_hand_made_map():
    # descending: .40 .20 .10 .10 ... ; .40+.20 = .60 reaches 60 % of the mass
    m = mass_mask(HAND_MAP, 0.6)
    assert m.sum() == 2 and m[0, 0] and m[0, 1]
    m = mass_mask(HAND_MAP, 0.65)  # needs one more 0.10 entry
    assert m.sum() == 3 and m[0, 0] and m[0, 1]
    # scale does not matter: unnormalised maps give the same mask
    assert torch.equal(mass_mask(HAND_MAP * 7.0, 0.6), mass_mask(HAND_MAP, 0.6))


def test_top_entries_threshold_on_hand_made_map():
    m = top_entries_mask(HAND_MAP, 0.6)  # round(0.6 * 9) = 5 entries
    assert m.sum() == 5
    assert not m[2].any()  # the three smallest entries are dropped ...
    assert m[1, 1] ^ m[1, 2]  # ... and one of the tied 0.05s
    assert m[0].all() and m[1, 0]


def test_threshold_modes_batch_and_errors():
    maps = torch.rand(2, 3, 6, 6)
    assert threshold_maps(maps, 0.6, "top-entries").flatten(-2).sum(-1).eq(22).all()
    mm = threshold_maps(maps, 0.6, "mass")
    kept = (maps * mm).flatten(-2).sum(-1) / maps.flatten(-2).sum(-1)
    assert (kept >= 0.6 - 1e-6).all()
    with pytest.raises(ValueError, match="mode"):
        threshold_maps(maps, 0.6, "median")
    with pytest.raises(ValueError, match="non-negative"):
        mass_mask(-maps)
    with pytest.raises(ValueError, match=r"\(\.\.\., h, w\)"):
        top_entries_mask(torch.rand(5))
