"""One checkpoint's measurement under the study's protocol, and its cache on disk.

A measurement is cached under a key of the weights, both probe sets' data configs, the options and
the protocol version, as plain containers and float32 tensors (loadable with ``weights_only=True``),
every measure of :class:`cratelib.eval.scoring.Scores` by name: a new measure needs no change here.
The book reads the shipped ones (``data/study/measurements``) instead of measuring again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cratelib.eval.cache import cache_key, cached, state_dict_sha256
from cratelib.eval.scoring import Scores

__all__ = ["CheckpointMeasure", "cache_path", "cached_measurement"]


@dataclass
class CheckpointMeasure:
    """Everything the protocol measures on one checkpoint: its rows (one per layer,
    :func:`cratelib.eval.scoring.summary_row`), its :class:`Scores` and the chosen head's maps at
    the primary layer ``(J', h, w)`` on the first measurement images."""

    rows: list[dict]
    scores: Scores
    maps: torch.Tensor


def _to_entry(measure: CheckpointMeasure) -> dict:
    tensors = lambda d: {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in d.items()}
    s = measure.scores
    return {"rows": measure.rows, "layers": s.layers, "maps": measure.maps.float(), "values": tensors(s.values),
            "select": tensors(s.select)}


def _from_entry(entry: dict) -> CheckpointMeasure:
    arrays = lambda d: {k: v.numpy() for k, v in d.items()}
    return CheckpointMeasure(list(entry["rows"]), Scores(list(entry["layers"]), arrays(entry["values"]),
                                                         arrays(entry["select"])), entry["maps"])


def cache_path(name: str, seed: int, stage: str, model: torch.nn.Module, select_key: str, measure_key: str,
                     protocol: int, cache_dir: str | Path, **options) -> Path:
    """Where the measurement of checkpoint ``(name, seed, stage)`` is cached: keyed by its weights,
    the probe sets' data-config keys, the ``protocol`` version and the measuring ``options``."""
    key = cache_key(protocol=protocol, weights=state_dict_sha256(model), name=name, select=select_key,
                    measure=measure_key, **options)
    return Path(cache_dir) / f"{name}-s{seed}-{stage}-{key}.pt"


def cached_measurement(path: Path, measure: Callable[[], CheckpointMeasure]) -> CheckpointMeasure:
    """The measurement cached at ``path``, or ``measure()`` written there atomically."""
    entry, _ = cached(path, lambda: _to_entry(measure()), weights_only=True)
    return _from_entry(entry)
