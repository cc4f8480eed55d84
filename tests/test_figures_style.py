"""cratelib.figures.style (the shared figure style, outlines, overlays) and cratelib.eval.threads."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cratelib.eval.threads import single_thread  # noqa: E402
from cratelib.figures.style import STYLE, contour, overlay_masks, styled  # noqa: E402


def test_styled_applies_the_style_only_inside():
    @styled
    def font_size():
        return plt.rcParams["font.size"]

    outside = plt.rcParams["font.size"]
    assert font_size() == STYLE["font.size"]
    assert plt.rcParams["font.size"] == outside
    assert font_size.__name__ == "font_size"


def test_contour_draws_only_proper_masks():
    fig, ax = plt.subplots()
    contour(ax, np.zeros((8, 8), bool), "white")
    contour(ax, np.ones((8, 8), bool), "white")
    assert not ax.collections
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    contour(ax, mask, "white")
    assert ax.collections
    plt.close(fig)


def test_single_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), single_thread():
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_finish_removes_ticks_sets_title_and_returns_the_figure():
    from cratelib.figures.style import finish, no_ticks

    fig, axes = plt.subplots(2, 2)
    axes[0, 0].plot([0, 1], [0, 1])
    assert finish(fig, axes, "a title", pad=0.3) is fig
    assert all(len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0 for ax in axes.flat)
    assert fig._suptitle is not None and fig._suptitle.get_text() == "a title"
    one_fig, one_ax = plt.subplots()
    no_ticks(one_ax)  # a single axis works too
    assert len(one_ax.get_xticks()) == 0
    plt.close(fig)
    plt.close(one_fig)


def test_overlay_masks_keeps_colour_slots_of_empty_masks():
    fig, ax = plt.subplots()
    a = np.zeros((8, 8), bool)
    a[1:3, 1:3] = True
    overlay_masks(ax, [np.zeros((8, 8), bool), a])
    assert len(ax.images) == 1 and len(ax.patches) == 1  # one overlay and one box: the empty mask is skipped
    assert ax.patches[0].get_edgecolor()[:3] == plt.get_cmap("tab10")(1)[:3]
    plt.close(fig)


def test_shared_legend_lists_each_label_once_beside_the_panels():
    import matplotlib.pyplot as plt

    from cratelib.figures.style import shared_legend

    fig, axes = plt.subplots(1, 2)
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="crate")
    axes[1].plot([0, 1], [1, 0], label="vit")
    shared_legend(fig, axes, width=0.2)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["crate", "vit"]
    assert max(ax.get_position().x1 for ax in axes) <= 0.8 + 1e-9
    plt.close(fig)
