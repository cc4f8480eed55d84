"""Training configuration: one validated dataclass, presets as YAML files, ``key=value`` overrides.

Presets (``cratelib/configs/<name>.yaml``):

* ``paper``    - the paper's recipe (App. C.1): ImageNet-21k, 224 px, Lion, lr 9.6e-5, wd 0.05,
  batch 4096 (by gradient accumulation where memory is short), 90 epochs, warm-up + cosine;
* ``colab``    - CRATE-T on the embedded data (generator version 3) at 96 px on one Colab T4 in
  about an hour;
* ``cpu-demo`` - a small CRATE on the embedded data (version 3), a few minutes on two CPU cores;
* ``zoo-*``    - the recipes of the checkpoints shipped in ``data/checkpoints`` (version 3);
* ``study``    - the emergence study's one recipe (version 4, the default data; see
  :mod:`cratelib.train.study`);
* ``finetune`` - Table 3's fine-tuning recipe (AdamW, lr 5e-5, wd 0.01, batch 256);
* ``study-mae`` - the study's data and optimisation for CRATE-MAE with ``objective: mae``
  (masked autoencoding; no label is read, see :mod:`cratelib.train.objectives`).

Batch sizes are global: ``batch_size`` images go through one forward pass summed over all the
processes of a ``torchrun`` launch (each of W processes takes ``batch_size / W``), and the
optimizer steps every ``accum_steps`` passes, so the global batch is ``batch_size * accum_steps``
whatever the number of GPUs, and a config means the same optimisation on 1 or 8 of them.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cratelib.io import atomic_write_text

__all__ = ["TrainConfig", "load_config", "preset_names", "PRESET_DIR"]

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class TrainConfig:
    """Everything a run needs; a run directory's ``config.yaml`` reproduces it exactly."""

    name: str = "run"  # run name: outputs go to ``out_dir/name``
    out_dir: str = "runs"
    # model
    model: str = "crate_nano_patch8"  # registered name (cratelib.list_models())
    model_args: dict = field(default_factory=dict)  # CRATEConfig overrides (dim, depth, ...)
    init_from: str | None = None  # checkpoint to start from: cratelib file, or "official:<path>"
    objective: Literal["classify", "mae"] = "classify"  # eq. (9), or masked autoencoding (crate_mae_* models)
    # data
    data: str = "synthetic"  # cratelib.data.build_dataset name
    data_root: str | None = None
    data_args: dict = field(default_factory=dict)  # e.g. SyntheticConfig fields for "synthetic"
    fresh_data: bool = False  # synthetic only: new training images every epoch, from (seed, epoch, index)
    train_split: str = "train"
    val_split: str | None = "val"
    img_size: int = 64
    num_classes: int = 10
    crop: Literal["center", "random_resized"] = "center"
    # optimisation
    optimizer: Literal["lion", "adamw"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    batch_size: int = 128  # one forward pass over all processes; global batch = batch_size * accum_steps
    accum_steps: int = 1
    epochs: int = 10
    warmup_epochs: float = 1.0
    min_lr: float = 1e-6
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    # machinery
    amp: Literal["none", "bf16", "fp16"] = "none"
    compile: bool = False
    device: str = "auto"  # "auto": cuda if available
    num_workers: int = 0
    seed: int = 0
    deterministic: bool = False
    log_every: int = 20  # steps between loss lines in metrics.jsonl
    snapshot_epochs: list = field(default_factory=list)  # extra model-only checkpoints (Fig. 10)
    snapshot_at_val_acc: float | None = None  # model-only checkpoint when val accuracy first reaches it

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        positive = ("lr", "batch_size", "accum_steps", "epochs", "img_size", "num_classes", "log_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.snapshot_at_val_acc is not None and not (0 < self.snapshot_at_val_acc <= 1 and self.val_split):
            raise ValueError(f"TrainConfig.snapshot_at_val_acc must be in (0, 1] with a val_split, got "
                             f"{self.snapshot_at_val_acc!r} (val_split={self.val_split!r})")
        if self.fresh_data and self.data != "synthetic":
            raise ValueError(f"TrainConfig.fresh_data needs data='synthetic' (generated images), got data={self.data!r}")
        mae_model = self.model.startswith("crate_mae_")
        if (self.objective == "mae") != mae_model:
            raise ValueError(f"TrainConfig.objective={self.objective!r} does not fit model={self.model!r}: crate_mae_* "
                             "models train with objective 'mae' (masked autoencoding), every other with 'classify'")
        if self.objective == "mae" and self.snapshot_at_val_acc is not None:
            raise ValueError("TrainConfig.snapshot_at_val_acc needs a validation accuracy; objective 'mae' has none")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise ValueError(f"TrainConfig.warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}; known keys: {sorted(known)}")
        hints = typing.get_type_hints(cls)
        d = {k: _as_float(v) if float in (hints[k], *typing.get_args(hints[k])) else v for k, v in d.items()}
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML to ``path`` (a run folder's ``config.yaml``), atomically."""
        return atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Raise a TypeError naming the key when ``value`` does not fit the annotation ``hint``."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"TrainConfig.{name} must be one of {typing.get_args(hint)}, got {value!r}")
        return
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        hint = next(o for o in options if o is not type(None))
    allowed = {float: (int, float), int: (int,), bool: (bool,), str: (str,), dict: (dict,), list: (list,)}[hint]
    if isinstance(value, bool) and hint is not bool or not isinstance(value, allowed):
        raise TypeError(f"TrainConfig.{name} must be {hint.__name__}, got {type(value).__name__} {value!r}")


def _as_float(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; accept it for float fields."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_config(source: str | Path | dict | None = None, overrides: list[str] | dict | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a preset name, a YAML file or a dict, plus overrides.

    Args:
        source: preset name (``cpu-demo``), path to a YAML file, a dict, or None (defaults).
        overrides: ``["lr=3e-4", "model_args.dim=256"]`` or a dict; dotted keys reach into the
            dict-valued fields.
    """
    if source is None:
        data: dict = {}
    elif isinstance(source, dict):
        data = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            path = PRESET_DIR / f"{source}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"no config file {source!r} and no preset of that name; presets: {preset_names()}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    pairs = list(overrides.items()) if isinstance(overrides, dict) else [_split(item) for item in overrides or []]
    for key, value in pairs:
        if "." in key:
            outer, inner = key.split(".", 1)
            data[outer] = {**data.get(outer, {}), inner: value}
        else:
            data[key] = value
    return TrainConfig.from_dict(data)


def _split(item: str) -> tuple[str, Any]:
    """``"lr=3e-4"`` -> ``("lr", 0.0003)``; values are parsed as YAML scalars."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key=value")
    key, text = item.split("=", 1)
    return key.strip(), yaml.safe_load(text)
