"""The emergence study's protocol: does supervised training make [CLS] attention segment?

Fixed in code before the study's models were measured, so that no choice below was made while
looking at their numbers.

**Images.** Two fresh sets of the study's own data (generator version 4, never used in training):
a *selection* set (the val split of seed :data:`PROBE_SEED`) on which every choice is made, and a
*measurement* set (the test split of the same seed) on which every number is reported.

**Primary measure.** Per image, the ROC AUC of a head's CLS attention map (eqs. 10-11, on the
patch grid of the model's own resolution) against the main object, with two definitions of an
object patch (:data:`RULES`): at least half of its pixels are object (``half``), or any of them
(``any``). No threshold on the map. Per layer, *one* head is chosen - the one with the highest mean
AUC on the selection set - and scored on the measurement set (never a best head per image); the
mean over all heads is reported beside it. Every layer is measured; the pre-named primary pair is
CRATE's penultimate layer (the paper's choice for CRATE, Fig. 14) and the ViT's last layer
(:data:`PRIMARY_LAYER`).

**Secondary measures.** The share of attention on the main object and on the distractor blobs
(against their shares of the image, what a flat map gets); the IoU of DINO's 60 %-mass set with the
object for the best head of each image (the book's earlier headline, kept for comparison, with a
flat map's score beside it); how well the first principal component of the patch features
separates object from background (per-image AUC, its sign set once per class, App. B.2's groups);
MaskCut's class-agnostic AP50 (Alg. 4, no CRF).

**Baselines on the same images and metric.** Pixel cues (brightness, saturation, colour distance,
edge energy: :mod:`cratelib.eval.cues`), random maps through the same head choice, and each
architecture at initialisation (the runs' epoch-0 snapshots).

**Statistics and the decision rule.** Paired per-image differences with standard errors
(:mod:`cratelib.eval.stats`); across seeds, mean and spread. :func:`verdict` states the rule: a
difference between two models is real only if it has the same sign in every seed, exceeds two
standard deviations across seeds, and both models beat the best pixel baseline.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import json

import numpy as np
import torch

from cratelib.checkpoint import load_checkpoint
from cratelib.data import SyntheticData, load_or_generate
from cratelib.data.factory import synthetic_config
from cratelib.data.synthetic import HELD_OUT_SEED
from cratelib.eval.baselines import random_maps
from cratelib.eval.cache import cache_key, cached, state_dict_sha256
from cratelib.eval.cues import RULES, cue_maps
from cratelib.eval.extract import layer_features, layer_maps
from cratelib.eval.localisation import attention_on, best_head_ious, map_auc, object_fraction
from cratelib.eval.maskcut_eval import layerwise_maskcut
from cratelib.eval.metrics import roc_auc
from cratelib.eval.pca import pca_by_group
from cratelib.eval.sources import held_out_samples
from cratelib.eval.stats import across_seeds, paired
from cratelib.trace import num_layers

__all__ = ["RULES", "PRIMARY_LAYER", "ProbeSets", "probe_sets", "RunScores", "score_model", "score_maps_on",
           "pca_aucs", "baseline_scores", "verdict", "primary_layer", "maskcut_ap50", "summary_row", "flat_shares",
           "PAIRS", "PRIMARY_MEASURE", "PROTOCOL_VERSION", "StudyModel", "StudyResult", "CheckpointMeasure",
           "measure_checkpoint", "measurement_path", "run_study", "per_image", "study_verdicts", "seed_summary",
           "summary_by_name", "measure_study"]

# The pre-named primary pair: CRATE's penultimate layer (the paper's, Fig. 14), the ViT's last.
PRIMARY_LAYER: dict[str, int] = {"crate": -2, "vit": -1}


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


def _fractions(data: SyntheticData, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    """``(J, h, w)`` share of each patch on the main object, on any distractor."""
    return {"main": object_fraction(list(data.instance_map == 1), grid),
            "distractors": object_fraction(list(data.distractor_map > 0), grid)}


@dataclass
class RunScores:
    """One model's measures on the measurement set, every layer ``l`` (index into ``layers``),
    image ``j`` and head ``k``.

    Attributes:
        layers: the block indices measured (``0 .. L-1``).
        auc: rule -> ``(L, J, K)`` per-image AUC of each head's map against the main object.
        select_auc: rule -> ``(L, J', K)`` the same on the selection set.
        on_main, on_distractors: ``(L, J, K)`` share of attention on main-object / distractor pixels.
        mass_iou: ``(L, J)`` IoU of the best head's 60 %-mass set with the main object.
        pca_auc: ``(L, J)`` AUC of the first principal component of the patch features (sign set per
            class), or ``None`` if not measured.
    """

    layers: list[int]
    auc: dict[str, np.ndarray]
    select_auc: dict[str, np.ndarray]
    on_main: np.ndarray
    on_distractors: np.ndarray
    mass_iou: np.ndarray
    pca_auc: np.ndarray | None = None

    def head(self, rule: str = "half") -> np.ndarray:
        """``(L,)``: per layer, the head with the highest mean AUC on the *selection* set."""
        return np.nanmean(self.select_auc[rule], axis=1).argmax(-1)

    def chosen(self, rule: str = "half") -> np.ndarray:
        """``(L, J)``: each image's AUC at its layer's chosen head."""
        h = self.head(rule)
        return np.take_along_axis(self.auc[rule], h[:, None, None], axis=2)[..., 0]

    def head_mean(self, rule: str = "half") -> np.ndarray:
        """``(L, J)``: each image's AUC averaged over the heads."""
        return self.auc[rule].mean(-1)

    def layer(self, index: int) -> int:
        """Position in :attr:`layers` of block ``index`` (negative counts from the last block)."""
        return self.layers.index(index % (max(self.layers) + 1))


def _aucs(maps: torch.Tensor, fraction: torch.Tensor) -> dict[str, np.ndarray]:
    """rule -> per-image, per-head AUC of ``maps`` ``(..., J, K, h, w)``."""
    return {rule: map_auc(maps, fraction, share).numpy() for rule, share in RULES.items()}


def score_maps_on(maps: torch.Tensor, select_maps: torch.Tensor, sets: ProbeSets,
                  layers: Sequence[int]) -> RunScores:
    """:class:`RunScores` of precomputed CLS maps: ``maps`` ``(L, J, K, h, w)`` of the measurement
    set and ``select_maps`` ``(L, J', K, h, w)`` of the selection set (any source of maps: a
    model, random maps, a pixel cue with K = 1)."""
    grid = tuple(maps.shape[-2:])
    frac, frac_select = _fractions(sets.measure, grid), _fractions(sets.select, grid)
    truths = list(sets.measure.instance_map == 1)
    return RunScores(
        layers=list(layers), auc=_aucs(maps, frac["main"]), select_auc=_aucs(select_maps, frac_select["main"]),
        on_main=attention_on(maps, frac["main"]).numpy(),
        on_distractors=attention_on(maps, frac["distractors"]).numpy(),
        mass_iou=np.stack([best_head_ious(maps[l], truths)[0] for l in range(len(maps))]))


def pca_aucs(features: torch.Tensor, grid: tuple[int, int], data: SyntheticData) -> np.ndarray:
    """``(J,)``: per image, the AUC of the first principal component of its patch features
    (``(J, N, D)``, one PCA per class as App. B.2) against its main-object patches (``half``).
    A principal direction's sign is arbitrary: it is set once per class, to the orientation with
    the higher AUC over all of that class's patches, so a per-image value below 0.5 stays visible.
    """
    _, _, pc1 = pca_by_group(features, grid, groups=data.labels)
    target = object_fraction(list(data.instance_map == 1), grid) >= RULES["half"]
    out = np.full(len(data), np.nan)
    for c in np.unique(data.labels):
        idx = torch.from_numpy(np.flatnonzero(data.labels == c))
        sign = 1.0 if float(roc_auc(pc1[idx].flatten(), target[idx].flatten())) >= 0.5 else -1.0
        out[idx.numpy()] = roc_auc((sign * pc1[idx]).flatten(-2), target[idx].flatten(-2)).numpy()
    return out


def score_model(model: torch.nn.Module, sets: ProbeSets, pca: bool = True, device: str | torch.device = "cpu",
                batch_size: int = 32) -> RunScores:
    """Every measure of the protocol, every layer, at the model's own resolution."""
    layers = list(range(num_layers(model)))
    maps = layer_maps(model, list(sets.measure.images), layers, device=device, batch_size=batch_size)
    select = layer_maps(model, list(sets.select.images), layers, device=device, batch_size=batch_size)
    scores = score_maps_on(maps, select, sets, layers)
    if pca:
        feats, grid = layer_features(model, list(sets.measure.images), layers, device=device,
                                     batch_size=batch_size)
        scores.pca_auc = np.stack([pca_aucs(f, grid, sets.measure) for f in feats])
    return scores


def baseline_scores(sets: ProbeSets, grid: tuple[int, int], heads: int, seed: int = 0) -> dict[str, RunScores]:
    """What nothing learned scores on the same images and metric: each pixel cue as a one-head,
    one-layer map, and ``heads`` random maps per image through the same head choice."""
    patch = sets.measure.config.image_size // grid[0]
    cues, cues_select = cue_maps(sets.measure.images, patch), cue_maps(sets.select.images, patch)
    out = {name: score_maps_on(cues[name][None, :, None], cues_select[name][None, :, None], sets, [0])
           for name in cues}
    out["random"] = score_maps_on(random_maps(len(sets.measure), heads, grid, seed)[None],
                                  random_maps(len(sets.select), heads, grid, seed + 1)[None], sets, [0])
    return out


def verdict(a: Sequence[float], b: Sequence[float], best_pixel: float, z: float = 2.0) -> dict:
    """The study's decision rule for "model A differs from model B" on one measure.

    Args:
        a, b: the measure of A and of B, one value per seed, seeds paired (A's seed s was trained on
            the same image stream as B's seed s).
        best_pixel: the best pixel baseline's value of the measure on the same images (``nan``: the
            measure has no pixel baseline, so the third condition cannot be checked and nothing is
            called real).
        z: how many standard deviations across seeds the mean difference must exceed.

    Returns:
        ``{"difference", "spread", "same_sign", "beyond_spread", "beat_pixels", "real", "seeds"}``:
        the mean difference A - B over seeds and its standard deviation across seeds, the three
        conditions (``beat_pixels`` None without a pixel baseline), and ``real`` (all three hold;
        never with fewer than 2 seeds, where the spread is unknown).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need one value per seed for both models, got shapes {a.shape} and {b.shape}")
    diff = a - b
    mean, spread = across_seeds(diff)
    same_sign = bool(np.all(diff > 0) or np.all(diff < 0))
    beyond = bool(len(diff) > 1 and abs(mean) > z * spread)
    beat = None if np.isnan(best_pixel) else bool(a.mean() > best_pixel and b.mean() > best_pixel)
    return {"difference": mean, "spread": spread, "same_sign": same_sign, "beyond_spread": beyond,
            "beat_pixels": beat, "real": bool(same_sign and beyond and beat), "seeds": len(diff)}


def primary_layer(name: str) -> int:
    """The pre-named layer of a study model: the last for the ViTs (``vit-*``), the penultimate
    for CRATE and its ablations (the paper's choice for all CRATE variants, Figs. 13-14)."""
    return PRIMARY_LAYER["vit"] if name.startswith("vit") else PRIMARY_LAYER["crate"]


def maskcut_ap50(model: torch.nn.Module, data: SyntheticData, folder: str | Path, layer: int) -> float:
    """MaskCut's class-agnostic detection AP50 (percent, no CRF) at ``layer`` on ``data``, whose
    COCO export (every class object, not the distractors) is written to ``folder``."""
    samples, gt = held_out_samples(data, folder)
    return layerwise_maskcut(model, samples, gt, [layer])[layer].ap["no_crf"]["det AP50"]


def summary_row(scores: RunScores, layer: int) -> dict:
    """The protocol's numbers at one layer, averaged over the measurement images (``nan`` images
    dropped): the chosen head's AUC for both rules (head numbered from 1), the mean over heads,
    the attention shares on the main object and on the distractors at the chosen head, the best
    head's 60 %-mass IoU and the first principal component's AUC."""
    i = scores.layer(layer)
    head = int(scores.head("half")[i])
    row = {"layer": scores.layers[i] + 1, "head": head + 1}
    for rule in RULES:
        row[f"auc_{rule}"] = float(np.nanmean(scores.chosen(rule)[i]))
        row[f"auc_{rule}_heads"] = float(np.nanmean(scores.head_mean(rule)[i]))
    row["on_main"] = float(np.nanmean(scores.on_main[i, :, head]))
    row["on_distractors"] = float(np.nanmean(scores.on_distractors[i, :, head]))
    row["mass_iou"] = float(np.nanmean(scores.mass_iou[i]))
    row["pca_auc"] = float(np.nanmean(scores.pca_auc[i])) if scores.pca_auc is not None else float("nan")
    return row


def flat_shares(data: SyntheticData) -> dict[str, float]:
    """What a flat map puts on the main object and on the distractors: their shares of the image."""
    return {"on_main": float((data.instance_map == 1).mean()), "on_distractors": float((data.distractor_map > 0).mean())}


# The comparisons the study was designed for, on the primary measure at the primary layers.
PAIRS: tuple[tuple[str, str], ...] = (("crate", "vit-cls"), ("crate", "vit-gap"))
PRIMARY_MEASURE = "auc_half"
RULES_PRIMARY = "half"  # the object-patch rule of the primary measure


@dataclass
class StudyModel:
    """One checkpoint of the study: model ``name`` (``crate``, ``vit-cls``, ...), training
    ``seed``, ``stage`` (``final``; ``equal_acc``: when validation accuracy first reached the
    recipe's 80 %; ``init``: before training) and the loaded module."""

    name: str
    seed: int
    stage: str
    model: torch.nn.Module


@dataclass
class StudyResult:
    """Everything :func:`run_study` measured.

    Attributes:
        rows: one dict per model checkpoint and layer (``name, seed, stage, layer, primary`` and the
            :func:`summary_row` measures), then one per pixel cue and for random maps
            (``stage="baseline"``).
        scores: ``(name, seed, stage) -> RunScores``.
        verdicts: one dict per stage and pair of :data:`PAIRS` (:func:`verdict` on the primary
            measure, plus each seed's paired per-image difference and its standard error).
        maps: ``(name, seed, stage) -> (J', h, w)`` the chosen head's maps at the primary layer on
            the first measurement images, for figures.
    """

    rows: list[dict]
    scores: dict[tuple[str, int, str], RunScores]
    verdicts: list[dict]
    maps: dict[tuple[str, int, str], torch.Tensor]

    def primary(self) -> list[dict]:
        """The rows at each model's primary layer, and the baselines."""
        return [r for r in self.rows if r["primary"]]


# Bump when a measure's definition or the probe sets change: it keys the measurement cache, so a
# cached measurement is never read back under a protocol it was not made with.
PROTOCOL_VERSION = 1


@dataclass
class CheckpointMeasure:
    """Everything the protocol measures on one checkpoint: its rows (one per layer, the
    :func:`summary_row` measures), its :class:`RunScores` and the chosen head's maps at the
    primary layer ``(J', h, w)`` on the first measurement images."""

    rows: list[dict]
    scores: RunScores
    maps: torch.Tensor


def measure_checkpoint(m: StudyModel, sets: ProbeSets, pca: bool = True, maskcut_folder: str | Path | None = None,
                       num_maps: int = 6, device: str | torch.device = "cpu") -> CheckpointMeasure:
    """The protocol on one checkpoint (arguments as :func:`run_study`)."""
    s = score_model(m.model, sets, pca=pca, device=device)
    primary = s.layer(primary_layer(m.name))
    rows = []
    for i in range(len(s.layers)):
        row = {"name": m.name, "seed": m.seed, "stage": m.stage, "primary": i == primary, **summary_row(s, s.layers[i])}
        if maskcut_folder is not None and i == primary:
            row["maskcut_ap50"] = maskcut_ap50(m.model, sets.measure, maskcut_folder, s.layers[i])
        rows.append(row)
    head = int(s.head(RULES_PRIMARY)[primary])
    maps = layer_maps(m.model, list(sets.measure.images[:num_maps]), [s.layers[primary]], device=device)[0][:, head]
    return CheckpointMeasure(rows, s, maps)


_SCORE_ARRAYS = ("on_main", "on_distractors", "mass_iou", "pca_auc")


def _to_entry(measure: CheckpointMeasure) -> dict:
    """A cache entry of plain containers and float32 tensors (loadable with ``weights_only=True``)."""
    s = measure.scores
    tensor = lambda a: None if a is None else torch.from_numpy(np.asarray(a, np.float32))
    return {"rows": measure.rows, "layers": s.layers, "maps": measure.maps.float(),
            "auc": {k: tensor(v) for k, v in s.auc.items()},
            "select_auc": {k: tensor(v) for k, v in s.select_auc.items()},
            **{k: tensor(getattr(s, k)) for k in _SCORE_ARRAYS}}


def _from_entry(entry: dict) -> CheckpointMeasure:
    array = lambda t: None if t is None else t.double().numpy()
    scores = RunScores(layers=list(entry["layers"]), auc={k: array(v) for k, v in entry["auc"].items()},
                       select_auc={k: array(v) for k, v in entry["select_auc"].items()},
                       **{k: array(entry[k]) for k in _SCORE_ARRAYS})
    return CheckpointMeasure(list(entry["rows"]), scores, entry["maps"])


def measurement_path(m: StudyModel, sets: ProbeSets, pca: bool, maskcut: bool, num_maps: int,
                     cache_dir: str | Path) -> Path:
    """Where the measurement of ``m`` is cached: keyed by the weights, both probe sets' data configs,
    the options and :data:`PROTOCOL_VERSION`."""
    key = cache_key(protocol=PROTOCOL_VERSION, weights=state_dict_sha256(m.model), name=m.name,
                    select=sets.select.config.cache_key(), measure=sets.measure.config.cache_key(),
                    pca=pca, maskcut=maskcut, num_maps=num_maps)
    return Path(cache_dir) / f"{m.name}-s{m.seed}-{m.stage}-{key}.pt"


def run_study(models: Sequence[StudyModel], sets: ProbeSets, pca: bool = True, maskcut_folder: str | Path | None = None,
              num_maps: int = 6, device: str | torch.device = "cpu", cache_dir: str | Path | None = None
              ) -> StudyResult:
    """The protocol on every checkpoint, the baselines, and the verdicts of :data:`PAIRS`.

    Args:
        models: the checkpoints (all trained on the data of ``sets``).
        sets: selection and measurement images (:func:`probe_sets`).
        pca: also measure the first principal component (slower).
        maskcut_folder: where to export the measurement set as COCO for MaskCut's AP50 at the
            primary layer (``None``: skip MaskCut).
        num_maps: how many images' maps to keep for figures.
        device: where the models run.
        cache_dir: read each checkpoint's measurement from here when it was made with the same
            weights, images, options and protocol version (:func:`measurement_path`), else measure
            it and write it there atomically (``None``: always measure, write nothing).
    """
    rows, scores, maps = [], {}, {}
    for m in models:
        key = (m.name, m.seed, m.stage)
        if cache_dir is None:
            measure = measure_checkpoint(m, sets, pca, maskcut_folder, num_maps, device)
        else:
            path = measurement_path(m, sets, pca, maskcut_folder is not None, num_maps, cache_dir)
            entry, _ = cached(path, lambda: _to_entry(measure_checkpoint(m, sets, pca, maskcut_folder, num_maps, device)),
                              weights_only=True)
            measure = _from_entry(entry)
        rows += measure.rows
        scores[key], maps[key] = measure.scores, measure.maps
    heads = max((s.auc["half"].shape[-1] for s in scores.values()), default=1)
    grid = tuple(next(iter(maps.values())).shape[-2:]) if maps else (8, 8)
    for name, s in baseline_scores(sets, grid, heads).items():
        rows.append({"name": name, "seed": -1, "stage": "baseline", "primary": True, **summary_row(s, 0)})
    return StudyResult(rows, scores, study_verdicts(rows, scores), maps)


def per_image(scores: RunScores, measure: str, index: int) -> np.ndarray | None:
    """``(J,)`` the per-image values behind ``measure`` (a :func:`summary_row` key) at position
    ``index`` of ``scores.layers``; ``None`` for a measure with no per-image value (MaskCut's AP)."""
    rule = measure.split("_")[1] if measure.startswith("auc_") else None
    if rule is not None:
        return (scores.head_mean(rule) if measure.endswith("_heads") else scores.chosen(rule))[index]
    if measure in ("on_main", "on_distractors"):
        return getattr(scores, measure)[index, :, int(scores.head(RULES_PRIMARY)[index])]
    if measure == "mass_iou":
        return scores.mass_iou[index]
    if measure == "pca_auc" and scores.pca_auc is not None:
        return scores.pca_auc[index]
    return None


def study_verdicts(rows: Sequence[dict], scores: Mapping[tuple[str, int, str], RunScores],
                   measure: str = PRIMARY_MEASURE, pairs: Sequence[tuple[str, str]] = PAIRS) -> list[dict]:
    """:func:`verdict` on ``measure`` at the primary layers, for every pair of ``pairs`` (default:
    the pre-named :data:`PAIRS`) and stage with at least one seed of both models. The best pixel
    cue is taken on the same measure (``nan`` where the cues do not have it: PCA, MaskCut). Each
    seed's paired per-image difference and standard error are added where the measure has
    per-image values."""
    best_pixel = max((r[measure] for r in rows if r["stage"] == "baseline" and r["name"] != "random"
                      and np.isfinite(r.get(measure, np.nan))), default=float("nan"))
    primary = {(r["name"], r["seed"], r["stage"]): r for r in rows if r["primary"] and r["stage"] != "baseline"}
    out = []
    for stage in sorted({k[2] for k in primary}):
        for a, b in pairs:
            seeds = sorted({k[1] for k in primary if k[0] == a and k[2] == stage}
                           & {k[1] for k in primary if k[0] == b and k[2] == stage})
            if not seeds:
                continue
            va = [primary[(a, s, stage)].get(measure, np.nan) for s in seeds]
            vb = [primary[(b, s, stage)].get(measure, np.nan) for s in seeds]
            per_seed = []
            for s in seeds:
                sa, sb = scores[(a, s, stage)], scores[(b, s, stage)]
                ia, ib = per_image(sa, measure, sa.layer(primary_layer(a))), per_image(sb, measure, sb.layer(primary_layer(b)))
                diff, se = paired(ia, ib) if ia is not None and ib is not None else (va[seeds.index(s)] - vb[seeds.index(s)], np.nan)
                per_seed.append({"seed": s, "difference": diff, "se": se})
            out.append({"stage": stage, "a": a, "b": b, "measure": measure, "best_pixel": best_pixel,
                        **verdict(va, vb, best_pixel), "per_seed": per_seed})
    return out


def seed_summary(rows: Sequence[dict], measure: str = PRIMARY_MEASURE, stage: str = "final") -> list[dict]:
    """Per model at ``stage``, ``measure`` at its primary layer across seeds: ``name``, ``seeds``,
    ``mean``, ``spread`` (standard deviation across seeds, ``nan`` for one seed), ``min``, ``max``;
    then the baselines (``seeds`` 0) that have the measure. In the order of ``rows``; a model
    without the measure (``nan``: not measured) is left out."""
    out = []
    models = dict.fromkeys(r["name"] for r in rows if r["primary"] and r["stage"] == stage)
    for name in models:
        values = [r[measure] for r in rows if r["primary"] and r["stage"] == stage and r["name"] == name
                  and np.isfinite(r.get(measure, np.nan))]
        if not values:
            continue
        mean, spread = across_seeds(values)
        out.append({"name": name, "seeds": len(values), "mean": mean, "spread": spread,
                    "min": float(np.min(values)), "max": float(np.max(values))})
    for r in rows:
        if r["stage"] == "baseline" and np.isfinite(r.get(measure, np.nan)):
            v = float(r[measure])
            out.append({"name": r["name"], "seeds": 0, "mean": v, "spread": float("nan"), "min": v, "max": v})
    return out


def summary_by_name(rows: Sequence[dict], measure: str = PRIMARY_MEASURE, stage: str = "final",
                    trained_only: bool = False) -> dict[str, dict]:
    """:func:`seed_summary` keyed by ``name``; ``trained_only`` leaves the baselines out."""
    return {r["name"]: r for r in seed_summary(rows, measure, stage) if r["seeds"] > 0 or not trained_only}


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
