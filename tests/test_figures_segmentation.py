"""Figures of the coarse-segmentation chapter (cratelib.figures.segmentation)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cratelib.eval.segmentation import head_mask_scores  # noqa: E402
from cratelib.figures import segmentation as sg  # noqa: E402


def square_labels(size=32, lo=8, hi=24, cls=3):
    lab = np.zeros((size, size), np.int64)
    lab[lo:hi, lo:hi] = cls
    return lab


def test_plots_draw_every_head():
    gen = torch.Generator().manual_seed(0)
    images = [np.full((32, 32, 3), 100, np.uint8)] * 2
    labels = [square_labels(), square_labels()]
    maps = torch.rand(2, 3, 4, 4, generator=gen)
    scored = head_mask_scores(maps, labels)
    fig = sg.plot_head_masks(images, scored, labels)
    assert len(fig.axes) == 2 * 4
    assert fig.axes[1].get_title() == f"head 1, IoU {scored[0].head_iou[0]:.2f}"
    assert fig.axes[0].get_title() == f"eq. 14 = {scored[0].miou:.2f}"
    fig = sg.plot_head_masks(images[:1], head_mask_scores(maps[0], labels[0], 0.4, "mass"), labels[:1], title="one")
    assert len(fig.axes) == 4 and fig._suptitle.get_text() == "one"
    fig = sg.plot_threshold_curves([0.2, 0.6], {"a": [0.1, 0.2], "b": [0.3, 0.1]}, mark=0.6)
    assert len(fig.axes[0].get_lines()) == 3  # two curves and the mark
    fig = sg.plot_bars({"CRATE": 20.0, "ViT": 10.0}, {"CRATE": 23.9}, labels=("ours", "paper, VOC"))
    assert len(fig.axes[0].patches) == 4
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ours", "paper, VOC"]


def test_head_mask_scores_pick_the_head_on_the_object():
    labels = square_labels()
    maps = torch.zeros(2, 4, 4)
    maps[0, 1:3, 1:3] = 1.0  # head 1 on the square, head 2 off it
    maps[1, 0, :] = 1.0
    (scored,) = head_mask_scores(maps, labels, 0.25, "top-entries")
    assert scored.masks.shape == (2, 32, 32) and scored.best == 0
    assert scored.head_iou[0] == 1.0 and scored.head_iou[1] == 0.0 and scored.miou == 1.0
