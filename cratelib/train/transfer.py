"""Fine-tuning runs for transfer learning (book chapter 13, the paper's Table 3).

Table 3 of the paper fine-tunes CRATE and ViT models pre-trained on ImageNet-21k on five
classification sets with AdamW (lr 5e-5, weight decay 0.01). Here the same recipe (the
``finetune`` preset) moves the shipped zoo models to a *downstream* version of the embedded data:

* :func:`transfer_config`: the one :class:`~cratelib.train.TrainConfig` behind every run of the
  chapter (fine-tuning from a checkpoint, or training from scratch), CPU and GPU alike;
* :func:`cli_command`: the ``python -m cratelib finetune`` line that runs the same config.

The frozen-feature probes beside them are :mod:`cratelib.eval.classify`.
"""
from __future__ import annotations

from typing import Mapping

from cratelib.train.config import TrainConfig, load_config

__all__ = ["DOWNSTREAM_TASK", "transfer_config", "cli_command"]

# The downstream task of chapter 13: the ten shapes under any rotation and with twice the clutter.
# Pre-training (the zoo presets) saw rotations of at most 15 degrees and clutter 1.
DOWNSTREAM_TASK: dict = {"version": 3, "max_rotation": 180.0, "clutter": 2.0}


def transfer_config(init_from: str | None, num_images: int, epochs: int, out_dir: str,
                    task: Mapping | None = None, **overrides) -> TrainConfig:
    """The ``finetune`` preset (Table 3's AdamW, lr 5e-5, weight decay 0.01) on the embedded data.

    Args:
        init_from: checkpoint to start from (a cratelib file, or ``"official:<path>"`` for
            released CRATE weights); None trains the preset's ``model`` from random weights.
        num_images: labelled images of the downstream training split; the ``val`` split of
            the same size (an independent draw) is the test set. No per-epoch validation runs
            (``val_split`` None) unless overridden, to keep the CPU runs short.
        epochs: passes over them.
        out_dir: where the run writes its files.
        task: :class:`cratelib.data.SyntheticConfig` fields of the downstream data (default
            :data:`DOWNSTREAM_TASK`).
        **overrides: any other :class:`TrainConfig` field (``lr``, ``batch_size``, ``model``,
            ``model_args``, ``data``, ``img_size``, ...). Passing ``data`` other than
            ``"synthetic"`` drops the synthetic ``data_args``.

    Returns:
        The validated config; ``cratelib.train.train(config)`` runs it.
    """
    data_args = {"num_images": num_images, **(DOWNSTREAM_TASK if task is None else task)}
    values = {"out_dir": out_dir, "init_from": init_from, "data": "synthetic", "data_args": data_args,
              "train_split": "train", "val_split": None, "img_size": 64, "num_classes": 10,
              "epochs": epochs, "warmup_epochs": 0, "amp": "none", "num_workers": 0,
              "name": "finetune" if init_from else "scratch"}
    values.update(overrides)
    if values["data"] != "synthetic":
        values["data_args"] = {}
    return load_config("finetune", values)


def cli_command(config: TrainConfig, preset: str = "finetune") -> str:
    """The ``python -m cratelib finetune`` command line that runs ``config``.

    Every field that differs from the preset becomes ``--init-from``, ``--data``, ``--data-root``
    or a ``--set key=value`` (dict-valued fields as dotted keys), so the command and the notebook
    run the same :class:`TrainConfig` through the same :func:`cratelib.train.train`.
    """
    base, want = load_config(preset).to_dict(), config.to_dict()
    flags = {"init_from": "--init-from", "data": "--data", "data_root": "--data-root"}
    parts = ["python -m cratelib finetune"]
    if preset != "finetune":
        parts.append(f"--config {preset}")
    for key, flag in flags.items():
        if want[key] is not None:
            parts.append(f"{flag} {want[key]}")
    for key, value in want.items():
        if key in flags or value == base[key]:
            continue
        if isinstance(value, dict):
            for inner, v in value.items():
                if base[key].get(inner) != v:
                    parts.append(f"--set {key}.{inner}={_scalar(v)}")
        else:
            parts.append(f"--set {key}={_scalar(value)}")
    return " ".join(parts)


def _scalar(value) -> str:
    """A value as ``--set`` parses it back (YAML flow style, no trailing newline)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
