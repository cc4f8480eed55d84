"""The emergence study's models and seeds (issue 12): one recipe, ``configs/study.yaml``.

Every run is :func:`study_config` ``(model, seed)``: the recipe with only the architecture and the
seed changed. Runs live in ``data/study/runs/<model>-s<seed>/`` and are committed with their
resumable ``last.pt`` while they train, so a run can span several sessions:
``python -m cratelib train-study --only crate --seed 0`` continues it where it stopped.

The seed sets the initialisation and the batch order; the fresh training images of epoch ``e``
depend only on the data config and ``e``, so every model and seed sees the same image stream
(paired comparisons between models share their data).
"""
from __future__ import annotations

from cratelib.train.config import TrainConfig, load_config

__all__ = ["STUDY_MODELS", "PRIMARY", "study_config", "run_name"]

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
                                 **overrides})
