"""The emergence study's models and seeds: one recipe, ``configs/study.yaml``.

Every run is :func:`study_config` ``(model, seed)``: the recipe with only the architecture and the
seed changed. Runs live in ``data/study/runs/<model>-s<seed>/`` and are committed with their
resumable ``last.pt`` while they train, so a run can be stopped and resumed on another machine:
``python -m cratelib train-study --only crate --seed 0`` continues it where it stopped, and
``python -m cratelib study`` measures the finished runs (:mod:`cratelib.eval.study`).

The seed sets the initialisation and the batch order; the fresh training images of epoch ``e``
depend only on the data config and ``e``, so every model and seed sees the same image stream
(paired comparisons between models share their data).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import torch

from cratelib.models.catalogue import CATALOGUE, entry, run_name, split_run_name
from cratelib.train.config import TrainConfig, load_config
from cratelib.train.distributed import is_main_process
from cratelib.train.loop import run_file, train
from cratelib.train.zoo import export_run, zoo_file

__all__ = ["STUDY_RUNS", "STUDY_ZOO", "STUDY_MEASUREMENTS", "STAGES", "epoch_stages", "study_folders",
           "study_measurements", "study_config", "train_command", "study_checkpoints",
           "run_progress", "latest_checkpoints", "progress_label", "progress_rows", "train_study",
           "export_study"]

STUDY_RUNS = Path(__file__).resolve().parents[2] / "data" / "study" / "runs"  # the repository's run folders
STUDY_ZOO = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "study"  # the finished, shipped runs
# The protocol's measurements of the shipped checkpoints (cratelib.eval.study.protocol.run_study's cache,
# keyed by weights, images and protocol version), so that the book reads them instead of remeasuring.
STUDY_MEASUREMENTS = Path(__file__).resolve().parents[2] / "data" / "study" / "measurements"

RECIPE_IMG_SIZE = 64  # the recipe's resolution: 64 px at patch 8, an 8x8 grid


def train_command(model: str, seed: int, img_size: int = RECIPE_IMG_SIZE) -> str:
    """The command line that trains (or resumes) run ``(model, seed)`` at ``img_size``."""
    size = f" --img-size {img_size}" if img_size != RECIPE_IMG_SIZE else ""
    return f"python -m cratelib train-study{size} --only {model} --seed {seed}"


VALIDATION_KEYS = ("val_acc", "val_recon")  # a classifier's validation accuracy, a masked autoencoder's error


def _validated_epochs(folder: Path) -> list[dict]:
    """The per-epoch records with a validation measure (:data:`VALIDATION_KEYS`) in run ``folder``'s
    ``metrics.jsonl``."""
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        return []
    records = (json.loads(line) for line in metrics.read_text().splitlines())
    return [r for r in records if any(k in r for k in VALIDATION_KEYS)]


def run_progress(folder: str | Path | None) -> dict | None:
    """How far the run in ``folder`` got: its last validated epoch's ``epoch``, ``time_s`` (training
    seconds so far, across resumes) and its validation measure (``val_acc``, or ``val_recon`` for a
    masked autoencoder), read from its ``metrics.jsonl``; ``None`` when there is no folder or no
    validated epoch yet."""
    done = _validated_epochs(Path(folder)) if folder is not None else []
    return {k: v for k, v in done[-1].items() if k in ("epoch", "time_s", *VALIDATION_KEYS)} if done else None


def study_folders(img_size: int = RECIPE_IMG_SIZE) -> tuple[Path, Path]:
    """``(run folders, shipped zoo)`` of the study at ``img_size``: :data:`STUDY_RUNS` and
    :data:`STUDY_ZOO` at the recipe's 64 px, ``...-<img_size>px`` beside them at another resolution
    (128 px: the 16x16 grid), so that the two studies never mix."""
    return _at_size(STUDY_RUNS, img_size), _at_size(STUDY_ZOO, img_size)


def study_measurements(img_size: int = RECIPE_IMG_SIZE) -> Path:
    """The shipped measurement cache of the study at ``img_size`` (:data:`STUDY_MEASUREMENTS` at the
    recipe's 64 px, ``measurements-<img_size>px`` beside it otherwise), named like
    :func:`study_folders`."""
    return _at_size(STUDY_MEASUREMENTS, img_size)


def _at_size(folder: Path, img_size: int) -> Path:
    """``folder`` at the recipe's resolution, ``<folder>-<img_size>px`` beside it at another one."""
    return folder if img_size == RECIPE_IMG_SIZE else folder.with_name(f"{folder.name}-{img_size}px")


def study_config(model: str, seed: int = 0, img_size: int = RECIPE_IMG_SIZE, **overrides) -> TrainConfig:
    """The recipe for ``model`` (a key of :data:`cratelib.models.catalogue.CATALOGUE`: only the
    architecture changes) and ``seed``, at ``img_size`` (the recipe's 64 px, or e.g. 128 px for a
    16x16 grid: its runs go to :func:`study_folders`). The recipe is the entry's preset: ``study``,
    or ``study-mae`` for a masked autoencoder (the same data and optimisation, its own objective)."""
    architecture = {"model": entry(model).model, **entry(model).overrides}
    if img_size % 8:
        raise ValueError(f"img_size must be a multiple of the patch size 8, got {img_size}")
    return load_config(entry(model).preset, {**architecture, "seed": seed, "name": run_name(model, seed),
                                 "img_size": img_size, "out_dir": str(study_folders(img_size)[0]), **overrides})


# The stages of a run that the study measures: the end of training, the first epoch at the recipe's
# validation accuracy (snapshot_at_val_acc: the equal-accuracy comparison), and the initialisation.
# Besides them, ``epoch<N>`` names the snapshot after epoch N of the recipe's snapshot_epochs.
STAGES = ("final", "equal_acc", "init")


def epoch_stages(config: dict | None = None) -> list[str]:
    """The ``epoch<N>`` stages of the recipe's (or a run's ``config``) snapshots after epoch 0."""
    epochs = (config or study_config("crate").to_dict())["snapshot_epochs"]
    return [f"epoch{e}" for e in sorted(epochs) if e > 0]


def _epoch_of(stage: str) -> int | None:
    """N of an ``epoch<N>`` stage, else None."""
    return int(stage[5:]) if stage.startswith("epoch") and stage[5:].isdigit() else None


def _stage_file(stage: str, config: dict, name: str | None = None) -> str:
    """The file of ``stage`` in a run folder (``name`` None) or, for run ``name``, in the shipped zoo."""
    epoch = _epoch_of(stage) if stage not in ("final", "init") else (0 if stage == "init" else None)
    val_acc = config["snapshot_at_val_acc"] if stage == "equal_acc" else None
    return run_file(epoch, val_acc) if name is None else zoo_file(name, epoch, val_acc)


def _runs(folder: Path) -> list[tuple[str, int, dict, int, Path | None]]:
    """``(model, seed, train config, epochs trained, run folder or None)`` of every study run in
    ``folder``: run folders ``<model>-s<seed>/last.pt`` and shipped records ``<model>-s<seed>.json``."""
    found = []
    for path in [*folder.glob(f"*-s*/{run_file()}"), *folder.glob("*-s*.json")]:
        run = path.parent.name if path.name == run_file() else path.stem
        if split_run_name(run) is None:
            continue
        name, seed = split_run_name(run)
        if path.name == run_file():
            last = torch.load(path, map_location="cpu", weights_only=False)
            found.append((name, seed, last["train_config"], last["epoch"], path.parent))
        else:
            record = json.loads(path.read_text())
            found.append((name, seed, record["train_config"], record["epochs"], None))
    order = {name: i for i, name in enumerate(CATALOGUE)}
    return sorted(found, key=lambda r: (order[r[0]], r[1]))


def study_checkpoints(folder: str | Path = STUDY_RUNS, stages: Sequence[str] = STAGES,
                      finished_only: bool = True, models: Sequence[str] | None = None) -> list[dict]:
    """The checkpoints of the study's runs in ``folder``: run folders ``<model>-s<seed>/``
    (``data/study/runs``) or the shipped zoo's ``<model>-s<seed>.pt`` with its record
    (``data/checkpoints/study``, :func:`export_study`). ``stages``: of :data:`STAGES` and
    ``epoch<N>`` snapshots (:func:`epoch_stages`); a run without a stage's file skips it.
    ``models``: only these study models (default: every model with a run in ``folder``).

    Returns:
        One dict per checkpoint found, in the models' order: ``name``, ``seed``, ``stage``,
        ``path``, ``epoch`` (of the checkpoint), ``epochs`` (the run's planned total) and
        ``data_args`` (the run's data config, with its ``image_size``). With ``finished_only``,
        runs still training are left out (their ``last.pt`` is not the final model).

    Raises:
        FileNotFoundError: no study run in ``folder``.
    """
    folder = Path(folder)
    unknown = sorted(s for s in set(stages) - set(STAGES) if _epoch_of(s) is None)
    if unknown:
        raise ValueError(f"unknown stages {unknown}; known: {list(STAGES)} and epoch<N> (a snapshot epoch)")
    found = []
    for name, seed, config, trained, run_dir in _runs(folder):
        if (finished_only and trained < config["epochs"]) or (models is not None and name not in models):
            continue
        for stage in stages:
            if stage == "equal_acc" and config["snapshot_at_val_acc"] is None:
                continue
            run = run_name(name, seed)
            path = run_dir / _stage_file(stage, config) if run_dir else folder / _stage_file(stage, config, run)
            if path.is_file():
                epoch = trained if stage == "final" else torch.load(path, map_location="cpu", weights_only=True)["epoch"]
                found.append({"name": name, "seed": seed, "stage": stage, "path": path, "epoch": epoch,
                              "epochs": config["epochs"],
                              "data_args": dict(config["data_args"], image_size=config["img_size"])})
    if not found:
        which = f" of {', '.join(models)}" if models is not None else ""
        raise FileNotFoundError(f"no {'finished ' if finished_only else ''}study runs{which} in {folder} (run folders "
                                "<model>-s<seed>/last.pt or shipped <model>-s<seed>.pt + .json); train them with "
                                "`python -m cratelib train-study`")
    return found


def latest_checkpoints(runs: str | Path, zoo: str | Path, seed: int = 0) -> dict[str, dict]:
    """Each study model's most advanced checkpoint of ``seed``: its shipped final model in ``zoo``
    when the run is finished, else the latest state (``last.pt``) of its run folder in ``runs``,
    whose ``epoch`` is below its ``epochs`` while it trains. Keyed by model, in the models' order;
    models with neither are left out (dicts as :func:`study_checkpoints`)."""
    found = []
    for folder, finished in ((Path(zoo), True), (Path(runs), False)):
        if folder.is_dir():
            try:
                found += study_checkpoints(folder, ["final"], finished_only=finished)
            except FileNotFoundError:
                continue
    latest: dict[str, dict] = {}
    for c in found:
        if c["seed"] == seed:
            latest.setdefault(c["name"], c)
    return {n: latest[n] for n in CATALOGUE if n in latest}


def progress_label(checkpoint: Mapping) -> str:
    """``"final"`` for a finished run's checkpoint (a dict of :func:`latest_checkpoints` or
    :func:`study_checkpoints`), else ``"epoch <e>/<epochs>"``: the label under which the book
    shows a run still in training."""
    return "final" if checkpoint["epoch"] >= checkpoint["epochs"] else f"epoch {checkpoint['epoch']}/{checkpoint['epochs']}"


def progress_rows(models: Sequence[str], seeds: Sequence[int], img_size: int = RECIPE_IMG_SIZE) -> list[dict]:
    """One table row per run ``(model, seed)`` of the study at ``img_size``, as far as its committed
    run folder has got: ``run``, ``epoch`` (``"e/E"``, ``"not started"``), the validation accuracy
    where a model classifies and the validation reconstruction error where one is a masked
    autoencoder (``nan`` for the others), minutes of training per epoch (across resumes), and the
    command that trains or resumes it."""
    runs, _ = study_folders(img_size)
    epochs = study_config(models[0], img_size=img_size).epochs
    objectives = {study_config(m).objective for m in models}
    rows = []
    nan = float("nan")
    for model in models:
        for seed in seeds:
            r = run_progress(runs / run_name(model, seed)) or {}
            rows.append({"run": run_name(model, seed),
                         "epoch": f"{r['epoch']}/{epochs}" if r else "not started",
                         **({"validation accuracy": r.get("val_acc", nan)} if "classify" in objectives else {}),
                         **({"validation reconstruction error": r.get("val_recon", nan)} if "mae" in objectives else {}),
                         "minutes per epoch": r["time_s"] / r["epoch"] / 60 if r else nan,
                         "command": f"`{train_command(model, seed, img_size)}`"})
    return rows


def _in_repository(path: Path) -> str:
    """``path`` relative to the repository's root where it lies inside it (a shipped record names no
    machine's folders), else as it is."""
    root = STUDY_RUNS.parents[2]
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def export_study(models: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                 out_dir: str | Path = STUDY_ZOO, runs_dir: str | Path | None = None) -> list[dict]:
    """Ship the finished runs in ``runs_dir`` (default: :data:`STUDY_RUNS`) of ``models`` and
    ``seeds`` (default: all) to ``out_dir`` with :func:`cratelib.train.zoo.export_run`: float16
    weights, the epoch and equal-accuracy snapshots, and a record with the run's own config (recipe,
    data version), the held-out accuracy and the training time. Runs not finished are skipped. The
    run folder's ``config.yaml`` is rewritten with the record's config: where the run folder lies
    inside the repository, both name it relative to the repository's root."""
    records = []
    for name, seed, config, trained, run_dir in _runs(Path(runs_dir or STUDY_RUNS)):
        if run_dir is None or trained < config["epochs"] or (models and name not in models) \
                or (seeds is not None and seed not in seeds):
            continue
        recorded = TrainConfig.from_dict({**config, "out_dir": _in_repository(run_dir.parent), "name": run_dir.name})
        recorded.save(run_dir / "config.yaml")
        records.append(export_run(recorded, out_dir, train_command(name, seed, config["img_size"]), run_dir=run_dir))
    return records


def train_study(models: Sequence[str] | None = None, seeds: Sequence[int] = (0,), img_size: int = RECIPE_IMG_SIZE,
                **kwargs) -> list[dict]:
    """Train (resuming) the study runs of ``models`` (default: all) and ``seeds`` at ``img_size``,
    one after the other, and ship each finished run (:func:`export_study`) to the zoo of
    :func:`study_folders`; ``kwargs`` go to :func:`cratelib.train.train`. Returns each run's last
    history record."""
    runs, zoo = study_folders(img_size)
    out = []
    for model in models or list(CATALOGUE):
        for seed in seeds:
            result = train(study_config(model, seed, img_size), resume=True, **kwargs)
            out.append({"run": run_name(model, seed), **(result.history[-1] if result.history else {})})
            if is_main_process():  # under torchrun, rank 0 ships
                export_study([model], [seed], out_dir=zoo, runs_dir=runs)
    return out
