"""Training: configs and their errors, the loop (loss falls, exact resume, NaN stop), the CLI."""
import json

import pytest
import torch

from cratelib.cli import main
from cratelib.train import TrainingDiverged, cosine_lr, load_config, preset_names, train

TINY = {
    "model": "crate_nano_patch8", "model_args": {"dim": 32, "num_heads": 2, "depth": 2},
    "data": "synthetic", "data_args": {"num_images": 96}, "img_size": 32, "num_classes": 3,
    "batch_size": 32, "epochs": 2, "warmup_epochs": 0.5, "lr": 3e-3, "log_every": 1,
}


def tiny(tmp_path, **kw):
    return load_config({**TINY, "out_dir": str(tmp_path), "data_root": str(tmp_path / "cache"), **kw})


def test_presets_load_and_carry_the_papers_recipe():
    assert {"paper", "cpu-demo", "finetune"} <= set(preset_names())
    paper = load_config("paper")
    assert (paper.optimizer, paper.lr, paper.weight_decay, paper.epochs, paper.img_size) == ("lion", 9.6e-5, 0.05, 90, 224)
    assert paper.batch_size * paper.accum_steps == 4096
    ft = load_config("finetune")
    assert (ft.optimizer, ft.lr, ft.weight_decay, ft.batch_size) == ("adamw", 5e-5, 0.01, 256)


def test_bad_configs_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"unknown training config keys \['learning_rate'\]"):
        load_config({"learning_rate": 1e-3})
    with pytest.raises(TypeError, match="TrainConfig.epochs must be int, got str"):
        load_config({"epochs": "ten"})
    with pytest.raises(ValueError, match="optimizer must be one of"):
        load_config(None, ["optimizer=sgd"])
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        load_config(None, {"batch_size": 0})
    with pytest.raises(FileNotFoundError, match="presets"):
        load_config("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)


def test_overrides_parse_values_and_dotted_keys():
    c = load_config("cpu-demo", ["lr=1e-4", "model_args.depth=3", "snapshot_epochs=[0, 2]"])
    assert c.lr == 1e-4 and c.model_args["depth"] == 3 and c.model_args["dim"] == 96
    assert c.snapshot_epochs == [0, 2]


def test_cosine_schedule():
    lrs = [cosine_lr(s, 100, 10, 1.0, 0.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[55] == pytest.approx(0.5, abs=0.02) and lrs[-1] < 0.01


def test_training_lowers_the_loss_and_writes_its_records(tmp_path):
    cfg = tiny(tmp_path, epochs=4, snapshot_epochs=[0, 2])
    result = train(cfg, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05
    run = cfg.run_dir
    assert {"config.yaml", "metrics.jsonl", "last.pt", "epoch_0.pt", "epoch_2.pt"} <= {p.name for p in run.iterdir()}
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines if "train_loss" in l] == [1, 2, 3, 4]
    assert any("lr" in l and "loss" in l for l in lines)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path):
    full = train(tiny(tmp_path / "a", epochs=3), progress=False).model.state_dict()
    cfg = tiny(tmp_path / "b", epochs=3)
    first = train(cfg, progress=False, on_epoch_end=lambda rec: rec["epoch"] == 1)  # "interrupted"
    assert len(first.history) == 1
    resumed = train(cfg, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for k, v in full.items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_a_moved_run_folder_resumes(tmp_path):
    full = train(tiny(tmp_path / "a", epochs=2), progress=False).model.state_dict()
    train(tiny(tmp_path / "b", epochs=2), progress=False, on_epoch_end=lambda rec: True)
    (tmp_path / "b" / "run").rename(tmp_path / "b" / "moved")
    resumed = train(tiny(tmp_path / "b", epochs=2, name="moved"), resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    for k, v in full.items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_a_run_written_before_a_config_key_existed_resumes_with_its_default(tmp_path):
    full = train(tiny(tmp_path / "a", epochs=2), progress=False).model.state_dict()
    cfg = tiny(tmp_path / "b", epochs=2)
    train(cfg, progress=False, on_epoch_end=lambda rec: True)
    last = cfg.run_dir / "last.pt"
    ckpt = torch.load(last, weights_only=False)
    del ckpt["train_config"]["objective"]  # as a checkpoint from before the MAE objective was added
    torch.save(ckpt, last)
    resumed = train(cfg, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    for k, v in full.items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_resume_refuses_another_config(tmp_path):
    train(tiny(tmp_path, epochs=1), progress=False)
    with pytest.raises(ValueError, match=r"differs in \['lr'\]"):
        train(tiny(tmp_path, epochs=1, lr=1e-2), resume=True, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny(tmp_path, epochs=1)
    train(cfg, progress=False)
    good = torch.load(cfg.run_dir / "last.pt", weights_only=False)["model"]
    cfg2 = tiny(tmp_path, epochs=2)
    import cratelib.train.loop as loop

    real = loop.F.cross_entropy
    monkeypatch.setattr(loop.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1"):
        train(cfg2, progress=False)
    monkeypatch.undo()
    # the failed run wrote nothing over the checkpoint of the good one
    after = torch.load(cfg.run_dir / "last.pt", weights_only=False)["model"]
    for k in good:
        torch.testing.assert_close(after[k], good[k])


def test_cli_train(tmp_path, capsys):
    args = ["train", "--config", "cpu-demo"] + [f"--set={kv}" for kv in (
        f"out_dir={tmp_path}", f"data_root={tmp_path / 'cache'}", "epochs=1", "data_args.num_images=64",
        "img_size=32", "model_args.depth=1", "model_args.dim=32", "batch_size=32")]
    assert main(args) == 0
    assert "1 epochs" in capsys.readouterr().out
    assert (tmp_path / "cpu-demo" / "last.pt").is_file()
