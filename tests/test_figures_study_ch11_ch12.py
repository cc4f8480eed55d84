"""The study helpers of chapters 11 and 12: across-seed curves (cratelib.figures.curves), per-head
AUC (cratelib.figures.heads), the catalogue (cratelib.models.catalogue) and the study's tables and
notes (cratelib.eval.study.tables, .verdicts, cratelib.train.study)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cratelib.eval.reference import TABLE2_ABLATION  # noqa: E402
from cratelib.eval.stats import mean_std, seed_bands  # noqa: E402
from cratelib.eval.study.tables import seed_curves, summary_rows, table2_rows  # noqa: E402
from cratelib.eval.study.verdicts import accuracy_bar_note  # noqa: E402
from cratelib.figures import curves, heads  # noqa: E402
from cratelib.models.registry import FAMILIES, MAE_FAMILY  # noqa: E402
from cratelib.models.catalogue import CATALOGUE  # noqa: E402
from cratelib.train.study import study_config  # noqa: E402


def _rows() -> list[dict]:
    """Study rows of two CRATE seeds and one ViT seed, three layers, two stages, and baselines."""
    rows = []
    for name, seed, primary in (("crate", 0, 2), ("crate", 1, 2), ("vit-cls", 0, 3)):
        for stage, epoch in (("init", 0), ("final", 50)):
            for layer in (1, 2, 3):
                value = 0.5 + (0.1 * layer + 0.01 * seed if stage == "final" else 0.0)
                rows.append({"name": name, "seed": seed, "stage": stage, "epoch": epoch, "layer": layer,
                             "primary": layer == primary, "auc_half": value, "maskcut_ap50": 10.0 + seed
                             if layer == primary else float("nan")})
    rows.append({"name": "brightness", "seed": -1, "stage": "baseline", "epoch": "", "layer": 1, "primary": True,
                 "auc_half": 0.55, "maskcut_ap50": float("nan")})
    rows.append({"name": "random", "seed": -1, "stage": "baseline", "epoch": "", "layer": 1, "primary": True,
                 "auc_half": 0.5, "maskcut_ap50": float("nan")})
    return rows


def test_seed_curves_over_layers_and_epochs():
    rows = _rows()
    by_layer = seed_curves(rows, "auc_half", "layer", ["final"])
    assert set(by_layer) == {"crate", "vit-cls"} and set(by_layer["crate"]) == {0, 1}
    assert by_layer["crate"][1] == {1: 0.61, 2: 0.71, 3: 0.81}
    by_epoch = seed_curves(rows, "auc_half", "epoch", ["init", "final"], primary_only=True)
    assert by_epoch["crate"][0] == {0: 0.5, 50: 0.7} and by_epoch["vit-cls"][0] == {0: 0.5, 50: 0.8}
    # rows without a finite value are left out, baselines never appear
    ap = seed_curves(rows, "maskcut_ap50", "layer", ["final"])
    assert ap["crate"][1] == {2: 11.0} and "brightness" not in ap


def test_plot_seed_curves_draws_mean_band_and_references():
    fig = curves.plot_seed_curves(seed_bands(seed_curves(_rows(), "auc_half")), "layer", "AUC",
                                  references={"best pixel cue": 0.55, "random maps": 0.5})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["crate (2 seeds)", "vit-cls (1 seed)"] and "best pixel cue" in labels
    mean = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(mean, [0.605, 0.705, 0.805])
    assert len(ax.collections) == 1  # one band: only CRATE has two seeds
    plt.close(fig)
    fig = curves.plot_seed_curves(seed_bands({"vit-cls, init": {0: {1: 0.5, 2: 0.5}}}), "layer", "AUC",
                                  colors={"vit-cls, init": "red"}, styles={"vit-cls, init": "--"})
    line = fig.axes[0].get_lines()[0]
    assert line.get_linestyle() == "--" and line.get_color() == "red"
    plt.close(fig)


def test_plot_head_auc_marks_the_chosen_head():
    rng = np.random.default_rng(0)
    per_head = {"crate s0": rng.uniform(0.4, 0.9, (20, 4)), "vit-cls s0": rng.uniform(0.4, 0.9, (20, 4))}
    per_head["crate s0"][0, 1] = np.nan  # an image without a defined AUC is ignored
    fig = heads.plot_head_auc({k: mean_std(v) for k, v in per_head.items()}, {"crate s0": 1, "vit-cls s0": 3},
                              {"best pixel cue": 0.59})
    ax = fig.axes[0]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 2
    np.testing.assert_allclose(stars[0].get_ydata(), [np.nanmean(per_head["crate s0"][:, 1])])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"] * 2
    plt.close(fig)


def test_the_catalogue_names_each_study_model_by_its_registry_family():
    for name, v in CATALOGUE.items():
        assert study_config(name).model == f"{v.family}_nano_patch8" == v.model
        family = FAMILIES["crate"] if v.family == MAE_FAMILY else FAMILIES[v.family]  # CRATE-MAE's encoder: CRATE
        assert v.attn == family["attn"].upper()
        assert v.block.split(",")[0] == family["mlp"].split("_")[0].upper()
        assert v.paper_row is None or v.paper_row in TABLE2_ABLATION
    assert CATALOGUE["crate-sth"].paper_row is None
    assert study_config("vit-gap").model_args["pool"] == "mean" and study_config("vit-cls").model_args.get("pool", "cls") == "cls"


def test_study_summary_rows_give_mean_spread_and_seeds():
    rows = summary_rows(_rows(), {"auc_half": "AUC", "maskcut_ap50": "AP50"}, digits=2)
    assert [r["model"] for r in rows] == ["CRATE", "ViT-CLS", "pixel cue: brightness", "random maps"]
    assert rows[0]["AUC"] == f"{np.mean([0.7, 0.71]):.2f} ± {np.std([0.7, 0.71], ddof=1):.2f} (2 seeds)"
    assert rows[0]["layer"] == "2"
    assert rows[1]["AUC"] == "0.80 (1 seed)" and rows[1]["AP50"] == "10.00 (1 seed)"
    assert rows[2]["AUC"] == "0.55" and rows[2]["AP50"] == "-"
    assert summary_rows(_rows(), {"auc_half": "AUC"}, names=["vit-cls"])[0]["model"] == "ViT-CLS"
    mixed = summary_rows(_rows(), {"auc_half": "AUC", "maskcut_ap50": "AP50"}, digits={"maskcut_ap50": 1})
    assert mixed[1]["AP50"] == "10.0 (1 seed)" and mixed[1]["AUC"] == "0.800 (1 seed)"


def test_study_table2_rows():
    rows = table2_rows({"crate": {"auc": 0.86, "ap50": 18.0, "seeds": 2}})
    assert [r["model"] for r in rows] == ["CRATE", "CRATE-MLP", "CRATE-MHSA", "ViT-CLS", "ViT-GAP", "CRATE-sth"]
    assert rows[0]["paper VOC mIoU"] == 23.9 and rows[0]["ours: AUC"] == 0.86 and rows[0]["seeds"] == 2
    assert rows[3]["paper VOC mIoU"] == rows[4]["paper VOC mIoU"] == 14.1
    assert rows[1]["ours: AUC"] == "not trained yet" and np.isnan(rows[5]["paper det AP50"])


def test_accuracy_bar_note_names_the_runs_below_the_bar():
    def record(acc, curve):
        return {"held_out": {"acc": acc}, "history": [{"epoch": e + 1, "val_acc": v} for e, v in enumerate(curve)]}
    crate = [0.5, 0.7, 0.82, 0.85] + [0.86] * 10
    slow = [0.5, 0.6, 0.7, 0.75] + [0.79] * 5 + [0.8, 0.805, 0.81, 0.815, 0.82]
    note = accuracy_bar_note({"crate-s0": record(0.88, crate), "crate-s1": record(0.87, crate[1:] + [0.87]),
                                  "crate-sth-s0": record(0.818, slow)})
    assert "CRATE-sth seed 0 reaches 81.8 % held-out" in note and "first reached 80% at epoch 10" in note
    assert "(CRATE: epoch 2-3)" in note and "+7.0 points over its last ten epochs" in note
    assert "CRATE seed" not in note  # the runs above the bar are not listed
    assert accuracy_bar_note({"crate-s0": record(0.88, crate)}) == "Every shipped run reaches the study's 85% held-out accuracy."
