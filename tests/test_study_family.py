"""Part 3's models in the emergence study: CRATE-α, ToST and CRATE-MAE train with the study's recipe
(`train-study`), ship to the study zoo and are measured by its protocol and rule against CRATE
(tiny models, tiny data)."""
from __future__ import annotations

import json

import pytest
import torch

from cratelib.checkpoint import load_checkpoint
from cratelib.cli import main
from cratelib.data import SyntheticConfig, generate
from cratelib.eval.extract import layer_maps
from cratelib.eval.study.verdicts import accuracy_bar_note
from cratelib.models.catalogue import PART2_MODELS, STUDY_PAIRS, names, pairs_of
from cratelib.train import train
from cratelib.train.study import export_study, run_progress, study_checkpoints, study_config

TINY = {"model_args.dim": 32, "model_args.num_heads": 2, "model_args.depth": 2, "img_size": 32, "epochs": 1,
        "warmup_epochs": 0, "batch_size": 16, "data_args.num_images": 32, "snapshot_epochs": [0]}
FAMILY = ("crate-alpha", "tost", "crate-mae")


def test_the_catalogue_groups_part2_and_part3():
    assert names("family") == FAMILY
    assert set(PART2_MODELS).isdisjoint(FAMILY) and set(names()) == set(PART2_MODELS) | set(FAMILY)
    assert {("crate-alpha", "crate"), ("tost", "crate"), ("crate-mae", "crate")} <= set(STUDY_PAIRS)
    assert pairs_of(PART2_MODELS) == tuple(p for p in STUDY_PAIRS if not set(p) & set(FAMILY))
    assert study_config("crate-alpha").model == "crate_alpha_nano_patch8"
    assert study_config("tost").model == "tost_nano_patch8"
    assert study_config("crate-mae").model == "crate_mae_nano_patch8"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    cache = str(root / "cache")
    for name in ("crate", *FAMILY):
        extra = {} if study_config(name).objective == "mae" else {"snapshot_at_val_acc": 0.01}
        train(study_config(name, 0, out_dir=str(root / "runs"), data_root=cache, **TINY, **extra), progress=False)
    export_study(None, [0], root / "zoo", root / "runs")
    return root


def test_part3_runs_ship_with_their_own_held_out_measure(zoo):
    records = {p.stem: json.loads(p.read_text()) for p in (zoo / "zoo").glob("*-s0.json")}
    assert set(records) == {"crate-s0", "crate-alpha-s0", "tost-s0", "crate-mae-s0"}
    assert set(records["crate-mae-s0"]["held_out"]) >= {"recon"} and "acc" not in records["crate-mae-s0"]["held_out"]
    assert 0 <= records["tost-s0"]["held_out"]["acc"] <= 1
    assert "CRATE-MAE" not in accuracy_bar_note(records, bar=1.01)  # an autoencoder is not held to the accuracy bar
    assert "val_recon" in run_progress(zoo / "runs" / "crate-mae-s0")
    # the masked autoencoder keeps no equal-accuracy snapshot: it has no accuracy
    stages = {(c["name"], c["stage"]) for c in study_checkpoints(zoo / "zoo")}
    assert ("crate-mae", "equal_acc") not in stages and ("tost", "equal_acc") in stages
    assert {c["name"] for c in study_checkpoints(zoo / "zoo", models=PART2_MODELS)} == {"crate"}


def test_tost_is_measured_on_its_membership_maps(zoo):
    tost = load_checkpoint(zoo / "zoo" / "tost-s0.pt").float().eval()
    images = list(generate(SyntheticConfig(3, split="test", seed=5, image_size=32, version=4)).images)
    maps = layer_maps(tost, images)  # (L, J, K, h, w)
    # Pi: every patch's membership over the heads sums to one (a CLS attention row sums to one over patches)
    torch.testing.assert_close(maps.sum(2), torch.ones_like(maps.sum(2)))


def test_cli_study_reads_part3_against_crate_by_the_rule(zoo, capsys):
    out = zoo / "out"
    assert main(["study", "--checkpoints", str(zoo / "zoo"), "--images", "8", "--no-maskcut", "--no-pca",
                 "--stage", "final", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in FAMILY:
        assert f"**final**, {name} minus crate on auc_half" in printed
    data = json.loads((out / "study.json").read_text())
    primary = {r["name"]: r["layer"] for r in data["rows"] if r["primary"] and r["stage"] == "final"}
    assert primary == {"crate": 1, "crate-alpha": 1, "tost": 1, "crate-mae": 1}  # penultimate of 2 layers, 1-based
    assert {(v["a"], v["b"]) for v in data["verdicts"]} == {(n, "crate") for n in FAMILY}
    assert main(["study", "--checkpoints", str(zoo / "zoo"), "--only", "tost", "--images", "8", "--no-maskcut",
                 "--no-pca", "--stage", "final", "--out", str(out)]) == 0
    assert {r["name"] for r in json.loads((out / "study.json").read_text())["rows"] if r["stage"] == "final"} == {"tost"}
    assert main(["study", "--only", "resnet", "--out", str(out)]) == 2


def test_the_linear_probe_reads_the_features_the_training_pipeline_gives(zoo):
    """probe_on_sets (eval's images -> model input) equals linear_probe on the training pipeline's data
    sources of the same images (the held-out seed's val and test splits), for a classifier and for
    CRATE-MAE's encoder."""
    from cratelib.data.synthetic import HELD_OUT_SEED
    from cratelib.eval.classify import linear_probe
    from cratelib.eval.study.protocol import probe_on_sets, probe_sets
    from cratelib.train.config import TrainConfig
    from cratelib.train.loop import data_source

    record = json.loads((zoo / "zoo" / "crate-mae-s0.json").read_text())
    config = TrainConfig.from_dict({**record["train_config"], "data_root": str(zoo / "cache")})
    sets = probe_sets(dict(config.data_args, image_size=config.img_size), num_images=40, cache_dir=zoo / "cache")
    held = TrainConfig.from_dict({**config.to_dict(), "data_args": {**config.data_args, "seed": HELD_OUT_SEED,
                                                                    "num_images": 40}})
    for name in ("crate", "crate-mae"):
        model = load_checkpoint(zoo / "zoo" / f"{name}-s0.pt").float()
        acc = probe_on_sets(model, sets)
        assert acc == pytest.approx(linear_probe(model, data_source(held, "val"), data_source(held, "test")), abs=1e-9)
        assert 0 <= acc <= 1


def test_progress_rows_show_each_objective_its_own_validation_measure():
    from cratelib.train.study import progress_rows

    (mae,) = progress_rows(["crate-mae"], [7])  # a seed no run uses: not started
    assert mae["run"] == "crate-mae-s7" and mae["epoch"] == "not started"
    assert "validation reconstruction error" in mae and "validation accuracy" not in mae
    assert mae["command"] == "`python -m cratelib train-study --only crate-mae --seed 7`"
    both = progress_rows(["crate", "crate-mae"], [7])
    assert all({"validation accuracy", "validation reconstruction error"} <= set(r) for r in both)
