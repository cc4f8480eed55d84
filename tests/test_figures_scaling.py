"""Part 3 figures: the token-scaling record and TSSA membership maps."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import cratelib  # noqa: E402
from cratelib.figures.scaling import plot_membership_maps, plot_token_scaling  # noqa: E402


def _record():
    ns = [64, 128, 256, 512]
    ops = {"mssa_explicit": "explicit", "mssa_sdpa": "SDPA", "tssa": "TSSA"}  # sorted, as in a json file
    curves = {"tssa": [n * 1e-4 for n in ns], "mssa_sdpa": [n * n * 5e-7 for n in ns],
              "mssa_explicit": [n * n * 6e-7 for n in ns]}
    results = {op: [{"tokens": n, "time_s": t, "saved_mib": t * 10, "peak_mib": t * 20} for n, t in zip(ns, c)]
               for op, c in curves.items()}
    return {"operators": ops, "results": results, "dim": 64, "heads": 2, "batch": 1, "device": "cpu",
            "fit_from": 64, "exponents": {"tssa": {"time_s": 1.0, "saved_mib": 1.0}, "mssa_sdpa": {"time_s": 2.0,
            "saved_mib": None}, "mssa_explicit": {"time_s": 2.0, "saved_mib": 2.0}},
            "tssa_overtakes": {"mssa_sdpa": {"time_s": 200.0, "saved_mib": None}}}


def test_scaling_figure_draws_every_operator_with_its_exponent():
    fig = plot_token_scaling(_record())
    left, right = fig.axes[:2]
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels == ["TSSA, $N^{1.00}$", "SDPA, $N^{2.00}$", "explicit, $N^{2.00}$"]
    assert [t.get_text() for t in right.get_legend().get_texts()][1] == "SDPA"  # no exponent, no label
    xs = left.lines[0].get_xdata()
    assert list(xs) == [64, 128, 256, 512] and left.get_xscale() == "log"
    assert any(list(line.get_xdata()) == [200.0, 200.0] for line in left.lines)  # where TSSA overtakes
    matplotlib.pyplot.close(fig)


def test_membership_maps_figure_from_a_trace():
    model = cratelib.create_model("tost_nano_patch8", img_size=32, num_classes=3, depth=1).eval()
    tr = cratelib.trace(model, torch.randn(1, 3, 32, 32))
    maps = tr.membership_maps(0)[0].numpy()
    fig = plot_membership_maps(maps, image=np.random.rand(32, 32, 3), heads=[0, 2], title="layer 1")
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles == ["image", "head 1", "head 3"] and fig._suptitle.get_text() == "layer 1"
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), maps[2])
    matplotlib.pyplot.close(fig)
