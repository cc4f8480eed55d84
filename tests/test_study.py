"""The emergence study's runs and `python -m cratelib study` on them (tiny models, tiny data)."""
from __future__ import annotations

import json

import pytest
import yaml

from cratelib.cli import main
from cratelib.train import train
from cratelib.models.catalogue import CATALOGUE, run_name, split_run_name
from cratelib.train.study import (STUDY_RUNS, _in_repository, export_study, latest_checkpoints,
                                  progress_label, run_progress, study_checkpoints,
                                  study_config, train_command)

TINY = {"model_args.dim": 32, "model_args.num_heads": 2, "model_args.depth": 2, "img_size": 32, "epochs": 1,
        "warmup_epochs": 0, "batch_size": 16, "data_args.num_images": 32, "snapshot_epochs": [0],
        "snapshot_at_val_acc": 0.01}


def test_every_study_model_shares_the_recipe_but_its_architecture():
    base = study_config("crate").to_dict()
    # what masked autoencoding changes (configs/study-mae.yaml): the objective, its learning rate, no labels
    objective = {"objective", "lr", "label_smoothing", "snapshot_at_val_acc"}
    for name in CATALOGUE:
        c = study_config(name, seed=2).to_dict()
        assert c["seed"] == 2 and c["name"] == f"{name}-s2"
        differ = {k for k in c if c[k] != base[k]} - {"seed", "name"}
        assert differ <= {"model", "model_args"} | (objective if c["objective"] == "mae" else set()), (name, differ)
        assert c["fresh_data"] and c["data_args"] == base["data_args"] and c["epochs"] == base["epochs"]
    assert study_config("crate-mae").objective == "mae" and study_config("crate-mae").model_args["mask_ratio"] == 0.75
    assert study_config("vit-gap").model_args["pool"] == "mean"
    with pytest.raises(ValueError, match="unknown study model"):
        study_config("resnet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    cache = str(root / "cache")
    for name in ("crate", "vit-cls"):
        train(study_config(name, 0, out_dir=str(root / "runs"), data_root=cache, **TINY), progress=False)
    # a run still training is not a finished model
    train(study_config("vit-gap", 0, out_dir=str(root / "runs"), data_root=cache, **{**TINY, "epochs": 2}),
          progress=False, on_epoch_end=lambda record: True)
    return root


def test_study_checkpoints_lists_finished_runs_in_the_models_order(runs):
    found = study_checkpoints(runs / "runs")
    assert [(c["name"], c["stage"]) for c in found] == [
        ("crate", "final"), ("crate", "equal_acc"), ("crate", "init"),
        ("vit-cls", "final"), ("vit-cls", "equal_acc"), ("vit-cls", "init")]
    assert {c["epoch"] for c in found if c["stage"] == "init"} == {0}
    assert found[0]["data_args"]["image_size"] == 32
    assert "vit-gap" in {c["name"] for c in study_checkpoints(runs / "runs", finished_only=False)}
    with pytest.raises(FileNotFoundError, match="no finished study runs"):
        study_checkpoints(runs / "nothing")


def test_run_names_split_back_into_model_and_seed():
    for name in CATALOGUE:
        assert split_run_name(run_name(name, 12)) == (name, 12)
    assert split_run_name("resnet-s0") is None and split_run_name("crate-sx") is None


def test_run_progress_reads_how_far_a_run_got(runs):
    partial = run_progress(runs / "runs" / "vit-gap-s0")  # stopped after epoch 1 of 2
    assert partial["epoch"] == 1 and 0 <= partial["val_acc"] <= 1 and partial["time_s"] > 0
    assert run_progress(runs / "runs" / "crate-s0")["epoch"] == 1
    assert run_progress(runs / "runs" / "no-such-run") is None and run_progress(None) is None


def test_latest_checkpoints_prefer_shipped_runs_then_runs_in_training(runs, tmp_path):
    zoo = tmp_path / "zoo"
    export_study(["crate"], [0], zoo, runs / "runs")
    latest = latest_checkpoints(runs / "runs", zoo)
    assert list(latest) == ["crate", "vit-cls", "vit-gap"]
    assert latest["crate"]["path"] == zoo / "crate-s0.pt"  # shipped
    assert latest["vit-cls"]["path"].parent == runs / "runs" / "vit-cls-s0"  # finished, not shipped here
    assert (latest["vit-gap"]["epoch"], latest["vit-gap"]["epochs"]) == (1, 2)  # still training
    assert [progress_label(c) for c in latest.values()] == ["final", "final", "epoch 1/2"]
    assert latest_checkpoints(runs / "runs", zoo, seed=1) == {}
    assert latest_checkpoints(tmp_path / "none", tmp_path / "none") == {}


def test_shipped_runs_read_like_run_folders(runs):
    records = export_study(["crate", "vit-cls", "vit-gap"], [0], runs / "zoo", runs / "runs")
    assert [r["name"] for r in records] == ["crate-s0", "vit-cls-s0"]  # vit-gap-s0 is not finished
    assert records[0]["train_config"]["data_args"]["version"] == 4 and 0 <= records[0]["held_out"]["acc"] <= 1
    assert records[0]["train_config"]["out_dir"] == str((runs / "runs").resolve())  # outside the repository
    # the record's command resumes this run: the fixture's runs are at 32 px, not the recipe's 64 px
    assert records[0]["command"] == "python -m cratelib train-study --img-size 32 --only crate --seed 0"
    assert train_command("vit-gap", 2) == "python -m cratelib train-study --only vit-gap --seed 2"
    assert _in_repository(STUDY_RUNS / "crate-s0") == "data/study/runs/crate-s0"  # a shipped record names no machine
    assert yaml.safe_load((runs / "runs" / "crate-s0" / "config.yaml").read_text()) == records[0]["train_config"]
    shipped = study_checkpoints(runs / "zoo")
    from_runs = study_checkpoints(runs / "runs")
    assert [(c["name"], c["seed"], c["stage"], c["epoch"]) for c in shipped] == [
        (c["name"], c["seed"], c["stage"], c["epoch"]) for c in from_runs]
    assert {c["path"].name for c in shipped} == {"crate-s0.pt", "crate-s0_val_acc_0.01.pt", "crate-s0_epoch0.pt",
                                                 "vit-cls-s0.pt", "vit-cls-s0_val_acc_0.01.pt", "vit-cls-s0_epoch0.pt"}


def test_cli_study_writes_one_table_and_the_figures(runs, capsys):
    out = runs / "out"
    assert main(["study", "--checkpoints", str(runs / "runs"), "--images", "8", "--no-maskcut", "--stage", "final",
                 "--stage", "init", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "**final**, crate minus vit-cls on auc_half" in printed and "not established" in printed  # one seed
    data = json.loads((out / "study.json").read_text())
    primary = [r for r in data["rows"] if r["primary"]]
    assert {(r["name"], r["stage"], r["layer"]) for r in primary if r["stage"] != "baseline"} == {
        ("crate", "final", 1), ("crate", "init", 1), ("vit-cls", "final", 2), ("vit-cls", "init", 2)}
    assert {r["name"] for r in primary if r["stage"] == "baseline"} == {
        "brightness", "saturation", "colour_distance", "edge_energy", "random"}
    assert len(data["rows"]) == 4 * 2 + 5  # every layer of every checkpoint, and the baselines
    assert (out / "study.csv").read_text().splitlines()[0].startswith("name,seed,stage,primary,layer,head")
    assert {p.name for p in out.glob("*.png")} == {"layers_final.png", "layers_init.png", "maps_final.png",
                                                  "maps_final_percentile.png"}
    assert main(["study", "--checkpoints", str(runs / "nothing"), "--out", str(out)]) == 2


def test_measure_study_dates_every_row_and_refuses_mixed_data(runs):
    from cratelib.eval.study.protocol import measure_study

    found = study_checkpoints(runs / "runs", stages=["final", "init"])
    result, sets = measure_study(found, num_images=8, pca=False)
    assert len(sets.select) == len(sets.measure) == 8
    epochs = {(r["name"], r["stage"]): r["epoch"] for r in result.rows if r["stage"] != "baseline"}
    assert epochs == {("crate", "final"): 1, ("crate", "init"): 0, ("vit-cls", "final"): 1, ("vit-cls", "init"): 0}
    assert {r["epoch"] for r in result.rows if r["stage"] == "baseline"} == {""}
    other = [dict(found[0], data_args={**found[0]["data_args"], "texture_correlation": 0.5}), *found[1:]]
    with pytest.raises(ValueError, match="different data"):
        measure_study(other, num_images=8, pca=False)
    with pytest.raises(ValueError, match="no checkpoints"):
        measure_study([], num_images=8)


def test_epoch_snapshots_are_stages(runs):
    found = study_checkpoints(runs / "runs", stages=["epoch0", "init"])
    assert [(c["name"], c["stage"], c["epoch"]) for c in found] == [
        ("crate", "epoch0", 0), ("crate", "init", 0), ("vit-cls", "epoch0", 0), ("vit-cls", "init", 0)]
    assert found[0]["path"] == found[1]["path"]  # the same file under two names
    with pytest.raises(FileNotFoundError):  # no run has a snapshot after epoch 7
        study_checkpoints(runs / "runs", stages=["epoch7"])
    with pytest.raises(ValueError, match="unknown stages"):
        study_checkpoints(runs / "runs", stages=["epochs"])


def _nan_free(rows: list[dict]) -> list[dict]:
    """``rows`` with nan (the baselines' missing PCA) as None, so that equal rows compare equal."""
    return [{k: None if isinstance(v, float) and v != v else v for k, v in r.items()} for r in rows]


def test_cached_measurements_equal_fresh_ones_and_follow_the_weights(runs, tmp_path):
    import numpy as np
    import torch

    from cratelib.eval.study.protocol import measure_study

    found = study_checkpoints(runs / "runs", stages=["final", "init"])
    fresh, _ = measure_study(found, num_images=8, pca=True)
    cache = tmp_path / "measurements"
    first, _ = measure_study(found, num_images=8, pca=True, cache_dir=cache)
    files = sorted(cache.glob("*.pt"))
    assert [f.name.rsplit("-", 1)[0] for f in files] == ["crate-s0-final", "crate-s0-init",
                                                         "vit-cls-s0-final", "vit-cls-s0-init"]
    stamps = [f.stat().st_mtime_ns for f in files]
    again, _ = measure_study(found, num_images=8, pca=True, cache_dir=cache)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not remeasured
    for result in (first, again):
        assert _nan_free(result.rows) == _nan_free(fresh.rows)
        assert [(v["stage"], v["a"], v["b"]) for v in result.verdicts] == [(v["stage"], v["a"], v["b"]) for v in fresh.verdicts]
        assert [p["difference"] for v in result.verdicts for p in v["per_seed"]] == pytest.approx(
            [p["difference"] for v in fresh.verdicts for p in v["per_seed"]], abs=1e-6)
        for key, s in fresh.scores.items():
            np.testing.assert_allclose(result.scores[key].chosen(), s.chosen(), atol=1e-6)
            np.testing.assert_allclose(result.scores[key]["pca_auc"], s["pca_auc"], atol=1e-6)
            torch.testing.assert_close(result.maps[key], fresh.maps[key])
    # other images or other options are other entries; so are other weights
    measure_study(found[:1], num_images=4, pca=True, cache_dir=cache)
    measure_study(found[:1], num_images=8, pca=False, cache_dir=cache)
    assert len(list(cache.glob("crate-s0-final-*.pt"))) == 3
    state = torch.load(found[0]["path"], map_location="cpu", weights_only=False)
    first_key = next(iter(state["model"]))
    state["model"][first_key] = state["model"][first_key] + 1.0
    changed = tmp_path / "changed.pt"
    torch.save(state, changed)
    measure_study([dict(found[0], path=changed)], num_images=8, pca=True, cache_dir=cache)
    assert len(list(cache.glob("crate-s0-final-*.pt"))) == 4


def test_every_shipped_checkpoint_has_its_measurement_and_one_remeasures_equal(tmp_path):
    """The book reads the protocol's measurements from data/study/measurements: none may be missing
    (the build would remeasure live) and one, remeasured here, must equal its shipped file."""
    import numpy as np
    import torch

    from cratelib.checkpoint import load_checkpoint
    from cratelib.eval.study.protocol import StudyModel, measure_checkpoint, measurement_path, probe_sets
    from cratelib.train.study import STUDY_MEASUREMENTS, STUDY_ZOO, epoch_stages

    found = study_checkpoints(STUDY_ZOO, ["final", "equal_acc", "init", *epoch_stages()])
    sets = probe_sets(found[0]["data_args"], 256)
    paths = []
    for c in found:
        m = StudyModel(c["name"], c["seed"], c["stage"], load_checkpoint(c["path"]).eval())
        paths.append((m, measurement_path(m, sets, pca=True, maskcut=True, num_maps=6, cache_dir=STUDY_MEASUREMENTS)))
    missing = [p.name.rsplit("-", 1)[0] for _, p in paths if not p.is_file()]
    assert not missing, f"refresh with `python -m cratelib study --stage ... --cache {STUDY_MEASUREMENTS}`: {missing}"
    m, path = next((m, p) for m, p in paths if m.stage == "final")
    shipped = torch.load(path, weights_only=True)
    fresh = measure_checkpoint(m, sets, pca=True, maskcut_folder=tmp_path / "coco", num_maps=6)
    assert _nan_free(shipped["rows"]) == _nan_free(fresh.rows)
    for measure in fresh.scores.values:
        np.testing.assert_allclose(shipped["values"][measure].numpy(), fresh.scores[measure], atol=1e-6)
    np.testing.assert_allclose(shipped["select"]["auc_half"].numpy(), fresh.scores.select["auc_half"], atol=1e-6)


def test_shipped_run_folders_keep_their_records_config():
    """A shipped run's folder keeps its record, config.yaml (the zoo record's config, naming the
    folder relative to the repository: no machine's path) and metrics.jsonl, but not its weights,
    which are in the zoo (data/study/README.md)."""
    from cratelib.train.study import study_folders

    shipped = 0
    for size in (64, 128):
        runs, zoo = study_folders(size)
        for record_path in sorted(zoo.glob("*-s*.json")):
            record = json.loads(record_path.read_text())
            config = yaml.safe_load((runs / record["name"] / "config.yaml").read_text())
            assert config == record["train_config"], record["name"]
            assert config["out_dir"] == _in_repository(runs) and not config["out_dir"].startswith("/"), record["name"]
            assert not list((runs / record["name"]).glob("*.pt")), f"{record['name']}: its weights are in {zoo}"
            shipped += 1
    assert shipped >= 3 * len(CATALOGUE)  # 64 px: every model of the catalogue, three seeds each


def test_a_finer_grid_is_the_same_recipe_in_its_own_folders():
    from cratelib.train.study import STUDY_MEASUREMENTS, STUDY_ZOO, study_folders, study_measurements

    fine = study_config("vit-gap", 1, img_size=128).to_dict()
    base = study_config("vit-gap", 1).to_dict()
    assert fine["img_size"] == 128 and base["img_size"] == 64
    assert {k for k in fine if fine[k] != base[k]} == {"img_size", "out_dir"}
    runs, zoo = study_folders(128)
    assert fine["out_dir"] == str(runs) and runs.name == "runs-128px" and zoo.name == "study-128px"
    assert study_folders(64) == (STUDY_RUNS, STUDY_ZOO)
    assert study_measurements(64) == STUDY_MEASUREMENTS
    assert study_measurements(128).name == "measurements-128px" and study_measurements(128).parent == runs.parent
    with pytest.raises(ValueError, match="multiple of the patch size"):
        study_config("crate", 0, img_size=100)
    assert main(["train-study", "--only", "crate", "--img-size", "100"]) == 2


def test_cli_study_finds_the_study_of_its_img_size(capsys):
    assert main(["study", "--img-size", "96"]) == 2  # no run at 96 px: the error names its folder
    err = capsys.readouterr().err
    assert "no finished study runs in" in err and "runs-96px" in err


def test_progress_rows_list_every_run_as_far_as_it_got():
    from cratelib.train.study import progress_rows, study_folders

    rows = progress_rows(["crate"], [0, 97], img_size=128)
    assert [r["run"] for r in rows] == ["crate-s0", "crate-s97"]
    done = run_progress(study_folders(128)[0] / "crate-s0")
    assert rows[0]["epoch"] == f"{done['epoch']}/50" and rows[0]["validation accuracy"] == done["val_acc"]
    assert rows[0]["minutes per epoch"] == pytest.approx(done["time_s"] / done["epoch"] / 60)
    assert rows[1]["epoch"] == "not started" and rows[1]["validation accuracy"] != rows[1]["validation accuracy"]
    assert rows[1]["command"] == "`python -m cratelib train-study --img-size 128 --only crate --seed 97`"
