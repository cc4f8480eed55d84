"""The emergence study's models and seeds (issue 12): one recipe, ``configs/study.yaml``.

Every run is :func:`study_config` ``(model, seed)``: the recipe with only the architecture and the
seed changed. Runs live in ``data/study/runs/<model>-s<seed>/`` and are committed with their
resumable ``last.pt`` while they train, so a run can span several sessions:
``python -m cratelib train-study --only crate --seed 0`` continues it where it stopped, and
``python -m cratelib study`` measures the finished runs (:mod:`cratelib.eval.emergence`).

The seed sets the initialisation and the batch order; the fresh training images of epoch ``e``
depend only on the data config and ``e``, so every model and seed sees the same image stream
(paired comparisons between models share their data).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from cratelib.train.config import TrainConfig, load_config
from cratelib.train.loop import train

__all__ = ["STUDY_MODELS", "PRIMARY", "STUDY_RUNS", "STAGES", "study_config", "run_name", "study_checkpoints",
           "train_study"]

STUDY_RUNS = Path(__file__).resolve().parents[2] / "data" / "study" / "runs"  # the repository's run folders

# name -> overrides of the recipe (architecture only; sizes as the recipe: dim 96, 4 heads, depth 6).
STUDY_MODELS: dict[str, dict] = {
    "crate": {},
    "vit-cls": {"model": "vit_nano_patch8"},  # the book's ViT: the classifier reads [CLS]
    "vit-gap": {"model": "vit_nano_patch8", "model_args.pool": "mean"},  # official ViT baseline
    "crate-mlp": {"model": "crate_mlp_nano_patch8"},
    "crate-mhsa": {"model": "crate_mhsa_nano_patch8"},
    "crate-sth": {"model": "crate_sth_nano_patch8"},
}
PRIMARY = ("crate", "vit-cls", "vit-gap")  # >= 3 seeds each; the ablations 1+


def run_name(model: str, seed: int) -> str:
    return f"{model}-s{seed}"


def study_config(model: str, seed: int = 0, **overrides) -> TrainConfig:
    """The recipe for ``model`` (a key of :data:`STUDY_MODELS`) and ``seed``."""
    if model not in STUDY_MODELS:
        raise ValueError(f"unknown study model {model!r}; known: {', '.join(STUDY_MODELS)}")
    return load_config("study", {**STUDY_MODELS[model], "seed": seed, "name": run_name(model, seed),
                                 "out_dir": str(STUDY_RUNS), **overrides})


# The stages of a run that the study measures: the end of training, the first epoch at the recipe's
# validation accuracy (snapshot_at_val_acc: the equal-accuracy comparison), and the initialisation.
STAGES = ("final", "equal_acc", "init")


def _stage_file(stage: str, config: dict) -> str:
    return {"final": "last.pt", "equal_acc": f"val_acc_{config['snapshot_at_val_acc']:g}.pt",
            "init": "epoch_0.pt"}[stage]


def study_checkpoints(runs_dir: str | Path = STUDY_RUNS, stages: Sequence[str] = STAGES,
                      finished_only: bool = True) -> list[dict]:
    """The checkpoints of the study's run folders ``<runs_dir>/<model>-s<seed>/``.

    Returns:
        One dict per checkpoint found: ``name``, ``seed``, ``stage``, ``path``, ``epoch`` (of the
        checkpoint), ``epochs`` (the run's planned total) and ``data_args`` (the run's data
        config). With ``finished_only``, runs still training are left out (their ``last.pt`` is not
        the final model).

    Raises:
        FileNotFoundError: no run folder with a ``last.pt`` in ``runs_dir``.
    """
    runs_dir = Path(runs_dir)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; known: {list(STAGES)}")
    found = []
    order = {name: i for i, name in enumerate(STUDY_MODELS)}
    runs = sorted(runs_dir.glob("*-s*/last.pt"), key=lambda p: (order.get(p.parent.name.rpartition("-s")[0], 99),
                                                                 p.parent.name))
    for run in runs:
        name, _, seed = run.parent.name.rpartition("-s")
        if name not in STUDY_MODELS or not seed.isdigit():
            continue
        last = torch.load(run, map_location="cpu", weights_only=False)
        config = last["train_config"]
        if finished_only and last["epoch"] < config["epochs"]:
            continue
        for stage in stages:
            if stage == "equal_acc" and config["snapshot_at_val_acc"] is None:
                continue
            path = run.parent / _stage_file(stage, config)
            if path.is_file():
                epoch = last["epoch"] if stage == "final" else torch.load(path, map_location="cpu",
                                                                          weights_only=True)["epoch"]
                found.append({"name": name, "seed": int(seed), "stage": stage, "path": path, "epoch": epoch,
                              "epochs": config["epochs"], "data_args": dict(config["data_args"],
                                                                            image_size=config["img_size"])})
    if not found:
        raise FileNotFoundError(f"no {'finished ' if finished_only else ''}study runs (<model>-s<seed>/last.pt) in "
                                f"{runs_dir}; train them with `python -m cratelib train-study`")
    return found


def train_study(models: Sequence[str] | None = None, seeds: Sequence[int] = (0,), **kwargs) -> list[dict]:
    """Train (resuming) the study runs of ``models`` (default: all) and ``seeds``, one after the
    other; ``kwargs`` go to :func:`cratelib.train.train`. Returns each run's last history record."""
    out = []
    for model in models or list(STUDY_MODELS):
        for seed in seeds:
            result = train(study_config(model, seed), resume=True, **kwargs)
            out.append({"run": run_name(model, seed), **(result.history[-1] if result.history else {})})
    return out
