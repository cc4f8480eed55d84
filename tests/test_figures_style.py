"""cratelib.figures.style: the shared figure style, outlines and the one-thread context."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cratelib.figures.style import STYLE, contour, single_thread, styled  # noqa: E402


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
