"""The checkpoint zoo shipped in ``data/checkpoints`` for the CPU build of the book.

Every ``zoo-<name>.yaml`` preset is one model trained by :func:`cratelib.train.train` on the
embedded data: CRATE, the ViT baseline, the ablations (CRATE-MLP, CRATE-MHSA, CRATE-sth), with
epoch snapshots of the CRATE run (Fig. 10). All share the recipe and the size (96 wide, 4 heads,
6 layers, at 64 px): CRATE and the ViT are compared at equal width on purpose, so that only the
blocks differ, not at the official tables' sizes (where CRATE-S is 576 wide and ViT-S 384).
For each, ``data/checkpoints`` holds

* ``<name>.pt`` - a model-only checkpoint (float16 weights, config) for :func:`load_zoo_model`;
* ``<name>.json`` - its record: the training config, the exact command that made it, the
  training time, the per-epoch history and the accuracy (a masked autoencoder's reconstruction
  error) on held-out images generated with a seed never used in training;
* ``<name>_epoch<e>.pt`` - snapshots, where the preset asks for them.

``python -m cratelib train-zoo`` reproduces them all (a stopped run resumes where it stopped).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Sequence

import torch

from cratelib.checkpoint import load_checkpoint
from cratelib.data.synthetic import HELD_OUT_SEED  # the records' held-out test images
from cratelib.io import atomic_torch_save, atomic_write_json
from cratelib.models import CRATE, CRATEMAE
from cratelib.train.config import PRESET_DIR, TrainConfig, load_config
from cratelib.train.distributed import is_main_process
from cratelib.train.loop import data_source, evaluate, run_file, train
from cratelib.train.objectives import reconstruction_error

__all__ = ["ZOO_DIR", "HELD_OUT_SEED", "zoo_names", "zoo_architecture", "shipped", "train_zoo", "export_run", "load_zoo_model",
           "zoo_record", "zoo_file"]

ZOO_DIR = Path(__file__).resolve().parents[2] / "data" / "checkpoints"
HELD_OUT_IMAGES = 2000


def zoo_names() -> list[str]:
    """Names of the zoo presets (``zoo-crate.yaml`` -> ``crate``)."""
    return sorted(p.stem.removeprefix("zoo-") for p in PRESET_DIR.glob("zoo-*.yaml"))


def zoo_architecture(name: str) -> dict:
    """The model of the zoo preset ``zoo-<name>``: ``{"name": registered model, "img_size",
    "num_classes", **model_args}``, what ``cratelib.create_model(**...)`` builds."""
    config = load_config(f"zoo-{name}")
    return {"name": config.model, "img_size": config.img_size, "num_classes": config.num_classes,
            **config.model_args}


def shipped(names: Sequence[str] | None = None, zoo_dir: str | Path = ZOO_DIR) -> list[str]:
    """The zoo models among ``names`` (default: :func:`zoo_names`) whose checkpoint *and* record
    are in ``zoo_dir``, in the order given."""
    zoo_dir = Path(zoo_dir)
    return [n for n in (names or zoo_names()) if (zoo_dir / f"{n}.pt").is_file() and (zoo_dir / f"{n}.json").is_file()]


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _model_only(ckpt: dict) -> dict:
    """A checkpoint's float16 weights, config, epoch and architecture tag (a CRATE-MAE's ``arch``)."""
    return {"model": _half(ckpt["model"]), "config": ckpt["config"], "epoch": ckpt["epoch"],
            **{k: ckpt[k] for k in ("arch",) if k in ckpt}}


def held_out(model: CRATE | CRATEMAE, config: TrainConfig, device: str = "cpu") -> dict:
    """On freshly generated images (test split, seed :data:`HELD_OUT_SEED`): the top-1 accuracy
    ``{"acc"}``, or for masked autoencoding the reconstruction error ``{"recon"}``
    (:func:`~cratelib.train.objectives.reconstruction_error`)."""
    args = {**config.data_args, "seed": HELD_OUT_SEED, "num_images": HELD_OUT_IMAGES}
    probe = TrainConfig.from_dict({**config.to_dict(), "data_args": args})
    if config.objective == "mae":
        return {"recon": reconstruction_error(model, data_source(probe, "test"), device)["recon"]}
    return {"acc": evaluate(model, data_source(probe, "test"), device)["acc"]}


def zoo_file(name: str, epoch: int | None = None, val_acc: float | None = None) -> str:
    """A shipped checkpoint's file name: ``<name>.pt`` (the final model), ``<name>_epoch<e>.pt``
    (the snapshot after ``epoch``) or ``<name>_val_acc_<a>.pt`` (the first epoch at validation
    accuracy ``val_acc``); the run folder's names are :func:`cratelib.train.loop.run_file`."""
    if val_acc is not None:
        return f"{name}_val_acc_{val_acc:g}.pt"
    return f"{name}.pt" if epoch is None else f"{name}_epoch{epoch}.pt"


def export_run(config: TrainConfig, out_dir: str | Path = ZOO_DIR, command: str = "",
               run_dir: str | Path | None = None) -> dict:
    """Copy a finished run into the zoo: float16 weights, snapshots (``<name>_epoch<e>.pt``, and
    ``<name>_val_acc_<a>.pt`` where the run kept one), and the record JSON (with ``config``).
    ``run_dir`` is where the run's files are if not at ``config.run_dir`` (a moved run folder)."""
    out_dir = Path(out_dir)
    run = Path(run_dir) if run_dir is not None else config.run_dir
    ckpt = torch.load(run / run_file(), map_location="cpu", weights_only=False)
    name = config.name
    atomic_torch_save(out_dir / zoo_file(name), _model_only(ckpt))
    snapshots = {snap: zoo_file(name, epoch=int(snap.stem.removeprefix("epoch_"))) for snap in sorted(run.glob("epoch_*.pt"))}
    snapshots |= {snap: zoo_file(name, val_acc=float(snap.stem.removeprefix("val_acc_")))  # the equal-accuracy snapshot
                  for snap in run.glob("val_acc_*.pt")}
    for snap, file in snapshots.items():
        atomic_torch_save(out_dir / file, _model_only(torch.load(snap, map_location="cpu", weights_only=True)))
    model = load_checkpoint(out_dir / zoo_file(name))
    record = {
        "name": name,
        "command": command or f"python -m cratelib train-zoo --only {name}",
        "train_config": config.to_dict(),
        "model_config": ckpt["config"],
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": ckpt["epoch"],
        "train_time_s": round(ckpt["train_time_s"], 1),
        "history": ckpt["history"],
        "held_out": {"seed": HELD_OUT_SEED, "images": HELD_OUT_IMAGES, **held_out(model.float(), config)},
        "machine": {"torch": torch.__version__, "platform": platform.platform(), "device": config.device},
    }
    atomic_write_json(out_dir / f"{name}.json", record, indent=1, sort_keys=False)
    return record


def train_zoo(names: list[str] | None = None, out_dir: str | Path = ZOO_DIR, runs_dir: str = "runs/zoo",
              overrides: list[str] | None = None) -> list[dict]:
    """Train (resuming where a previous run stopped) and export every zoo model (under
    ``torchrun`` every process trains, rank 0 exports and returns the records)."""
    records = []
    for name in names or zoo_names():
        if name not in zoo_names():
            raise ValueError(f"unknown zoo model {name!r}; known: {zoo_names()}")
        config = load_config(f"zoo-{name}", [f"out_dir={runs_dir}", *(overrides or [])])
        train(config, resume=True)
        if not is_main_process():  # under torchrun, rank 0 exports
            continue
        records.append(export_run(config, out_dir))
        print(f"{name}: held-out accuracy {records[-1]['held_out']['acc']:.4f}, "
              f"{records[-1]['train_time_s']:.0f} s")
    return records


def zoo_record(name: str, zoo_dir: str | Path = ZOO_DIR) -> dict:
    """The record JSON of a shipped checkpoint."""
    path = Path(zoo_dir) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no zoo record {path}; shipped checkpoints live in the repository's "
                                "data/checkpoints (clone the repository) or run `python -m cratelib train-zoo`")
    return json.loads(path.read_text())


def load_zoo_model(name: str, epoch: int | None = None, zoo_dir: str | Path = ZOO_DIR, **overrides) -> CRATE:
    """A shipped model (float32, eval mode); ``epoch`` picks a snapshot; ``overrides`` as in
    :func:`cratelib.load_checkpoint` (e.g. ``img_size=128``)."""
    file = Path(zoo_dir) / zoo_file(name, epoch)
    if not file.is_file():
        have = sorted(p.stem for p in Path(zoo_dir).glob("*.pt")) if Path(zoo_dir).is_dir() else []
        raise FileNotFoundError(f"no shipped checkpoint {file}; available: {have or 'none'} "
                                "(run `python -m cratelib train-zoo` to make them)")
    return load_checkpoint(file, **overrides).float().eval()
