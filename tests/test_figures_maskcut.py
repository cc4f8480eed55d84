"""Figures and the Table 1 rows of the MaskCut chapter (cratelib.figures.maskcut)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from cratelib.eval.maskcut import explain_cuts, maskcut, upsample_mask  # noqa: E402
from cratelib.eval.metrics import best_match_ious  # noqa: E402
from cratelib.eval.ncut import cut_graph  # noqa: E402
from cratelib.eval.maskcut_eval import METRIC_COLUMNS  # noqa: E402
from cratelib.eval.reference import TABLE1_COCO_MASKCUT  # noqa: E402
from cratelib.figures import maskcut as mc  # noqa: E402
from planted import SQUARE_GRID, square_images, square_mask  # noqa: E402

GRID = SQUARE_GRID


def test_table1_rows_put_the_paper_beside_ours():
    ours = {"mine": {c: float(i) for i, c in enumerate(METRIC_COLUMNS)}}
    rows = mc.table1_rows(ours)
    assert len(rows) == len(TABLE1_COCO_MASKCUT) + 1
    crate = next(r for r in rows if r["model"] == "CRATE-S/8")
    assert (crate["det AP50"], crate["det AP75"], crate["det AP"]) == TABLE1_COCO_MASKCUT["CRATE-S/8"]["det"]
    assert (crate["seg AP50"], crate["seg AP75"], crate["seg AP"]) == TABLE1_COCO_MASKCUT["CRATE-S/8"]["seg"]
    assert rows[-1]["model"] == "mine" and rows[-1]["seg AP"] == 5.0
    assert len(mc.table1_rows(ours, paper_models=["ViT-S/8"])) == 2
    with pytest.raises(KeyError, match="missing"):
        mc.table1_rows({"bad": {"det AP50": 1.0}})


def test_figures_have_one_panel_per_step():
    feats, samples, _ = square_images(num=2)
    result = maskcut(feats[0], GRID, 3, solver="dense")
    image = samples[0].image
    truth = [upsample_mask(square_mask().numpy(), image.shape[:2])]
    fig = mc.plot_cuts(image, result, explain_cuts(result), truths=truth)
    assert len(fig.axes) == 12
    plt.close(fig)
    graph = cut_graph(feats[0])
    assert graph.cos.shape == graph.affinity.shape == (64, 64) and graph.positive.shape == (64,)
    fig = mc.plot_graph(image, graph, GRID, truths=truth)
    assert len([a for a in fig.axes if a.get_title()]) == 4
    plt.close(fig)
    coarse = [upsample_mask(m, image.shape[:2]) for m in result.masks if m.any()]
    fig = mc.plot_crf(image, coarse, [coarse[0]] + [None] * (len(coarse) - 1), best_match_ious(coarse, truth),
                      best_match_ious(coarse[:1], truth), truth)
    assert "1.00" in fig.axes[0].get_title()
    plt.close(fig)
    fig = mc.plot_detections([s.image for s in samples], {"a": [coarse, coarse], "b": [[], coarse]}, [truth, truth])
    assert len(fig.axes) == 4
    plt.close(fig)
    fig = mc.plot_maskcut_detail(image, result, explain_cuts(result)[0], best_match_ious(coarse, truth), truth)
    assert "IoU 1.00" in fig.axes[1].get_title()
    plt.close(fig)
