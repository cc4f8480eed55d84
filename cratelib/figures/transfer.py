"""Transfer learning (book chapter 13, the paper's Table 3) at the book's scale.

Table 3 of the paper fine-tunes CRATE and ViT models pre-trained on ImageNet-21k on five
classification sets with AdamW (lr 5e-5, weight decay 0.01). Here the same recipe (the
``finetune`` preset) moves the shipped zoo models to a *downstream* version of the embedded data,
and three ways of using a model are compared on the same few labelled images:

* :func:`transfer_config`: the one :class:`~cratelib.train.TrainConfig` behind every run of the
  chapter (fine-tuning from a checkpoint, or training from scratch), CPU and GPU alike;
* :func:`cls_features` and :func:`linear_probe`: the frozen model's pooled class-token features
  ``norm(z^{L+1}_CLS)`` (the input of eq. (9)'s classifier) and a logistic regression on them;
* :func:`plot_transfer` and :func:`table3_rows`: the results beside the paper's;
* :func:`cli_command`: the ``python -m cratelib finetune`` line that runs the same config.

Everything here runs in seconds on a CPU for the chapter's sizes.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from cratelib.eval.reference import TABLE3_PARAMS_M, TABLE3_TRANSFER
from cratelib.figures.training import probe_accuracy
from cratelib.train import TrainConfig, load_config
from cratelib.figures.style import COLORS, STYLE

__all__ = [
    "DOWNSTREAM_TASK",
    "transfer_config",
    "cls_features",
    "linear_probe",
    "REGIMES",
    "plot_transfer",
    "table3_rows",
    "cli_command",
]

# The downstream task of chapter 13: the ten shapes under any rotation and with twice the clutter.
# Pre-training (the zoo presets) saw rotations of at most 15 degrees and clutter 1.
DOWNSTREAM_TASK: dict = {"max_rotation": 180.0, "clutter": 2.0}

# The regimes of the chapter, in plotting order: (key, label).
REGIMES: list[tuple[str, str]] = [
    ("as_is", "shipped model as is"),
    ("probe", "linear probe (frozen)"),
    ("finetune", "fine-tuned (all weights)"),
    ("scratch", "trained from scratch"),
]


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


@torch.no_grad()
def cls_features(model: nn.Module, source, device: torch.device | str = "cpu",
                 batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The frozen model's pooled features and the labels of every image of ``source``.

    Args:
        model: a cratelib model (``forward_features`` and ``forward_head(pre_logits=True)``).
        source: a data source of :mod:`cratelib.train` (``cratelib.train.data_source``).

    Returns:
        ``(features (n, d) float32, labels (n,) int64)``: ``norm(z^{L+1}_CLS)``, what the
        classifier of eq. (9) reads.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    feats, labels = [], []
    for x, y in source.batches(batch_size, device, generator=None, augment=False):
        feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def linear_probe(model: nn.Module, train_source, test_source, device: torch.device | str = "cpu") -> float:
    """Test accuracy of a logistic regression fitted on the frozen features of ``train_source``.

    The model's weights are not changed; only a new linear classifier is learned (standardised
    features, :func:`cratelib.figures.training.probe_accuracy`).
    """
    x_train, y_train = cls_features(model, train_source, device)
    x_test, y_test = cls_features(model, test_source, device)
    return probe_accuracy(x_train, y_train, x_test, y_test)


def plot_transfer(results: Mapping[str, Mapping[str, float]], chance: float | None = None,
                  title: str = ""):
    """Grouped bars: test accuracy of each model (group) under each regime (bar).

    Args:
        results: ``model label -> {regime key -> accuracy in [0, 1]}``, keys from :data:`REGIMES`
            (missing regimes are left out).
        chance: accuracy of guessing, drawn as a dotted line.
    """
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        models = list(results)
        regimes = [(k, label) for k, label in REGIMES if any(k in r for r in results.values())]
        width = 0.8 / max(1, len(regimes))
        for i, (key, label) in enumerate(regimes):
            xs = [m + (i - (len(regimes) - 1) / 2) * width for m in range(len(models))]
            vals = [results[name].get(key, np.nan) for name in models]
            bars = ax.bar(xs, vals, width, color=COLORS[i % len(COLORS)], label=label)
            for bar, v in zip(bars, vals):
                if np.isfinite(v):
                    ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{100 * v:.0f}",
                            ha="center", va="bottom", fontsize=7)
        if chance is not None:
            ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(models)), models)
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1.08)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if title:
            ax.set_title(title)
        fig.tight_layout()
    return fig


def table3_rows(ours: Mapping[str, Mapping[str, str]] | None = None,
                datasets: Sequence[str] | None = None) -> list[dict]:
    """Rows of the paper's Table 3 (top-1 %, parameters in millions), with the book's rows after.

    Args:
        ours: extra rows, ``model label -> {column -> text}``; columns not given are left blank.
        datasets: columns to keep (default: all five of Table 3, in the paper's order).
    """
    datasets = list(datasets or next(iter(TABLE3_TRANSFER.values())))
    rows = []
    for model, accs in TABLE3_TRANSFER.items():
        rows.append({"model": model, "parameters (M)": f"{TABLE3_PARAMS_M[model]:.2f}",
                     **{d: f"{accs[d]:.1f}" for d in datasets}})
    for model, cols in (ours or {}).items():
        rows.append({"model": model, "parameters (M)": cols.get("parameters (M)", ""),
                     **{d: cols.get(d, "") for d in datasets},
                     **{k: v for k, v in cols.items() if k not in datasets and k != "parameters (M)"}})
    columns = ["model", "parameters (M)", *datasets]
    extra = [k for r in rows for k in r if k not in columns]
    for k in dict.fromkeys(extra):
        columns.append(k)
    return [{c: r.get(c, "") for c in columns} for r in rows]


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
