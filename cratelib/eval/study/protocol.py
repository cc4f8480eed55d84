"""The study's protocol (:mod:`cratelib.eval.study`): the probe images, every measure of a
checkpoint at every layer, the baselines, and the whole study on a set of checkpoints."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from cratelib.checkpoint import load_checkpoint
from cratelib.data import SyntheticData, load_or_generate
from cratelib.data.factory import synthetic_config
from cratelib.data.synthetic import HELD_OUT_SEED
from cratelib.eval.baselines import random_maps
from cratelib.eval.classify import probe_accuracy
from cratelib.eval.cues import cue_maps
from cratelib.eval.extract import layer_features, layer_maps, to_model_input
from cratelib.eval.maskcut_eval import layerwise_maskcut
from cratelib.eval.metrics import roc_auc
from cratelib.eval.pca import pca_by_group
from cratelib.eval.scoring import HEAD_MEASURE, RULES, Scores, Targets, score_maps, summary_row
from cratelib.eval.sources import held_out_samples
from cratelib.eval.study.record import CheckpointMeasure, cache_path, cached_measurement
from cratelib.eval.study.verdicts import study_verdicts
from cratelib.models.catalogue import primary_layer
from cratelib.trace import num_layers

__all__ = ["PROTOCOL_VERSION", "COLUMNS", "ProbeSets", "probe_sets", "score_on_sets", "pca_aucs", "score_model",
           "baseline_scores", "maskcut_ap50", "flat_shares", "pooled_features", "probe_on_sets", "StudyModel",
           "measure_checkpoint", "measurement_path", "StudyResult", "run_study", "measure_study"]

# Bump when a measure's definition or the probe sets change: it keys the measurement cache, so a
# cached measurement is never read back under a protocol it was not made with.
PROTOCOL_VERSION = 1
# The columns of the study's rows, in order (the map measures, then the feature measure).
COLUMNS = ("auc_any", "auc_half", "on_main", "on_distractors", "mass_iou", "pca_auc")
MAP_MEASURES = COLUMNS[:-1]


@dataclass
class ProbeSets:
    """The images every choice is made on (``select``) and every number is reported on (``measure``)."""

    select: SyntheticData
    measure: SyntheticData


def probe_sets(data_args: Mapping, num_images: int = 256, cache_dir: str | Path | None = None) -> ProbeSets:
    """Fresh images of the study's data: the val and test splits of seed :data:`HELD_OUT_SEED`
    (never a training seed), ``num_images`` each, at the data config ``data_args``."""
    args = {**data_args, "seed": HELD_OUT_SEED, "num_images": num_images}
    return ProbeSets(load_or_generate(synthetic_config("val", **args), cache_dir),
                     load_or_generate(synthetic_config("test", **args), cache_dir))


def score_on_sets(maps: torch.Tensor, select_maps: torch.Tensor, sets: ProbeSets, layers: Sequence[int]) -> Scores:
    """The protocol's map measures of precomputed maps: ``maps`` ``(L, J, K, h, w)`` of the
    measurement set, ``select_maps`` ``(L, J', K, h, w)`` of the selection set (where each layer's
    head is chosen); any source of maps: a model, random maps, a pixel cue with K = 1."""
    grid = tuple(maps.shape[-2:])
    return score_maps(maps, Targets.of_scenes(sets.measure, grid), layers, select_maps,
                      Targets.of_scenes(sets.select, grid), MAP_MEASURES)


def pca_aucs(features: torch.Tensor, grid: tuple[int, int], data: SyntheticData) -> np.ndarray:
    """``(J,)``: per image, the AUC of the first principal component of its patch features
    (``(J, N, D)``, one PCA per class as App. B.2) against its main-object patches (``half``).
    A principal direction's sign is arbitrary: it is set once per class, to the orientation with
    the higher AUC over all of that class's patches, so a per-image value below 0.5 stays visible.
    """
    _, _, pc1 = pca_by_group(features, grid, groups=data.labels)
    target = Targets.of_scenes(data, grid).main >= RULES["half"]
    out = np.full(len(data), np.nan)
    for c in np.unique(data.labels):
        idx = torch.from_numpy(np.flatnonzero(data.labels == c))
        sign = 1.0 if float(roc_auc(pc1[idx].flatten(), target[idx].flatten())) >= 0.5 else -1.0
        out[idx.numpy()] = roc_auc((sign * pc1[idx]).flatten(-2), target[idx].flatten(-2)).numpy()
    return out


def score_model(model: torch.nn.Module, sets: ProbeSets, pca: bool = True, device: str | torch.device = "cpu",
                batch_size: int = 32) -> Scores:
    """Every measure of the protocol, every layer, at the model's own resolution (``pca_auc``
    only with ``pca``)."""
    layers = list(range(num_layers(model)))
    maps = layer_maps(model, list(sets.measure.images), layers, device=device, batch_size=batch_size)
    select = layer_maps(model, list(sets.select.images), layers, device=device, batch_size=batch_size)
    scores = score_on_sets(maps, select, sets, layers)
    if pca:
        feats, grid = layer_features(model, list(sets.measure.images), layers, device=device, batch_size=batch_size)
        scores.values["pca_auc"] = np.stack([pca_aucs(f, grid, sets.measure) for f in feats]).astype(np.float32)
    return scores


def baseline_scores(sets: ProbeSets, grid: tuple[int, int], heads: int, seed: int = 0) -> dict[str, Scores]:
    """What nothing learned scores on the same images and metric: each pixel cue as a one-head,
    one-layer map, and ``heads`` random maps per image through the same head choice."""
    patch = sets.measure.config.image_size // grid[0]
    cues, cues_select = cue_maps(sets.measure.images, patch), cue_maps(sets.select.images, patch)
    out = {name: score_on_sets(cues[name][None, :, None], cues_select[name][None, :, None], sets, [0])
           for name in cues}
    out["random"] = score_on_sets(random_maps(len(sets.measure), heads, grid, seed)[None],
                                  random_maps(len(sets.select), heads, grid, seed + 1)[None], sets, [0])
    return out


def maskcut_ap50(model: torch.nn.Module, data: SyntheticData, folder: str | Path, layer: int) -> float:
    """MaskCut's class-agnostic detection AP50 (percent, no CRF) at ``layer`` on ``data``, whose
    COCO export (every class object, not the distractors) is written to ``folder``."""
    samples, gt = held_out_samples(data, folder)
    return layerwise_maskcut(model, samples, gt, [layer])[layer].ap["no_crf"]["det AP50"]


@torch.no_grad()
def pooled_features(model: torch.nn.Module, data: SyntheticData, device: str | torch.device = "cpu",
                    batch_size: int = 64) -> np.ndarray:
    """``(J, d)``: the frozen model's pooled feature of each image of ``data`` at the model's own
    resolution: what eq. (9)'s classifier reads (``norm(z_CLS)``; a CRATE-MAE's encoder pools the
    same way, a ViT-GAP by the mean over patches)."""
    was_training = model.training
    model.eval().to(device)
    size = model.config.img_size
    feats = [model.forward_head(model.forward_features(to_model_input(list(data.images[i:i + batch_size]), size)
                                                      .to(device)), pre_logits=True).float().cpu()
             for i in range(0, len(data), batch_size)]
    model.train(was_training)
    return torch.cat(feats).numpy()


def probe_on_sets(model: torch.nn.Module, sets: ProbeSets, device: str | torch.device = "cpu") -> float:
    """Linear-probe accuracy of the frozen model's pooled features (:func:`pooled_features`): a
    logistic regression fitted on the selection images and their labels, tested on the measurement
    images (:func:`cratelib.eval.classify.probe_accuracy`). What a representation knows of the
    class without having been told it, for a model trained without labels (CRATE-MAE) beside the
    supervised ones."""
    return probe_accuracy(pooled_features(model, sets.select, device), sets.select.labels,
                          pooled_features(model, sets.measure, device), sets.measure.labels)


def flat_shares(data: SyntheticData) -> dict[str, float]:
    """What a flat map puts on the main object and on the distractors: their shares of the image."""
    return {"on_main": float((data.instance_map == 1).mean()), "on_distractors": float((data.distractor_map > 0).mean())}


@dataclass
class StudyModel:
    """One checkpoint of the study: model ``name`` (a key of the catalogue), training ``seed``,
    ``stage`` (``final``; ``equal_acc``: when validation accuracy first reached the recipe's 80 %;
    ``init``: before training; ``epoch<N>``) and the loaded module."""

    name: str
    seed: int
    stage: str
    model: torch.nn.Module


def measure_checkpoint(m: StudyModel, sets: ProbeSets, pca: bool = True, maskcut_folder: str | Path | None = None,
                       num_maps: int = 6, device: str | torch.device = "cpu") -> CheckpointMeasure:
    """The protocol on one checkpoint (arguments as :func:`run_study`)."""
    s = score_model(m.model, sets, pca=pca, device=device)
    primary = s.layer(primary_layer(m.name))
    rows = []
    for i in range(len(s.layers)):
        row = {"name": m.name, "seed": m.seed, "stage": m.stage, "primary": i == primary,
               **summary_row(s, s.layers[i], COLUMNS)}
        if maskcut_folder is not None and i == primary:
            row["maskcut_ap50"] = maskcut_ap50(m.model, sets.measure, maskcut_folder, s.layers[i])
        rows.append(row)
    head = int(s.head(HEAD_MEASURE)[primary])
    maps = layer_maps(m.model, list(sets.measure.images[:num_maps]), [s.layers[primary]], device=device)[0][:, head]
    return CheckpointMeasure(rows, s, maps)


@dataclass
class StudyResult:
    """Everything :func:`run_study` measured.

    Attributes:
        rows: one dict per model checkpoint and layer (``name, seed, stage, layer, primary`` and the
            :data:`COLUMNS`), then one per pixel cue and for random maps (``stage="baseline"``).
        scores: ``(name, seed, stage) -> Scores``.
        verdicts: one dict per stage and pair (:func:`cratelib.eval.study.verdicts.study_verdicts`).
        maps: ``(name, seed, stage) -> (J', h, w)`` the chosen head's maps at the primary layer on
            the first measurement images, for figures.
    """

    rows: list[dict]
    scores: dict[tuple[str, int, str], Scores]
    verdicts: list[dict]
    maps: dict[tuple[str, int, str], torch.Tensor]

    def primary(self) -> list[dict]:
        """The rows at each model's primary layer, and the baselines."""
        return [r for r in self.rows if r["primary"]]


def measurement_path(m: StudyModel, sets: ProbeSets, pca: bool, maskcut: bool, num_maps: int,
                     cache_dir: str | Path) -> Path:
    """Where the measurement of ``m`` is cached: keyed by the weights, both probe sets' data configs,
    the options and :data:`PROTOCOL_VERSION`."""
    return cache_path(m.name, m.seed, m.stage, m.model, sets.select.config.cache_key(), sets.measure.config.cache_key(),
                      PROTOCOL_VERSION, cache_dir, pca=pca, maskcut=maskcut, num_maps=num_maps)


def run_study(models: Sequence[StudyModel], sets: ProbeSets, pca: bool = True, maskcut_folder: str | Path | None = None,
              num_maps: int = 6, device: str | torch.device = "cpu", cache_dir: str | Path | None = None
              ) -> StudyResult:
    """The protocol on every checkpoint, the baselines, and the verdicts.

    Args:
        models: the checkpoints (all trained on the data of ``sets``).
        sets: selection and measurement images (:func:`probe_sets`).
        pca: also measure the first principal component (slower).
        maskcut_folder: where to export the measurement set as COCO for MaskCut's AP50 at the
            primary layer (``None``: skip MaskCut).
        num_maps: how many images' maps to keep for figures.
        device: where the models run.
        cache_dir: read each checkpoint's measurement from here when it was made with the same
            weights, images, options and protocol version
            (:func:`measurement_path`), else
            measure it and write it there atomically (``None``: always measure, write nothing).
    """
    rows, scores, maps = [], {}, {}
    for m in models:
        measure = lambda: measure_checkpoint(m, sets, pca, maskcut_folder, num_maps, device)  # noqa: E731
        if cache_dir is None:
            result = measure()
        else:
            path = measurement_path(m, sets, pca, maskcut_folder is not None, num_maps, cache_dir)
            result = cached_measurement(path, measure)
        rows += result.rows
        key = (m.name, m.seed, m.stage)
        scores[key], maps[key] = result.scores, result.maps
    heads = max((s[HEAD_MEASURE].shape[-1] for s in scores.values()), default=1)
    grid = tuple(next(iter(maps.values())).shape[-2:]) if maps else (8, 8)
    for name, s in baseline_scores(sets, grid, heads).items():
        rows.append({"name": name, "seed": -1, "stage": "baseline", "primary": True, **summary_row(s, 0, COLUMNS)})
    return StudyResult(rows, scores, study_verdicts(rows, scores), maps)


def measure_study(checkpoints: Sequence[Mapping], num_images: int = 256, pca: bool = True,
                  maskcut_folder: str | Path | None = None, device: str | torch.device = "cpu",
                  cache_dir: str | Path | None = None) -> tuple[StudyResult, ProbeSets]:
    """The protocol on the study's saved checkpoints: what ``python -m cratelib study`` and the book run.

    Args:
        checkpoints: one mapping per checkpoint with ``name``, ``seed``, ``stage``, ``path``,
            ``epoch`` and ``data_args`` (:func:`cratelib.train.study.study_checkpoints`).
        num_images: images in the selection set and in the measurement set.
        pca, maskcut_folder, device, cache_dir: as in :func:`run_study`.

    Returns:
        The :class:`StudyResult` (each row with the ``epoch`` of its checkpoint; baselines ``""``)
        and the :class:`ProbeSets` it was measured on.

    Raises:
        ValueError: no checkpoints, or checkpoints trained on different data.
    """
    if not checkpoints:
        raise ValueError("no checkpoints to measure")
    data = {json.dumps(c["data_args"], sort_keys=True) for c in checkpoints}
    if len(data) > 1:
        raise ValueError(f"the checkpoints were trained on different data: {sorted(data)}")
    sets = probe_sets(checkpoints[0]["data_args"], num_images)
    models = [StudyModel(c["name"], c["seed"], c["stage"], load_checkpoint(c["path"]).eval()) for c in checkpoints]
    result = run_study(models, sets, pca=pca, maskcut_folder=maskcut_folder, device=device, cache_dir=cache_dir)
    epochs = {(c["name"], c["seed"], c["stage"]): c["epoch"] for c in checkpoints}
    for row in result.rows:
        row["epoch"] = epochs.get((row["name"], row["seed"], row["stage"]), "")
    return result, sets
