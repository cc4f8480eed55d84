"""The catalogue of the book's study models: one entry per model that the emergence study trains,
measures, draws and names, read by training (:mod:`cratelib.train.study`), measurement
(:mod:`cratelib.eval.study`), figures and chapters alike.

Every entry is a family of the registry (:data:`cratelib.models.registry.FAMILIES`) plus the few
settings that make it a study model (the ViT's pooling), with how the book names and draws it, the
row of the paper's Table 2 it is read against, the map the protocol measures, and the comparisons
it adds to the study. Three groups: the *primary* comparison (CRATE and the two ViTs, Part 2), the
*ablations* of Table 2 (Part 2), and the later white-box *family* (CRATE-α, ToST, CRATE-MAE, Part 3),
each read against CRATE.

**Adding a model family to the study** is one entry here (a registered family, its label, colour
and map); ``train-study --only <name>`` then trains it with the study's recipe and
``python -m cratelib study`` measures it with the others.

Layer indices are 0-based everywhere in the code (negative counts from the last block); tables and
figures show them 1-based.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

__all__ = ["StudyEntry", "CATALOGUE", "PRIMARY_MODELS", "PART2_MODELS", "STUDY_PAIRS", "TABLE2_ORDER", "names",
           "pairs_of", "entry", "label", "primary_layer", "model_primary_layer", "run_name", "split_run_name"]

Group = Literal["primary", "ablation", "family"]


@dataclass(frozen=True)
class StudyEntry:
    """One model of the study.

    Attributes:
        name: the study's name of the model (run folders ``<name>-s<seed>``).
        family: its registry family (the nano size at patch 8 is trained).
        overrides: recipe settings beyond the family (``"model_args.pool"``...).
        label: how tables and figures name it.
        attn, block: its two sub-blocks, as the paper names them.
        paper_row: key of :data:`cratelib.eval.reference.TABLE2_ABLATION` it is read against (None:
            not in Table 2).
        color: its colour in every figure.
        group: ``"primary"`` (CRATE and the ViTs), ``"ablation"`` (Table 2's variants) or
            ``"family"`` (Part 3's later white-box models).
        primary_from_end: the pre-named layer, counted from the last block (1: the last, 2: the
            penultimate); the paper measures CRATE and its variants at the penultimate layer
            (Figs. 13-14) and a ViT at its last; Part 3's models are measured where CRATE is.
        preset: the training preset of its recipe (``study``; ``study-mae`` for masked autoencoding).
        pairs: the comparisons ``(A, B)`` this model adds to the study, each read by the decision
            rule as "A minus B" (:func:`cratelib.eval.study.verdicts.study_verdicts`).
    """

    name: str
    family: str
    label: str
    attn: str
    block: str
    paper_row: str | None
    color: str
    group: Group
    primary_from_end: int = 2
    overrides: dict = field(default_factory=dict)
    preset: str = "study"
    pairs: tuple[tuple[str, str], ...] = ()

    @property
    def model(self) -> str:
        """The registered model name the study trains (the book's CPU size, patch 8)."""
        return f"{self.family}_nano_patch8"


CATALOGUE: dict[str, StudyEntry] = {e.name: e for e in (
    StudyEntry("crate", "crate", "CRATE", "MSSA", "ISTA", "CRATE (MSSA+ISTA)", "tab:blue", "primary"),
    StudyEntry("vit-cls", "vit", "ViT-CLS", "MHSA", "MLP", "ViT (MHSA+MLP)", "tab:red", "primary", primary_from_end=1,
               pairs=(("crate", "vit-cls"),)),
    StudyEntry("vit-gap", "vit", "ViT-GAP", "MHSA", "MLP", "ViT (MHSA+MLP)", "tab:brown", "primary", primary_from_end=1,
               overrides={"model_args.pool": "mean"},  # the official ViT baseline's pooling
               pairs=(("crate", "vit-gap"),)),
    # Table 2 orders CRATE > CRATE-MLP > CRATE-MHSA > ViT: every step of that order is a pair.
    StudyEntry("crate-mlp", "crate_mlp", "CRATE-MLP", "MSSA", "MLP", "CRATE-MLP (MSSA+MLP)", "tab:green", "ablation",
               pairs=(("crate", "crate-mlp"), ("crate-mlp", "vit-cls"))),
    StudyEntry("crate-mhsa", "crate_mhsa", "CRATE-MHSA", "MHSA", "ISTA", "CRATE-MHSA (MHSA+ISTA)", "tab:purple",
               "ablation", pairs=(("crate", "crate-mhsa"), ("crate-mlp", "crate-mhsa"), ("crate-mhsa", "vit-cls"))),
    StudyEntry("crate-sth", "crate_sth", "CRATE-sth", "MSSA", "ISTA, soft threshold", None, "tab:orange", "ablation",
               pairs=(("crate-sth", "crate"),)),
    # Part 3. ToST's map is the membership Pi of the patches (no [CLS] attention; see cratelib.eval.study).
    StudyEntry("crate-alpha", "crate_alpha", "CRATE-α", "MSSA", "ODL", None, "tab:cyan", "family",
               pairs=(("crate-alpha", "crate"),)),
    StudyEntry("tost", "tost", "ToST", "TSSA", "ISTA", None, "tab:olive", "family", pairs=(("tost", "crate"),)),
    StudyEntry("crate-mae", "crate_mae", "CRATE-MAE", "MSSA", "ISTA", None, "tab:pink", "family", preset="study-mae",
               pairs=(("crate-mae", "crate"),)),
)}


def names(*groups: Group) -> tuple[str, ...]:
    """The study models of ``groups`` (all when none is given), in the catalogue's order."""
    return tuple(n for n, e in CATALOGUE.items() if not groups or e.group in groups)


def pairs_of(models: Sequence[str] | None = None) -> tuple[tuple[str, str], ...]:
    """The catalogue's comparisons between ``models`` (default: all), in the catalogue's order."""
    keep = set(CATALOGUE if models is None else models)
    return tuple(p for e in CATALOGUE.values() for p in e.pairs if set(p) <= keep)


PRIMARY_MODELS = names("primary")  # the study's primary comparison (>= 3 seeds each)
PART2_MODELS = names("primary", "ablation")  # the seed paper's study: the primary models and Table 2's ablations
STUDY_PAIRS = pairs_of()  # every comparison the study makes
TABLE2_ORDER = ("crate", "crate-mlp", "crate-mhsa", "vit-cls")  # Table 2's order, best first (its ViT: ViT-CLS)


def entry(name: str) -> StudyEntry:
    """The catalogue entry of study model ``name``."""
    if name not in CATALOGUE:
        raise ValueError(f"unknown study model {name!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def label(name: str) -> str:
    """How tables and figures name study model ``name`` (other names, e.g. a pixel cue, as they are)."""
    return CATALOGUE[name].label if name in CATALOGUE else name


def primary_layer(name: str, depth: int | None = None) -> int:
    """The pre-named layer of study model ``name`` (or of a model of a catalogued registry family,
    e.g. ``"vit"`` or ``"crate-mlp"``): 0-based when ``depth`` is given, else counted from the end
    (``-1`` the last block, ``-2`` the penultimate)."""
    family = name.replace("-", "_")
    found = CATALOGUE.get(name) or next((e for e in CATALOGUE.values() if e.family == family), None)
    if found is None:
        raise ValueError(f"no primary layer for {name!r}: neither a study model ({', '.join(CATALOGUE)}) nor a "
                         f"model of their families")
    return -found.primary_from_end if depth is None else depth - found.primary_from_end


def model_primary_layer(model) -> int:
    """The pre-named layer of any loaded model, counted from the end: ``-1`` for a ViT (a timm model,
    or a registry model with MHSA and an MLP), ``-2`` for CRATE and its variants, as the paper
    measures them (Figs. 13-14), and for Part 3's white-box models (a CRATE-MAE: its encoder's)."""
    config = getattr(model, "config", None)
    if hasattr(config, "blocks"):  # a CRATE-MAE (or the standard MAE of its skeleton): its encoder's blocks
        return -1 if config.blocks == "vit" else -2
    vit = not hasattr(config, "attn") or (config.attn == "mhsa" and config.mlp == "mlp")
    return -1 if vit else -2


def run_name(model: str, seed: int) -> str:
    """The name of study model ``model``'s run with training ``seed``: ``<model>-s<seed>``."""
    return f"{model}-s{seed}"


def split_run_name(run: str) -> tuple[str, int] | None:
    """Inverse of :func:`run_name`: ``(model, seed)``, or ``None`` for a name that is not a study
    model's run."""
    name, _, seed = run.rpartition("-s")
    return (name, int(seed)) if name in CATALOGUE and seed.isdigit() else None
