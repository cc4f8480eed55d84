"""The study's statistics across seeds, its decision rule, and the sentences that state them
(the same words in the command line and the book)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from cratelib.eval.scoring import Scores
from cratelib.eval.stats import across_seeds, paired
from cratelib.models.catalogue import PRIMARY_MODELS, label, pairs_of, primary_layer, split_run_name

__all__ = ["PAIRS", "PRIMARY_MEASURE", "verdict", "best_pixel_cue", "study_verdicts", "seed_summary",
           "summary_by_name", "verdict_lines", "order_support", "order_lines", "first_epoch_at",
           "accuracy_bar_note", "peak_to_final"]

# The comparisons the study was designed for, on the primary measure at the primary layers: CRATE minus
# each ViT (every other model's comparisons: cratelib.models.catalogue.STUDY_PAIRS).
PAIRS: tuple[tuple[str, str], ...] = pairs_of(PRIMARY_MODELS)
PRIMARY_MEASURE = "auc_half"


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


def best_pixel_cue(rows: Sequence[dict], measure: str) -> tuple[str | None, float]:
    """``(name, value)`` of the best pixel cue on ``measure`` among the baseline rows (random maps
    are no pixel cue); ``(None, nan)`` where no cue has the measure."""
    cues = {r["name"]: r[measure] for r in rows if r["stage"] == "baseline" and r["name"] != "random"
            and np.isfinite(r.get(measure, np.nan))}
    best = max(cues, key=cues.get, default=None)
    return best, (float(cues[best]) if best is not None else float("nan"))


def study_verdicts(rows: Sequence[dict], scores: Mapping[tuple[str, int, str], Scores],
                   measure: str = PRIMARY_MEASURE, pairs: Sequence[tuple[str, str]] = PAIRS) -> list[dict]:
    """:func:`verdict` on ``measure`` at the primary layers, for every pair of ``pairs`` (default:
    the pre-named :data:`PAIRS`) and stage with at least one seed of both models. The best pixel
    cue is taken on the same measure (``nan`` where the cues do not have it: PCA, MaskCut). Each
    seed's paired per-image difference and standard error are added where the measure has
    per-image values."""
    best_pixel = best_pixel_cue(rows, measure)[1]
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
            for s, x, y in zip(seeds, va, vb):
                sa, sb = scores[(a, s, stage)], scores[(b, s, stage)]
                ia = sa.per_image(measure, sa.layer(primary_layer(a)))
                ib = sb.per_image(measure, sb.layer(primary_layer(b)))
                diff, se = paired(ia, ib) if ia is not None and ib is not None else (x - y, np.nan)
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


def verdict_lines(verdicts: Sequence[dict], empty: str = "No pair of the study has a seed shipped for both models "
                  "yet.") -> str:
    """Markdown bullets, one per verdict of :func:`study_verdicts`: the mean difference over seeds,
    its spread, the best pixel cue, and "real" or which of the rule's conditions is missing. The
    command line prints the same lines."""
    lines = []
    for v in verdicts:
        checks = (("the same sign in every seed", v["same_sign"]), ("a difference beyond two spreads", v["beyond_spread"]),
                  ("both models above the best pixel cue" if v["beat_pixels"] is not None
                   else "a pixel baseline for this measure", v["beat_pixels"]))
        missing = [name for name, ok in checks if not ok]
        seeds = f"{v['seeds']} seed{'s' * (v['seeds'] > 1)}"
        pixel = f"best pixel cue {v['best_pixel']:.3f}" if np.isfinite(v["best_pixel"]) else "no pixel cue"
        spread = f"spread {v['spread']:.3f}" if np.isfinite(v["spread"]) else "no spread from one seed"
        lines.append(f"* **{v['stage']}**, {v['a']} minus {v['b']} on {v['measure']}: {v['difference']:+.3f} "
                     f"over {seeds} ({spread}; {pixel}): "
                     + ("**real**." if v["real"] else "not established (missing: " + "; ".join(missing) + ")."))
    return "\n".join(lines) or empty


def order_support(verdicts: Sequence[dict], order: Sequence[str], stage: str = "final") -> list[dict]:
    """What the rule says of each step of an ordering ``order`` (best first, e.g. Table 2's
    ``("crate", "crate-mlp", "crate-mhsa", "vit-cls")``) at ``stage``: for each adjacent ``(a, b)``,
    the verdict on that pair from ``verdicts`` (:func:`study_verdicts`; a verdict on ``(b, a)`` is
    read with its sign flipped).

    Returns:
        One dict per step: ``a``, ``b``, ``difference`` (mean ``a - b`` over seeds; ``nan`` without a
        verdict), ``spread``, ``seeds`` (0: no verdict on the pair) and ``status``: ``"supported"``
        (real, ``a`` ahead), ``"reversed"`` (real, ``b`` ahead) or ``"not established"``.
    """
    found = {(v["a"], v["b"]): v for v in verdicts if v["stage"] == stage}
    out = []
    for a, b in zip(order, order[1:]):
        v, sign = (found[(a, b)], 1.0) if (a, b) in found else (found.get((b, a)), -1.0)
        if v is None:
            out.append({"a": a, "b": b, "difference": float("nan"), "spread": float("nan"), "seeds": 0,
                        "status": "not established"})
            continue
        diff = sign * v["difference"]
        status = ("supported" if diff > 0 else "reversed") if v["real"] else "not established"
        out.append({"a": a, "b": b, "difference": diff, "spread": v["spread"], "seeds": v["seeds"], "status": status})
    return out


def order_lines(steps: Sequence[dict]) -> str:
    """Markdown for :func:`order_support`: one bullet per step of the ordering (the mean difference,
    its spread and seeds, what the rule says), then how many of the steps the rule supports."""
    lines = []
    for s in steps:
        head = f"* {label(s['a'])} > {label(s['b'])}: "
        if not s["seeds"]:
            lines.append(head + "no seed shipped for both models.")
            continue
        spread = f"spread {s['spread']:.3f}" if np.isfinite(s["spread"]) else "no spread from one seed"
        lines.append(head + f"{s['difference']:+.3f} over {s['seeds']} seed{'s' * (s['seeds'] > 1)} ({spread}): "
                     + {"supported": "**supported**", "reversed": "**reversed** (real in the other direction)",
                        "not established": "not established"}[s["status"]] + ".")
    supported = sum(s["status"] == "supported" for s in steps)
    whole = " > ".join(label(n) for n in [steps[0]["a"], *(s["b"] for s in steps)]) if steps else ""
    lines.append(f"\nThe rule supports {supported} of the {len(steps)} steps of the order {whole}.")
    return "\n".join(lines)


def peak_to_final(rows: Sequence[dict], scores: Mapping[tuple[str, int, str], Scores], name: str,
                  measure: str = PRIMARY_MEASURE, z: float = 2.0) -> list[dict]:
    """Does ``name``'s map lose what it had learned? Per seed, ``measure`` at the primary layer at the
    run's best snapshot before the end (the epoch stages in ``rows``) and after training (``final``),
    and the paired per-image difference ``peak - final`` on the same measurement images.

    Returns:
        One dict per seed with a ``final`` row and an earlier one: ``seed``, ``peak_epoch``,
        ``peak``, ``final``, ``drop`` (mean paired difference ``peak - final``), ``se`` (its standard
        error over the images) and ``falls`` (``drop > z * se``: the end is below the peak beyond
        what the choice of images explains).
    """
    primary = {(r["seed"], r["stage"]): r for r in rows
               if r["name"] == name and r["primary"] and r["stage"] not in ("baseline", "equal_acc")}
    layer, out = primary_layer(name), []
    for seed in sorted({s for s, stage in primary if stage == "final"}):
        earlier = [r for (s, stage), r in primary.items() if s == seed and stage != "final"]
        if not earlier:
            continue
        sf = scores[(name, seed, "final")]
        i_f = sf.per_image(measure, sf.layer(layer))
        if i_f is None:
            raise ValueError(f"{measure!r} has no per-image values to pair; use a per-image measure such as "
                             f"{PRIMARY_MEASURE!r}")
        peak, final = max(earlier, key=lambda r: r[measure]), primary[(seed, "final")]
        sp = scores[(name, seed, peak["stage"])]
        drop, se = paired(sp.per_image(measure, sp.layer(layer)), i_f)
        out.append({"seed": seed, "peak_epoch": int(peak["epoch"]), "peak": float(peak[measure]),
                    "final": float(final[measure]), "drop": drop, "se": se, "falls": bool(drop > z * se)})
    return out


def first_epoch_at(history: Sequence[Mapping], level: float) -> int | None:
    """The first epoch of a run's history whose validation accuracy reaches ``level`` (None: never)."""
    return next((int(h["epoch"]) for h in history if h.get("val_acc", 0.0) >= level), None)


def accuracy_bar_note(records: Mapping[str, Mapping], bar: float = 0.85, level: float = 0.80,
                      reference: str = "crate") -> str:
    """Markdown: the shipped runs whose held-out accuracy is below ``bar``, each with the epoch its
    validation accuracy first reached ``level`` (beside the ``reference`` model's runs) and its gain
    over the last ten epochs. Runs that do not classify (a masked autoencoder's record holds a
    reconstruction error) are not held to the bar.

    Args:
        records: run name (``"<model>-s<seed>"``) -> its zoo record (``held_out``, ``history``).
        bar: the accuracy every study model is asked to reach.
        level: the equal-accuracy stage's validation accuracy.
        reference: the model whose runs give the comparison epochs.
    """
    below = {k: r for k, r in records.items() if r["held_out"].get("acc", bar) < bar}
    if not below:
        return f"Every shipped run reaches the study's {bar:.0%} held-out accuracy."
    ref = sorted(e for n, r in records.items() if split_run_name(n)[0] == reference
                 and (e := first_epoch_at(r["history"], level)) is not None)
    ref_text = (f"{label(reference)}: epoch {ref[0]}" + (f"-{ref[-1]}" if ref[-1] != ref[0] else "")
                if ref else f"{label(reference)}: never")
    parts = []
    for name, r in below.items():
        model, seed = split_run_name(name)
        first = first_epoch_at(r["history"], level)
        accs = [h["val_acc"] for h in r["history"] if "val_acc" in h]
        gain = 100 * (accs[-1] - accs[-11]) if len(accs) > 10 else float("nan")
        parts.append(f"{label(model)} seed {seed} reaches {100 * r['held_out']['acc']:.1f} % held-out; "
                     f"its validation accuracy first reached {level:.0%} "
                     + (f"at epoch {first}" if first is not None else "never")
                     + f" ({ref_text}) and gained {gain:+.1f} points over its last ten epochs, the end of the "
                       "cosine schedule")
    return ("**Below the study's bar of " + f"{bar:.0%}" + ":** " + "; ".join(parts) + ". The recipe (learning "
            "rate, schedule, epochs) was fixed for every model before the runs and is not tuned per model, so "
            "such a run is compared as the weaker classifier it is; the equal-accuracy stage (" + f"{level:.0%}"
            + " validation accuracy) compares it with the others at matched accuracy.")
