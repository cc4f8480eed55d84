"""cratelib.figures.curves, cratelib.figures.heads and cratelib.figures.tables: curves over layers,
epochs and noise, what each head looks at, and the one table formatter."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cratelib.eval.localisation import KINDS, head_summary, kind_shares  # noqa: E402
from cratelib.figures import curves, heads  # noqa: E402
from cratelib.figures.tables import format_table  # noqa: E402


def test_series_and_layerwise_curves():
    fig = curves.plot_series({"a": {0: 1.0, 2: 3.0}, "b": {1: 2.0}}, "x", "y", styles={"b": "--"})
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].lines[1].get_linestyle() == "--"
    fig = curves.plot_layerwise({"crate": {0: 0.1, 1: 0.3}, "vit": {0: 0.2, 1: 0.2}}, "mIoU", title="t")
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [1, 2]  # layers drawn from 1
    assert ax.get_legend() is not None and ax.get_title() == "t"
    assert tuple(fig.get_size_inches()) == (7.5, 3.3)


def test_layer_curves_and_layer_epoch():
    panels = {"a": {"CRATE": [0.1, 0.2], "CRATE, initialisation": [0.1, 0.1]}, "b": {"CRATE": [1, 2]}}
    fig = curves.plot_layer_curves(panels, {"CRATE": "tab:blue"}, {"a": {"chance": 0.05}})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    assert fig.axes[0].lines[1].get_linestyle() == "--"
    fig = curves.plot_layer_epoch(np.arange(6.0).reshape(2, 3), [0, 5], "mIoU")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0", "5"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2", "3"]



def test_epoch_axis_gives_early_snapshots_room():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    ax.plot([0, 1, 2, 5, 10, 20, 50], np.linspace(0.5, 0.8, 7))
    curves.epoch_axis(ax, [0, 1, 2, 5, 10, 20, 50, 20])
    assert ax.get_xscale() == "symlog"
    assert list(ax.get_xticks()) == [0, 1, 2, 5, 10, 20, 50]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "5", "10", "20", "50"]
    x = ax.transData.transform([[e, 0.6] for e in (0, 1, 2, 5, 50)])[:, 0]
    assert x[1] - x[0] > (x[4] - x[3]) / 4  # epoch 0 -> 1 is not squeezed against 5 -> 50
    assert ax.get_xlim()[1] > 50
    with pytest.raises(ValueError, match="non-negative"):
        curves.epoch_axis(ax, [])
    plt.close("all")

def test_head_rows_number_heads_from_one():
    m = {"object": np.array([[0.2, 0.8], [0.4, 0.6]]), "dy": np.array([[0.1, -0.1], [0.1, -0.3]]),
         "best": np.array([[0.0, 1.0], [1.0, 0.0]])}
    rows = head_summary(m, "M", keys=("object", "dy"))
    assert [r["head"] for r in rows] == ["M 1", "M 2"]
    assert rows[0]["object"] == "0.30 (0.10)" and rows[1]["dy"] == "-0.20 (0.10)"
    assert rows[0]["best head"] == "50%"


def test_head_figures():
    m = {"A": {k: np.random.default_rng(0).random((4, 2)) for k in ("object", *KINDS, "iou", "best", "dy", "dx")}}
    shares = kind_shares(m["A"])
    assert shares.shape == (2, 3) and np.allclose(shares[1], [m["A"][k][:, 1].mean() for k in KINDS])
    fig = heads.plot_head_measures({"A": shares}, {"background": 0.6, "outline": 0.2, "interior": 0.2})
    assert len(fig.axes[0].patches) == 3 * 3  # uniform bar + 2 heads, three kinds each
    assert "head 1" in fig.axes[0].get_xticklabels()[1].get_text()
    fig = heads.plot_class_heads({"A": np.eye(3, 2)}, ["a", "b", "c"], "share")
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2"]


def test_format_table():
    rows = [{"dataset": "CIFAR10", "ours": 91.234, "paper": 94.1}, {"dataset": "Pets", "paper": 77.0}]
    text = format_table(rows, digits=1)
    assert text.splitlines()[0] == "| dataset | ours | paper |"
    assert "| CIFAR10 | 91.2 | 94.1 |" in text and "| Pets | - | 77.0 |" in text
    assert format_table(rows, ["paper", "dataset"]).splitlines()[0] == "| paper | dataset |"


def test_mean_spread_says_how_many_seeds_a_number_rests_on():
    from cratelib.eval.study.tables import mean_spread

    assert mean_spread({"mean": 0.8551, "spread": 0.0123, "seeds": 3}) == "0.855 ± 0.012 (3 seeds)"
    assert mean_spread({"mean": 0.8331, "spread": float("nan"), "seeds": 1}) == "0.833 (1 seed)"
    assert mean_spread({"mean": 18.04, "spread": float("nan"), "seeds": 0}, digits=1) == "18.0"  # a baseline
    assert mean_spread(None) == "-"
