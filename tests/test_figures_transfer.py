"""cratelib.figures.transfer: Table 3 beside ours, and the bars of the transfer chapter."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from cratelib.eval.reference import TABLE3_PARAMS_M, TABLE3_TRANSFER  # noqa: E402
from cratelib.figures import transfer  # noqa: E402


def test_table3_rows_hold_the_paper_numbers_then_ours():
    rows = transfer.table3_rows({"book CRATE": {"parameters (M)": "0.2", "downstream": "80.0"}},
                                datasets=["CIFAR10", "Pets"])
    assert [r["model"] for r in rows] == [*TABLE3_TRANSFER, "book CRATE"]
    first = rows[0]
    assert first["CIFAR10"] == f"{TABLE3_TRANSFER['CRATE-T']['CIFAR10']:.1f}"
    assert first["parameters (M)"] == f"{TABLE3_PARAMS_M['CRATE-T']:.2f}"
    assert list(first) == ["model", "parameters (M)", "CIFAR10", "Pets", "downstream"]
    assert rows[-1]["downstream"] == "80.0" and rows[-1]["CIFAR10"] == "" and first["downstream"] == ""


def test_plot_transfer_draws_one_bar_per_model_and_regime():
    results = {"CRATE": {"as_is": 0.5, "probe": 0.6, "finetune": 0.7, "scratch": 0.1},
               "ViT": {"as_is": 0.4, "finetune": 0.8}}
    fig = transfer.plot_transfer(results, chance=0.1)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches if np.isfinite(p.get_height()))
    assert len(ax.patches) == 8  # 2 models x 4 regimes (a missing one is a NaN bar)
    assert heights == [0.1, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CRATE", "ViT"]
