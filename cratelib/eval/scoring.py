"""One scorer for maps against known objects: every map measure, one result type.

A map is anything with a value per patch: a head's [CLS] attention (eqs. 10-11), a pixel cue, a
random map, a ToST membership. :func:`score_maps` scores a stack of them, ``(L, J, K, h, w)``
(layers, images, heads, patch grid), against :class:`Targets` (the objects' masks) with every
measure of :data:`MEASURES` that the targets allow, and returns one :class:`Scores`.

**Adding a measure** is one function and one line: write ``fn(maps, targets) -> array`` returning
``(L, J, K)`` (per head) or ``(L, J)`` (per image), or ``None`` when the targets lack what it needs,
and add ``"name": Measure(fn)`` to :data:`MEASURES`. :class:`Scores`, the study's rows and table
(:func:`summary_row`), its per-image statistics and its measurement cache read every measure by
name, so nothing else changes.

**Head choice.** A head-resolved measure is reported at one head per layer, chosen where the
``select`` maps (a separate set of images) score best on the same measure, or on
:data:`HEAD_MEASURE` for measures not scored there; never a best head per image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from cratelib.eval.localisation import attention_on, best_head_ious, map_auc, object_fraction
from cratelib.eval.segmentation import coarse_segmentation

__all__ = ["RULES", "HEAD_MEASURE", "Targets", "Measure", "MEASURES", "Scores", "score_maps", "summary_row"]

# Object patches: at least half of the patch on the object, or any object pixel.
RULES: dict[str, float] = {"half": 0.5, "any": 1e-9}
HEAD_MEASURE = "auc_half"  # the measure that chooses a layer's head (the study's primary measure)


@dataclass
class Targets:
    """What maps on an ``(h, w)`` patch grid are scored against, for J images.

    Attributes:
        main: ``(J, h, w)`` share of each patch's pixels on the main object.
        truths: J ``(H, W)`` bool pixel masks of the main object.
        distractors: ``(J, h, w)`` share of each patch on distractor objects, or ``None``.
        labels: J ``(H, W)`` semantic label maps (0 background) for eq. 14, or ``None``.
    """

    main: torch.Tensor
    truths: list[np.ndarray]
    distractors: torch.Tensor | None = None
    labels: list[np.ndarray] | None = None

    @classmethod
    def from_masks(cls, truths: Sequence[np.ndarray], grid: tuple[int, int],
                   distractors: Sequence[np.ndarray] | None = None,
                   labels: Sequence[np.ndarray] | None = None) -> "Targets":
        """Targets from J ``(H, W)`` bool object masks (and optional distractor masks and label maps)."""
        truths = [np.asarray(t, bool) for t in truths]
        return cls(object_fraction(truths, grid), truths,
                   None if distractors is None else object_fraction([np.asarray(d, bool) for d in distractors], grid),
                   None if labels is None else [np.asarray(x, np.int64) for x in labels])

    @classmethod
    def of_scenes(cls, data, grid: tuple[int, int]) -> "Targets":
        """Targets of generated scenes (:class:`cratelib.data.SyntheticData`): the main object is
        instance 1, the distractors are the blobs of ``distractor_map``."""
        return cls.from_masks(list(data.instance_map == 1), grid, distractors=list(data.distractor_map > 0))


@dataclass(frozen=True)
class Measure:
    """A map measure: ``fn(maps (L, J, K, h, w), targets) -> (L, J, K) | (L, J) | None``.
    ``own_head``: a head-resolved measure that chooses its own head on the selection images (the
    others are reported at the head of :data:`HEAD_MEASURE`) and whose mean over heads the rows
    report too (``<name>_heads``)."""

    fn: Callable[[torch.Tensor, Targets], np.ndarray | None]
    own_head: bool = False


def _auc(rule: str) -> Callable[[torch.Tensor, Targets], np.ndarray]:
    """Per-image, per-head ROC AUC of the map against the main object's patches under ``rule``."""
    return lambda maps, t: map_auc(maps, t.main, RULES[rule]).numpy()


def _mass_iou(maps: torch.Tensor, t: Targets) -> np.ndarray:
    """``(L, J)``: IoU of the best head's 60 %-mass set with the main object (DINO's display)."""
    return np.stack([best_head_ious(maps[layer], t.truths)[0] for layer in range(len(maps))])


def _miou(maps: torch.Tensor, t: Targets) -> np.ndarray | None:
    """``(L, J)``: the paper's eq. 14 (top 60 % entries, best head per class), with label maps."""
    if t.labels is None:
        return None
    seg = coarse_segmentation(maps, t.labels)
    return np.stack([seg.per_image[layer] for layer in range(len(maps))])


MEASURES: dict[str, Measure] = {
    "auc_half": Measure(_auc("half"), own_head=True),
    "auc_any": Measure(_auc("any"), own_head=True),
    "on_main": Measure(lambda maps, t: attention_on(maps, t.main).numpy()),
    "on_distractors": Measure(lambda maps, t: None if t.distractors is None
                              else attention_on(maps, t.distractors).numpy()),
    "mass_iou": Measure(_mass_iou),
    "miou": Measure(_miou),
}


@dataclass
class Scores:
    """Every measure of a stack of maps, per layer ``l`` (index into ``layers``), image ``j`` and,
    for head-resolved measures, head ``k``.

    Attributes:
        layers: the block indices the maps came from (0-based).
        values: measure -> ``(L, J, K)`` or ``(L, J)`` on the scored images.
        select: measure -> ``(L, J', K)`` the head-resolved measures on the selection images (empty:
            heads are chosen on the scored images themselves).
    """

    layers: list[int]
    values: dict[str, np.ndarray]
    select: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, measure: str) -> np.ndarray:
        if measure not in self.values:
            raise KeyError(f"measure {measure!r} was not scored; scored: {sorted(self.values)}")
        return self.values[measure]

    def head(self, measure: str = HEAD_MEASURE) -> np.ndarray:
        """``(L,)``: per layer, the head with the highest mean of ``measure`` on the selection images
        (on the scored images when there are none) if it chooses its own head, else the head of
        :data:`HEAD_MEASURE`."""
        key = measure if measure in MEASURES and MEASURES[measure].own_head else HEAD_MEASURE
        return np.nanmean((self.select or self.values)[key], axis=1).argmax(-1)

    def chosen(self, measure: str = HEAD_MEASURE) -> np.ndarray:
        """``(L, J)``: a head-resolved measure at each layer's chosen head (:meth:`head`); a
        per-image measure as it is."""
        values = self[measure]
        if values.ndim == 2:
            return values
        return np.take_along_axis(values, self.head(measure)[:, None, None], axis=2)[..., 0]

    def head_mean(self, measure: str = HEAD_MEASURE) -> np.ndarray:
        """``(L, J)``: a head-resolved measure averaged over the heads."""
        values = self[measure]
        return values.mean(-1) if values.ndim == 3 else values

    def layer(self, index: int) -> int:
        """Position in :attr:`layers` of block ``index`` (negative counts from the last block)."""
        return self.layers.index(index % (max(self.layers) + 1))

    def per_image(self, column: str, index: int) -> np.ndarray | None:
        """``(J,)`` the per-image values behind a :func:`summary_row` column at position ``index``
        of :attr:`layers` (``<measure>_heads``: the mean over heads); ``None`` for a column with no
        per-image value (e.g. MaskCut's AP)."""
        measure, heads = (column[:-6], True) if column.endswith("_heads") else (column, False)
        if measure not in self.values:
            return None
        return (self.head_mean(measure) if heads else self.chosen(measure))[index]


def _stored(values: np.ndarray) -> np.ndarray:
    """Measures are kept in float32, the precision they are cached in, so that a measurement read
    back from the cache and a fresh one give the same numbers."""
    return np.asarray(values, np.float32)


def score_maps(maps: torch.Tensor, targets: Targets, layers: Sequence[int] | None = None,
               select_maps: torch.Tensor | None = None, select_targets: Targets | None = None,
               measures: Sequence[str] | None = None) -> Scores:
    """Score ``maps`` ``(L, J, K, h, w)`` against ``targets`` with ``measures`` (default: every
    measure of :data:`MEASURES` the targets allow).

    Args:
        maps: the maps of L layers (``layers``, default ``0 .. L-1``), J images, K heads.
        targets: the objects of the J images on the maps' grid (:class:`Targets`).
        layers: the block index of each of the L layers.
        select_maps, select_targets: the same layers on separate selection images, where each
            layer's head is chosen (``None``: chosen on ``maps`` themselves).
        measures: names of :data:`MEASURES` to score.
    """
    if maps.dim() != 5:
        raise ValueError(f"maps must be (L, J, K, h, w), got shape {tuple(maps.shape)}")
    if len(targets.truths) != maps.shape[1]:
        raise ValueError(f"{maps.shape[1]} images of maps but {len(targets.truths)} targets")
    unknown = sorted(set(measures or ()) - set(MEASURES))
    if unknown:
        raise ValueError(f"unknown measures {unknown}; known: {list(MEASURES)}")
    names = list(measures or MEASURES)
    values = {n: _stored(v) for n in names if (v := MEASURES[n].fn(maps, targets)) is not None}
    select = {}
    if select_maps is not None:
        select = {n: _stored(MEASURES[n].fn(select_maps, select_targets)) for n in names
                  if MEASURES[n].own_head and n in values}
    return Scores(list(range(len(maps))) if layers is None else list(layers), values, select)


def _mean(values: np.ndarray) -> float:
    """The mean over images without ``nan``: summed in float64 (the same number whatever the
    array's layout), reported at the float32 precision of the measures themselves."""
    return float(np.float32(np.nanmean(np.asarray(values, np.float64))))


def summary_row(scores: Scores, layer: int, columns: Sequence[str] | None = None) -> dict:
    """The numbers at one block ``layer``, averaged over the images (``nan`` images dropped):
    ``layer`` and ``head`` (numbered from 1; the head chosen by :data:`HEAD_MEASURE`), then each
    measure at its chosen head (``<name>_heads`` beside it: the mean over heads, for the measures
    that choose their own head), in the order of ``columns`` (default: as scored); a column not scored is
    ``nan``."""
    i = scores.layer(layer)
    row = {"layer": scores.layers[i] + 1, "head": int(scores.head()[i]) + 1}
    for name in columns or scores.values:
        if name not in scores.values:
            row[name] = float("nan")
            continue
        row[name] = _mean(scores.chosen(name)[i])
        if name in MEASURES and MEASURES[name].own_head:
            row[f"{name}_heads"] = _mean(scores.head_mean(name)[i])
    return row
