"""Exporting a run into the checkpoint zoo and loading it back."""
import json

import pytest
import torch

from cratelib.models import CRATEConfig
from cratelib.models.registry import model_config
from cratelib.train import load_config, train
from cratelib.train.zoo import HELD_OUT_SEED, ZOO_DIR, export_run, load_zoo_model, zoo_names, zoo_record


def test_export_and_load_round_trip(tmp_path, monkeypatch):
    import cratelib.train.zoo as zoo

    monkeypatch.setattr(zoo, "HELD_OUT_IMAGES", 40)
    cfg = load_config({
        "name": "tiny", "out_dir": str(tmp_path / "runs"), "data_root": str(tmp_path / "cache"),
        "model": "crate_nano_patch8", "model_args": {"dim": 32, "num_heads": 2, "depth": 1},
        "data_args": {"num_images": 64}, "img_size": 32, "num_classes": 3, "batch_size": 32,
        "epochs": 2, "warmup_epochs": 0.5, "snapshot_epochs": [0, 1],
    })
    result = train(cfg, progress=False)
    zoo_dir = tmp_path / "zoo"
    record = export_run(cfg, zoo_dir, command="python -m cratelib train --config X")
    assert {p.name for p in zoo_dir.iterdir()} == {"tiny.pt", "tiny.json", "tiny_epoch0.pt", "tiny_epoch1.pt"}
    assert record["command"] == "python -m cratelib train --config X" and record["epochs"] == 2
    assert record["held_out"]["seed"] == HELD_OUT_SEED and 0 <= record["held_out"]["acc"] <= 1
    assert zoo_record("tiny", zoo_dir) == json.loads((zoo_dir / "tiny.json").read_text())
    # float16 on disk, float32 in memory, same function up to half precision
    assert torch.load(zoo_dir / "tiny.pt", weights_only=True)["model"]["head.weight"].dtype == torch.float16
    model = load_zoo_model("tiny", zoo_dir=zoo_dir)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), result.model.eval()(x), atol=2e-2, rtol=2e-2)
    init = load_zoo_model("tiny", epoch=0, zoo_dir=zoo_dir)
    assert not torch.allclose(init(x), model(x))
    with pytest.raises(FileNotFoundError, match="tiny_epoch7"):
        load_zoo_model("tiny", epoch=7, zoo_dir=zoo_dir)
    with pytest.raises(FileNotFoundError, match="train-zoo"):
        zoo_record("nothing", zoo_dir)


@pytest.mark.parametrize("name", zoo_names())
def test_shipped_checkpoints_are_the_architecture_their_presets_build(name):
    """The registry's size tables may change; the zoo presets must still build the shipped models."""
    cfg = load_config(f"zoo-{name}")
    built = model_config(cfg.model, img_size=cfg.img_size, num_classes=cfg.num_classes, **cfg.model_args)
    shipped = torch.load(ZOO_DIR / f"{name}.pt", map_location="meta", weights_only=True)
    assert CRATEConfig.from_dict(shipped["config"]) == built
    assert built.num_params() == zoo_record(name)["params"] == sum(t.numel() for t in shipped["model"].values())


def test_the_zoo_compares_crate_and_vit_at_equal_width_on_purpose():
    sizes = {n: {k: load_config(f"zoo-{n}").model_args[k] for k in ("dim", "num_heads", "depth")} for n in zoo_names()}
    assert "vit" in sizes and all(s == {"dim": 96, "num_heads": 4, "depth": 6} for s in sizes.values()), sizes
