"""cratelib.train.transfer (the chapter-13 fine-tuning config and its command line) and the
frozen-feature probes of cratelib.eval.classify."""
import numpy as np
import pytest
import torch

from cratelib import create_model, save_checkpoint
from cratelib.eval.classify import cls_features, linear_probe
from cratelib.train import data_source, train
from cratelib.train import transfer


def test_transfer_config_keeps_table3_recipe_and_sets_the_task(tmp_path):
    c = transfer.transfer_config("x.pt", num_images=32, epochs=2, out_dir=str(tmp_path))
    assert (c.optimizer, c.lr, c.weight_decay) == ("adamw", 5e-5, 0.01)  # Table 3's recipe
    assert c.init_from == "x.pt" and c.data == "synthetic" and c.epochs == 2
    assert c.data_args == {"num_images": 32, **transfer.DOWNSTREAM_TASK}
    assert c.amp == "none" and c.name == "finetune" and c.val_split is None
    scratch = transfer.transfer_config(None, 32, 2, str(tmp_path), task={"version": 3, "clutter": 0.5}, lr=1e-3)
    assert scratch.init_from is None and scratch.lr == 1e-3 and scratch.name == "scratch"
    assert scratch.data_args == {"num_images": 32, "version": 3, "clutter": 0.5}
    real = transfer.transfer_config("official:w.pth", 0, 1, str(tmp_path), data="cifar10", img_size=224)
    assert real.data_args == {} and real.img_size == 224


def test_transfer_config_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown training config keys"):
        transfer.transfer_config(None, 8, 1, str(tmp_path), not_a_key=1)


@pytest.fixture()
def tiny(tmp_path):
    torch.manual_seed(0)
    model = create_model("crate_nano_patch8", img_size=32, num_classes=4, dim=32, depth=1, num_heads=2)
    path = save_checkpoint(tmp_path / "m.pt", model)
    task = {"version": 3, "clutter": 0.0}
    return model, path, task


def test_cls_features_are_what_the_head_reads(tiny, tmp_path):
    model, _, task = tiny
    config = transfer.transfer_config(None, 12, 1, str(tmp_path), task=task, img_size=32, num_classes=4)
    source = data_source(config, "val")
    feats, labels = cls_features(model.train(), source, batch_size=5)
    assert feats.shape == (12, 32) and labels.shape == (12,)
    assert model.training  # the mode is restored
    with torch.no_grad():
        x, y = next(source.batches(12, torch.device("cpu"), None, augment=False))
        logits = model.eval()(x)
    np.testing.assert_allclose(feats @ model.head.weight.detach().numpy().T + model.head.bias.detach().numpy(),
                               logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, y.numpy())


def test_linear_probe_leaves_the_model_unchanged(tiny, tmp_path):
    model, _, task = tiny
    config = transfer.transfer_config(None, 40, 1, str(tmp_path), task=task, img_size=32, num_classes=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc = linear_probe(model, data_source(config, "train"), data_source(config, "val"))
    assert 0.0 <= acc <= 1.0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_finetune_starts_from_the_checkpoint(tiny, tmp_path):
    model, path, task = tiny
    config = transfer.transfer_config(str(path), 8, 1, str(tmp_path / "runs"), task=task, img_size=32,
                                      num_classes=4, lr=1e-12, weight_decay=0.0, min_lr=1e-12)
    result = train(config, progress=False)
    for k, v in model.state_dict().items():  # a vanishing learning rate: the weights stay put
        torch.testing.assert_close(result.model.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_cli_command_round_trips_through_the_parser(tmp_path):
    import shlex

    from cratelib.cli import build_parser
    from cratelib.train import load_config

    config = transfer.transfer_config("data/checkpoints/crate.pt", 256, 4, str(tmp_path), batch_size=32,
                                      model_args={"dim": 96})
    cmd = transfer.cli_command(config)
    assert cmd.startswith("python -m cratelib finetune --init-from data/checkpoints/crate.pt --data synthetic")
    args = build_parser().parse_args(shlex.split(cmd)[3:])
    overrides = [f"init_from={args.init_from}", f"data={args.data}", *args.set]
    assert load_config(args.config, overrides) == config
