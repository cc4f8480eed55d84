"""Masked-autoencoding training: the preset, held-out reconstruction error, exact resume, no labels."""
import json

import numpy as np
import pytest
import torch

import cratelib.train.loop as loop
from cratelib import CRATEMAE, load_checkpoint
from cratelib.cli import main
from cratelib.eval.classify import cls_features, probe_accuracy
from cratelib.train import data_source, load_config, train
from cratelib.train.objectives import reconstruction_error

TINY = [f"--set={kv}" for kv in (
    "model_args.dim=32", "model_args.num_heads=2", "model_args.depth=2", "data_args.num_images=96",
    "img_size=32", "batch_size=32", "epochs=2", "warmup_epochs=0.5", "log_every=1", "snapshot_epochs=[]")]


def tiny(tmp_path, **kw):
    overrides = [a.removeprefix("--set=") for a in TINY] + [f"out_dir={tmp_path}", f"data_root={tmp_path.parent / 'cache'}"]
    return load_config("study-mae", overrides + [f"{k}={v}" for k, v in kw.items()])


def weights(result):
    return {k: v.clone() for k, v in result.model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_preset_is_the_study_recipe_with_the_mae_objective():
    mae, study = load_config("study-mae"), load_config("study")
    assert (mae.objective, mae.model, study.objective) == ("mae", "crate_mae_nano_patch8", "classify")
    for key in ("data", "data_args", "fresh_data", "img_size", "num_classes", "optimizer", "weight_decay",
                "batch_size", "epochs", "warmup_epochs", "min_lr", "seed", "snapshot_epochs"):
        assert getattr(mae, key) == getattr(study, key), key
    assert {k: mae.model_args[k] for k in ("dim", "num_heads", "depth")} == study.model_args


def test_objective_and_model_must_agree():
    with pytest.raises(ValueError, match="crate_mae_\\* models train with objective 'mae'"):
        load_config("study-mae", ["objective=classify"])
    with pytest.raises(ValueError, match="does not fit model='crate_nano_patch8'"):
        load_config("study", ["objective=mae"])
    with pytest.raises(ValueError, match="objective 'mae' has none"):
        load_config("study-mae", ["snapshot_at_val_acc=0.5"])


def test_cli_trains_and_records_held_out_reconstruction_error(tmp_path, capsys):
    args = ["train", "--config", "study-mae", *TINY, f"--set=out_dir={tmp_path}", f"--set=data_root={tmp_path / 'c'}",
            "--export", str(tmp_path / "ship")]
    assert main(args) == 0
    assert "2 epochs" in capsys.readouterr().out
    run = tmp_path / "crate-mae-s0"
    record = json.loads((tmp_path / "ship" / "crate-mae-s0.json").read_text())
    assert record["command"].startswith("python -m cratelib train --config study-mae --set=model_args.dim=32")
    assert set(record["held_out"]) == {"seed", "images", "recon"} and np.isfinite(record["held_out"]["recon"])
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    shipped = load_checkpoint(tmp_path / "ship" / "crate-mae-s0.pt")
    assert isinstance(shipped, CRATEMAE) and shipped.config.dim == 32
    epochs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"val_recon"' in l]
    assert [e["epoch"] for e in epochs] == [1, 2] and "val_acc" not in epochs[0] and "train_acc" not in epochs[0]
    # the recorded error is the model's masked-patch loss on the validation images, masks from seed 0
    model = load_checkpoint(run / "last.pt")
    assert isinstance(model, CRATEMAE)
    config = load_config(run / "config.yaml")
    source = data_source(config, "val")
    again = reconstruction_error(model, source)["recon"]
    assert again == pytest.approx(epochs[-1]["val_recon"], rel=1e-6)
    g = torch.Generator().manual_seed(0)
    total = n = 0
    for x, _ in source.batches(256, torch.device("cpu"), None, augment=False):
        mask = model.random_mask(x, g)
        with torch.no_grad():
            pred = model(x, mask).pred
        total += ((pred - loop.F.unfold(x, 8, stride=8).transpose(1, 2)[..., _official_order(8)]) ** 2).mean(-1)[mask].sum()
        n += mask.sum()
    per_masked_patch = (total / n).item()  # equal to the image mean: every image hides as many patches
    assert per_masked_patch == pytest.approx(again, rel=1e-5)


def _official_order(p):
    """Index map from F.unfold's (c p1 p2) pixel order to the (p1 p2 c) order of the patches."""
    return torch.arange(3 * p * p).reshape(3, p, p).permute(1, 2, 0).reshape(-1)


def test_training_lowers_the_held_out_error(tmp_path):
    result = train(tiny(tmp_path, epochs=4, lr=3e-3), progress=False)
    recon = [h["val_recon"] for h in result.history]
    assert len(recon) == 4 and recon[-1] < recon[0] and all(np.isfinite(recon))


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path):
    full = weights(train(tiny(tmp_path / "a"), progress=False))
    cfg = tiny(tmp_path / "b")
    first = train(cfg, progress=False, on_epoch_end=lambda rec: rec["epoch"] == 1)  # "interrupted"
    assert len(first.history) == 1
    resumed = train(cfg, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert_same(weights(resumed), full)


class Untouchable:
    """Labels that fail the moment anything reads them."""

    def _touched(self, *args, **kwargs):
        raise AssertionError("the objective read a label")

    __len__ = __iter__ = __getitem__ = __eq__ = __ne__ = __bool__ = __index__ = __int__ = __float__ = _touched
    __hash__ = None

    @classmethod
    def __torch_function__(cls, *args, **kwargs):
        raise AssertionError("the objective passed a label to torch")

    def __getattr__(self, name):
        raise AssertionError(f"the objective read labels.{name}")


def test_labels_are_never_read(tmp_path, monkeypatch):
    plain = weights(train(tiny(tmp_path / "a"), progress=False))
    batches = loop._TensorSource.batches

    def unlabelled(self, *args, **kwargs):
        for x, _ in batches(self, *args, **kwargs):
            yield x, Untouchable()

    monkeypatch.setattr(loop._TensorSource, "batches", unlabelled)  # training (fresh) and held-out images
    blind = train(tiny(tmp_path / "b"), progress=False)
    assert_same(weights(blind), plain)
    # the guard works: classification on the same batches fails at once
    with pytest.raises(AssertionError, match="label"):
        train(load_config("study", [a.removeprefix("--set=") for a in TINY]
                          + [f"out_dir={tmp_path / 'c'}", f"data_root={tmp_path / 'cache'}"]), progress=False)


def test_a_linear_probe_reads_the_frozen_encoder(tmp_path):
    """cratelib.eval.classify works on a CRATE-MAE as it is: its features are the encoder's [CLS]."""
    result = train(tiny(tmp_path), progress=False)
    config = tiny(tmp_path)
    model = result.model.eval()
    feats, labels = cls_features(model, data_source(config, "val"))
    assert feats.shape == (96, 32) and labels.shape == (96,)
    x = next(data_source(config, "val").batches(8, torch.device("cpu"), None, augment=False))[0]
    with torch.no_grad():
        np.testing.assert_allclose(feats[:8], model.encoder.forward_features(x)[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    acc = probe_accuracy(feats[:64], labels[:64], feats[64:], labels[64:])
    assert 0.0 <= acc <= 1.0
