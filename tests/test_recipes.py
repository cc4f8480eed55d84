"""The two recipes of ``cratelib.eval``'s docstring, followed as a newcomer would: a toy measure
added by name and a toy model family added to the catalogue both reach the study's table."""
from __future__ import annotations

import numpy as np
import pytest

import cratelib
from cratelib.data import SyntheticConfig, generate
from cratelib.eval.scoring import MEASURES, Measure
from cratelib.eval.study import protocol
from cratelib.eval.study.tables import summary_rows
from cratelib.eval.study.verdicts import study_verdicts
from cratelib.models import catalogue, registry
from cratelib.train.study import study_config, train_command

DATA = dict(version=4, image_size=32, fill="texture", texture_correlation=1.0)


def _peak(maps, targets):
    """The toy measure: each head's largest patch value, ``(L, J, K)``."""
    return maps.flatten(-2).max(-1).values.numpy()


@pytest.fixture
def toy(monkeypatch):
    """Recipe 1 (a measure) and recipe 2 (a family), undone after the test."""
    monkeypatch.setitem(MEASURES, "peak", Measure(_peak))
    monkeypatch.setattr(protocol, "COLUMNS", (*protocol.COLUMNS, "peak"))
    monkeypatch.setattr(protocol, "MAP_MEASURES", (*protocol.MAP_MEASURES, "peak"))
    registry.register_model("toy_nano_patch8", {**registry.FAMILIES["crate_mhsa"], **registry.CRATE_SIZES["nano"],
                                                "patch_size": 8})
    monkeypatch.setitem(catalogue.CATALOGUE, "toy", catalogue.StudyEntry(
        "toy", "toy", "Toy", "MHSA", "ISTA", None, "tab:gray", "family", primary_from_end=1, pairs=(("toy", "crate"),)))
    yield
    registry._REGISTRY.pop("toy_nano_patch8")
    registry._CONFIGS.pop("toy_nano_patch8")


def test_a_toy_measure_and_a_toy_family_reach_the_study_table(toy):
    assert study_config("toy", seed=3).model == "toy_nano_patch8"  # the recipe trains it
    assert train_command("toy", 3) == "python -m cratelib train-study --only toy --seed 3"
    sets = protocol.ProbeSets(generate(SyntheticConfig(6, split="val", seed=5, **DATA)),
                              generate(SyntheticConfig(6, split="test", seed=5, **DATA)))
    small = dict(img_size=32, num_classes=10, dim=32, num_heads=2, depth=2)
    models = [protocol.StudyModel("crate", 0, "final", cratelib.create_model("crate_nano_patch8", **small).eval()),
              protocol.StudyModel("toy", 0, "final", cratelib.create_model("toy_nano_patch8", **small).eval())]
    result = protocol.run_study(models, sets, pca=False)

    toy_rows = [r for r in result.rows if r["name"] == "toy"]
    assert [r["layer"] for r in toy_rows if r["primary"]] == [2]  # its own primary layer: the last
    peak = result.scores[("toy", 0, "final")]["peak"]  # (L, J, K)
    assert peak.shape == (2, 6, 2)
    head = int(result.scores[("toy", 0, "final")].head()[1])
    assert toy_rows[1]["peak"] == pytest.approx(float(np.mean(peak[1, :, head])))

    table = summary_rows(result.rows, {"auc_half": "AUC", "peak": "peak"})
    assert [r["model"] for r in table[:2]] == ["CRATE", "Toy"]
    assert table[1]["peak"] == f"{toy_rows[1]['peak']:.3f} (1 seed)"
    assert catalogue.pairs_of(["crate", "toy"]) == (("toy", "crate"),)  # the comparison its entry adds
    (v,) = study_verdicts(result.rows, result.scores, measure="peak", pairs=catalogue.pairs_of(["crate", "toy"]))
    assert v["seeds"] == 1 and not v["real"] and np.isfinite(v["per_seed"][0]["se"])


def test_the_pre_named_layer_of_any_model_follows_its_family():
    import timm

    assert catalogue.primary_layer("crate") == catalogue.primary_layer("crate-mlp") == -2
    assert catalogue.primary_layer("vit-cls") == catalogue.primary_layer("vit") == -1
    assert catalogue.primary_layer("crate", depth=6) == 4 and catalogue.primary_layer("vit-gap", depth=6) == 5
    with pytest.raises(ValueError, match="no primary layer"):
        catalogue.primary_layer("resnet")
    small = dict(img_size=32, dim=32, num_heads=2, depth=2)
    assert catalogue.model_primary_layer(cratelib.create_model("crate_mhsa_nano_patch8", **small)) == -2
    assert catalogue.model_primary_layer(cratelib.create_model("vit_nano_patch8", **small)) == -1
    assert catalogue.model_primary_layer(timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1)) == -1
