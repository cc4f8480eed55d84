"""The ``gpu-smoke`` scale: its sizes, and stand-ins that the real loaders read like the downloads."""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cratelib
import cratelib.notebook as nb
from cratelib import smoke


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """A fresh scratch folder, with the environment and hub constants restored afterwards."""
    monkeypatch.setattr(smoke, "_SCRATCH", tmp_path / "scratch")
    (tmp_path / "scratch").mkdir()
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "CRATELIB_CACHE"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
    import huggingface_hub.constants as constants

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE"):
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, getattr(constants, name))
    return tmp_path / "scratch"


def test_scales_take_the_gpu_paths_and_sizes_they_should():
    cpu, gpu, smoke_scale = nb.SCALES["cpu"], nb.SCALES["gpu"], nb.SCALES["gpu-smoke"]
    assert (cpu.gpu_paths, gpu.gpu_paths, smoke_scale.gpu_paths) == (False, True, True)
    assert (cpu.sized(480, 64), gpu.sized(480, 64), smoke_scale.sized(480, 64)) == (480, 480, 64)
    assert (cpu.stand_ins, gpu.stand_ins, smoke_scale.stand_ins) == (False, False, True)  # a GPU runtime downloads
    # outside the GPU branches gpu-smoke has the CPU sizes
    assert {k: v for k, v in smoke_scale.as_dict().items() if k != "name"} == \
           {k: v for k, v in cpu.as_dict().items() if k != "name"}


def test_setup_at_gpu_smoke_isolates_the_caches(isolated, monkeypatch):
    import huggingface_hub.constants as constants

    _, scale = nb.setup(scale="gpu-smoke", device="cpu", verbose=False)
    assert scale.name == "gpu-smoke"
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
    assert os.environ["CRATELIB_CACHE"].startswith(str(isolated))
    assert str(constants.HF_HUB_CACHE).startswith(str(isolated))
    assert nb.work_dir("runs/colab", scale) == isolated / "runs" / "colab"
    assert nb.work_dir("/content/eval", scale) == isolated / "content" / "eval"
    assert nb.work_dir("runs/colab", nb.SCALES["gpu"]).as_posix() == "runs/colab"


def test_stand_in_data_sets_are_read_by_the_loaders(isolated):
    from cratelib.data import CIFAR10, COCODetection, VOCSegmentation, generate, SyntheticConfig

    voc_root = nb.fetch("voc", "/nonexistent/voc", nb.SCALES["gpu-smoke"])
    coco_root = nb.fetch("coco", "/nonexistent/coco", nb.SCALES["gpu-smoke"])
    cifar_root = nb.fetch("cifar10", "/nonexistent/data", nb.SCALES["gpu-smoke"])
    assert all(str(r).startswith(str(isolated)) for r in (voc_root, coco_root, cifar_root))
    assert (voc_root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt").is_file()
    voc = VOCSegmentation(voc_root)
    scenes = generate(SyntheticConfig(num_images=4, image_size=64, split="val", seed=0))
    assert len(voc) == 4
    np.testing.assert_array_equal(voc.label(0), scenes.semantic[0])  # labels survive exactly
    coco = COCODetection(coco_root, split="val2017")
    assert len(coco) == 4 and len(coco.coco.getAnnIds()) == sum(len(o) for o in scenes.instances)
    train, test = CIFAR10(cifar_root, "train"), CIFAR10(cifar_root, "test")
    assert (len(train), len(test)) == (8, 4) and train.data.shape == (8, 32, 32, 3)
    cifar_scenes = generate(SyntheticConfig(num_images=8, image_size=32, split="train", seed=0))
    np.testing.assert_array_equal(train.data, cifar_scenes.images)
    np.testing.assert_array_equal(train.targets, cifar_scenes.labels)
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        assert set(pickle.load(f, encoding="bytes")) >= {b"data", b"labels"}  # the original's bytes keys
    with pytest.raises(ValueError, match="stand-ins exist for"):
        nb.fetch("pets", "/nonexistent", nb.SCALES["gpu-smoke"])


def test_timm_loads_the_stand_in_weights_through_its_hub_download(isolated):
    import timm
    from safetensors.torch import load_file

    path = nb.fetch("timm:vit_small_patch8_224.dino", scale=nb.SCALES["gpu-smoke"])
    assert str(path).startswith(str(isolated)) and path.name == "model.safetensors"
    saved = load_file(str(path))
    model = timm.create_model("vit_small_patch8_224.dino", pretrained=True, num_classes=0)
    state = model.state_dict()
    assert saved.keys() == state.keys()
    for k in ("blocks.0.attn.qkv.weight", "patch_embed.proj.weight", "pos_embed"):
        torch.testing.assert_close(state[k], saved[k])
    # another img_size goes through timm's resampling of the saved position embeddings
    small = timm.create_model("vit_small_patch8_224.dino", pretrained=True, num_classes=0, img_size=64)
    assert small.pos_embed.shape == (1, 1 + 8 * 8, 384)
    torch.testing.assert_close(small.blocks[0].attn.qkv.weight, saved["blocks.0.attn.qkv.weight"])
    with pytest.raises(ValueError, match="no Hugging Face weights"):
        smoke.timm_weights("crate_nano_patch8")  # registered in timm by cratelib, no hub weights


def test_official_stand_in_converts_back_to_the_same_model(isolated):
    path = nb.fetch("official-crate", "/content/crate_checkpoint.pth", nb.SCALES["gpu-smoke"])
    assert str(path).startswith(str(isolated))
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model"} and "transformer.layers.1.1.fn.weight" in raw["model"]
    model = cratelib.load_official_checkpoint(path).eval()
    c = model.config
    assert (c.dim, c.depth, c.num_heads, c.patch_size, c.img_size) == (384, 2, 6, 8, 224)
    torch.manual_seed(0)  # the stand-in's own initialisation, rebuilt independently
    reference = cratelib.create_model("crate_tiny_patch8", img_size=224, num_classes=1000, depth=2).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_fetch_outside_gpu_smoke_keeps_the_readers_paths(tmp_path):
    official = tmp_path / "crate_checkpoint.pth"
    assert nb.fetch("official-crate", official, nb.SCALES["gpu"]) == official  # downloaded by hand
    with pytest.raises(ValueError, match="root is the folder"):
        nb.fetch("voc", None, nb.SCALES["gpu"])


def test_device_name_on_the_cpu():
    assert nb.device_name("cpu") == "cpu"


def test_smoke_module_is_not_imported_by_the_cpu_scale(monkeypatch):
    monkeypatch.delitem(sys.modules, "cratelib.smoke", raising=False)
    nb.setup(scale="cpu", device="cpu", verbose=False)
    assert "cratelib.smoke" not in sys.modules


def test_stand_ins_are_recorded(isolated):
    import json

    nb.fetch("voc", None, nb.SCALES["gpu-smoke"])
    nb.fetch("official-crate", None, nb.SCALES["gpu-smoke"])
    lines = [json.loads(l) for l in (isolated / "stand-ins.jsonl").read_text().splitlines()]
    assert [(l["kind"], l["what"]) for l in lines][0] == ("data set", "voc")
    assert lines[1]["kind"] == "official CRATE weights" and lines[1]["path"].endswith(".pth")


def test_crate_alpha_stand_in_is_the_released_file_in_the_hub_cache(isolated):
    from huggingface_hub import hf_hub_download
    from test_checkpoint_alpha import alpha_forward, alpha_shapes

    path = nb.fetch("crate-alpha:B16", scale=nb.SCALES["gpu-smoke"])
    assert str(path).startswith(str(isolated)) and path.as_posix().endswith("torch/crate_alpha_B16.pth")
    assert path == Path(hf_hub_download("UCSC-VLAA/CRATE-alpha", "torch/crate_alpha_B16.pth"))  # offline, cached
    raw = torch.load(path, weights_only=True)
    # the released layout of B/16 (768 wide, 12 heads of 64, patch 16, 224 px), two layers deep
    expected = alpha_shapes(dim=768, depth=2, patch=16, grid=14, classes=1000, heads_dim=768)
    assert {k: tuple(v.shape) for k, v in raw.items()} == expected
    model = nb.pretrained("crate-alpha:B16", nb.SCALES["gpu-smoke"])
    c = model.config
    assert (c.dim, c.depth, c.num_heads, c.patch_size, c.img_size, c.mlp) == (768, 2, 12, 16, 224, "odl")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():  # the official forward, written out from the file's tensors
        torch.testing.assert_close(model(x), alpha_forward(raw, x, heads=12, depth=2), atol=1e-4, rtol=1e-4)
    lines = (isolated / "stand-ins.jsonl").read_text().splitlines()
    assert any('"CRATE-alpha weights"' in line for line in lines)
