"""The emergence study (cratelib.eval.study): per-image AUC, head chosen on the selection set, baselines,
the decision rule, and the whole protocol on CRATE and on a timm ViT."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import cratelib
from cratelib.data import SyntheticConfig, generate
from cratelib.eval.localisation import object_fraction
from cratelib.eval.scoring import summary_row
from cratelib.eval.study import protocol as P
from cratelib.eval.study import verdicts as V
from cratelib.eval.study.verdicts import verdict_lines
from cratelib.models.catalogue import primary_layer

DATA = dict(version=4, image_size=32, fill="texture", texture_correlation=1.0)


@pytest.fixture(scope="module")
def sets() -> P.ProbeSets:
    return P.ProbeSets(generate(SyntheticConfig(12, split="val", seed=5, **DATA)),
                        generate(SyntheticConfig(12, split="test", seed=5, **DATA)))


def _planted(data, heads: int, good: int, seed: int) -> torch.Tensor:
    """``(1, J, K, 4, 4)`` maps: head ``good`` is the main object's patch fraction (plus a little
    noise), the other heads are noise."""
    frac = object_fraction(list(data.instance_map == 1), (4, 4))
    gen = torch.Generator().manual_seed(seed)
    maps = torch.rand(len(data), heads, 4, 4, generator=gen)
    maps[:, good] = frac + 0.01 * maps[:, good]
    return maps[None]


def test_the_head_is_chosen_on_the_selection_set_and_scored_on_the_measurement_set(sets):
    select = _planted(sets.select, 3, good=2, seed=0)
    measure = _planted(sets.measure, 3, good=0, seed=1)  # the good head differs on the measured images
    scores = P.score_on_sets(measure, select, sets, [0])
    assert scores.head("auc_half").tolist() == [2]  # chosen where it was good: never per image
    assert np.nanmean(scores["auc_half"][0, :, 0]) == pytest.approx(1.0)
    assert np.nanmean(scores.chosen("auc_half")) < 0.8  # head 2 is noise on the measured images
    assert scores.chosen("auc_half").shape == scores.head_mean("auc_any").shape == (1, 12)
    row = summary_row(scores, 0)
    assert row["head"] == 3 and row["layer"] == 1  # numbered from 1
    # An object-shaped map puts more of its attention on the object than a flat map would.
    assert scores["on_main"][0, :, 0].mean() > P.flat_shares(sets.measure)["on_main"]


def test_pixel_cues_and_random_maps_score_near_chance_on_the_study_data(sets):
    for name, scores in P.baseline_scores(sets, (4, 4), heads=4).items():
        assert 0.3 < summary_row(scores, 0)["auc_half"] < 0.7, name


@pytest.mark.parametrize("a, b, real", [
    ([0.80, 0.82, 0.81], [0.60, 0.61, 0.63], True),   # same sign, far beyond the spread
    ([0.80, 0.62, 0.81], [0.60, 0.61, 0.63], False),  # one seed goes the other way
    ([0.70, 0.60, 0.80], [0.60, 0.59, 0.62], False),  # same sign but within two spreads
    ([0.54, 0.55, 0.56], [0.40, 0.41, 0.40], False),  # B does not beat the best pixel cue (0.5)
])
def test_verdict_states_the_decision_rule(a, b, real):
    v = V.verdict(a, b, best_pixel=0.5)
    assert v["real"] is real and v["seeds"] == 3
    assert v["difference"] == pytest.approx(np.mean(np.subtract(a, b)))


def test_one_seed_never_decides():
    v = V.verdict([0.9], [0.5], best_pixel=0.5)
    assert not v["real"] and np.isnan(v["spread"])
    with pytest.raises(ValueError, match="one value per seed"):
        V.verdict([0.9, 0.8], [0.5], best_pixel=0.5)


@pytest.mark.parametrize("make", [
    lambda: cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=10, dim=32, num_heads=2, depth=2),
    lambda: timm.create_model("vit_small_patch8_224", pretrained=False, img_size=32, depth=2, num_classes=10),
], ids=["crate", "timm-vit"])
def test_the_whole_protocol_runs_on_crate_and_on_a_timm_vit(make, sets, tmp_path):
    model = make().eval()
    scores = P.score_model(model, sets)
    L = len(scores.layers)
    assert L == 2 and scores["pca_auc"].shape == (L, 12)
    heads = scores["auc_half"].shape[-1]
    assert scores["auc_any"].shape == (L, 12, heads) and scores.select["auc_half"].shape == (L, 12, heads)
    row = summary_row(scores, -1)
    assert row["layer"] == L and 1 <= row["head"] <= heads
    assert 0 <= row["auc_half"] <= 1 and 0 <= row["on_main"] <= 1
    assert 0 <= P.maskcut_ap50(model, sets.measure, tmp_path / "coco", -1) <= 100


def test_primary_layers_are_named_before_the_runs():
    assert primary_layer("crate") == primary_layer("crate-mlp") == -2
    assert primary_layer("vit-cls") == primary_layer("vit-gap") == -1


def test_without_a_pixel_baseline_nothing_is_called_real():
    v = V.verdict([0.80, 0.82, 0.81], [0.60, 0.61, 0.63], best_pixel=float("nan"))
    assert v["same_sign"] and v["beyond_spread"] and v["beat_pixels"] is None and not v["real"]


def _study_rows(sets, good: dict[tuple[str, int], int]):
    """Rows and scores of a planted two-model, two-seed study: model ``name`` seed ``s`` has its
    object-shaped head in ``good[(name, s)]`` heads of 3 (others noise) on both probe sets."""
    rows, scores = [], {}
    for (name, seed), n_good in good.items():
        maps = _planted(sets.measure, 3, good=0, seed=seed)
        select = _planted(sets.select, 3, good=0, seed=seed + 10)
        if n_good == 0:  # no object-shaped head at all
            maps, select = torch.rand_like(maps), torch.rand_like(select)
        s = scores[(name, seed, "final")] = P.score_on_sets(maps, select, sets, [0])
        rows.append({"name": name, "seed": seed, "stage": "final", "primary": True, **summary_row(s, 0)})
    for name, s in P.baseline_scores(sets, (4, 4), heads=3).items():
        rows.append({"name": name, "seed": -1, "stage": "baseline", "primary": True, **summary_row(s, 0)})
    return rows, scores



def test_peak_to_final_pairs_the_best_snapshot_with_the_end(sets):
    """Seed 0 has an object-shaped head at epoch 10 and only noise at the end: it falls. Seed 1
    keeps the same maps from epoch 10 on: no drop. Epoch 2 (noise) is never the peak."""
    good = _planted(sets.measure, 3, good=0, seed=0), _planted(sets.select, 3, good=0, seed=10)
    noise = tuple(torch.rand_like(m, generator=torch.Generator().manual_seed(5)) for m in good)
    plan = {(0, "epoch2", 2): noise, (0, "epoch10", 10): good, (0, "final", 50): noise,
            (1, "epoch2", 2): noise, (1, "epoch10", 10): good, (1, "final", 50): good}
    rows, scores = [], {}
    for (seed, stage, epoch), (maps, select) in plan.items():
        s = scores[("vit-gap", seed, stage)] = P.score_on_sets(maps, select, sets, [0])
        rows.append({"name": "vit-gap", "seed": seed, "stage": stage, "epoch": epoch, "primary": True,
                     **summary_row(s, 0)})
    rows.append({"name": "vit-gap", "seed": 0, "stage": "equal_acc", "epoch": 30, "primary": True,
                 "auc_half": 2.0})  # the equal-accuracy stage is no snapshot of the curve: never the peak
    fell, kept = V.peak_to_final(rows, scores, "vit-gap")
    assert (fell["seed"], fell["peak_epoch"], kept["peak_epoch"]) == (0, 10, 10)
    assert fell["drop"] == pytest.approx(fell["peak"] - fell["final"]) and fell["drop"] > 0.3 and fell["falls"]
    assert kept["drop"] == pytest.approx(0.0) and not kept["falls"]
    assert V.peak_to_final(rows, scores, "crate") == []  # no rows of that model
    with pytest.raises(ValueError, match="per-image"):
        V.peak_to_final(rows, scores, "vit-gap", measure="maskcut_ap50")

def test_verdicts_and_seed_summaries_on_any_measure(sets):
    rows, scores = _study_rows(sets, {("crate", 0): 1, ("crate", 1): 1, ("vit-cls", 0): 0, ("vit-cls", 1): 0})
    for measure in ("auc_half", "mass_iou", "pca_auc", "on_main"):
        (v,) = V.study_verdicts(rows, scores, measure=measure, pairs=[("crate", "vit-cls")])
        assert v["measure"] == measure and v["seeds"] == 2 and len(v["per_seed"]) == 2
    (v,) = V.study_verdicts(rows, scores, pairs=[("crate", "vit-cls")])
    assert v["difference"] > 0.3 and v["same_sign"] and v["beat_pixels"] is False  # random heads lose to pixels
    per_seed = v["per_seed"][0]
    assert per_seed["difference"] == pytest.approx(
        np.nanmean(scores[("crate", 0, "final")].chosen()[0] - scores[("vit-cls", 0, "final")].chosen()[0]))
    (v,) = V.study_verdicts(rows, scores, measure="pca_auc", pairs=[("crate", "vit-cls")])
    assert np.isnan(v["best_pixel"]) and v["beat_pixels"] is None and not v["real"]  # nan: not measured
    summary = V.seed_summary(rows, "auc_half")
    assert [r["name"] for r in summary][:2] == ["crate", "vit-cls"] and summary[0]["seeds"] == 2
    crate = [r["auc_half"] for r in rows if r["name"] == "crate"]
    assert summary[0]["mean"] == pytest.approx(np.mean(crate)) and summary[0]["spread"] == pytest.approx(np.std(crate, ddof=1))
    assert {r["name"] for r in summary if r["seeds"] == 0} == {"brightness", "saturation", "colour_distance",
                                                                "edge_energy", "random"}
    assert [r["name"] for r in V.seed_summary(rows, "pca_auc")] == []  # planted maps have no PCA
    assert list(V.summary_by_name(rows, "auc_half", trained_only=True)) == ["crate", "vit-cls"]
    assert V.summary_by_name(rows, "auc_half")["random"]["mean"] == summary[-1]["mean"]  # baselines kept


def test_verdict_lines_name_what_is_missing():
    base = {"stage": "final", "a": "crate", "b": "vit-cls", "measure": "auc_half", "best_pixel": 0.59,
            "difference": 0.04, "spread": float("nan"), "seeds": 1}
    one = verdict_lines([{**base, "same_sign": True, "beyond_spread": False, "beat_pixels": True, "real": False}])
    assert one.startswith("* **final**, crate minus vit-cls on auc_half: +0.040 over 1 seed")
    assert "missing: a difference beyond two spreads)" in one and "(no spread from one seed;" in one
    real = verdict_lines([{**base, "seeds": 3, "spread": 0.01, "same_sign": True, "beyond_spread": True,
                           "beat_pixels": True, "real": True}])
    assert real.endswith("**real**.") and "3 seeds (spread 0.010; best pixel cue 0.590)" in real
    none = verdict_lines([{**base, "best_pixel": float("nan"), "same_sign": True, "beyond_spread": True,
                           "beat_pixels": None, "real": False}])
    assert "no pixel cue" in none and "missing: a pixel baseline for this measure" in none
    assert verdict_lines([], empty="nothing") == "nothing"


def test_order_support_reads_each_step_of_an_ordering_from_the_rule():
    a, b, c = ([0.80, 0.82, 0.81], [0.70, 0.71, 0.69], [0.72, 0.70, 0.74])  # a ahead of b; b, c mixed
    # the second pair stated the other way round, as a catalogue may: its sign is flipped
    verdicts = [{"stage": "final", "a": "crate", "b": "crate-mlp", **V.verdict(a, b, 0.5)},
                {"stage": "final", "a": "crate-mhsa", "b": "crate-mlp", **V.verdict(c, b, 0.5)},
                {"stage": "init", "a": "crate-mlp", "b": "crate-mhsa", **V.verdict(b, c, 0.5)}]
    first, second, third = V.order_support(verdicts, ["crate", "crate-mlp", "crate-mhsa", "vit-cls"])
    assert (first["status"], first["seeds"]) == ("supported", 3)
    assert first["difference"] == pytest.approx(np.mean(a) - np.mean(b))
    assert second["difference"] == pytest.approx(np.mean(b) - np.mean(c)) and second["status"] == "not established"
    assert third["seeds"] == 0 and np.isnan(third["difference"])
    reversed_ = V.order_support(verdicts, ["crate-mlp", "crate"])[0]
    assert reversed_["status"] == "reversed" and reversed_["difference"] < 0
    text = V.order_lines([first, second, third])
    assert "* CRATE > CRATE-MLP: +0.110 over 3 seeds (spread 0.010): **supported**." in text
    assert "CRATE-MHSA > ViT-CLS: no seed shipped for both models." in text
    assert text.endswith("The rule supports 1 of the 3 steps of the order CRATE > CRATE-MLP > CRATE-MHSA > ViT-CLS.")
