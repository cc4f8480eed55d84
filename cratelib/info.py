"""Parameter counts of every registered model, beside the paper's Table 3 where it gives one.

Table 3 of the paper lists CRATE-T 5.74M, CRATE-S 14.12M, CRATE-B 38.83M, ViT-T 10.36M and
ViT-B 102.61M without saying which width, patch size or classifier the counts include. For those
rows :func:`explain` counts every candidate of the same family (any registered width; patch 8 or
16; no head, an ImageNet-1k head or an ImageNet-21k head) and names the closest, which is the
honest answer to "why does it differ"; :func:`info_text` adds, for every row the closest
candidate misses by more than half a percent, how far off it is.
Parameters are counted from the configuration in closed form (:meth:`CRATEConfig.num_params`),
so nothing is built.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cratelib.models.registry import FAMILIES, PATCH_SIZES, SIZES, create_model, model_config

__all__ = ["PAPER_PARAMS", "count_params", "param_breakdown", "explain", "info_table", "info_text"]

# Table 3 of arXiv 2308.16271, in millions, keyed by (family, size).
PAPER_PARAMS: dict[tuple[str, str], float] = {
    ("crate", "tiny"): 5.74,
    ("crate", "small"): 14.12,
    ("crate", "base"): 38.83,
    ("vit", "tiny"): 10.36,
    ("vit", "base"): 102.61,
}
HEADS = {"no head": 0, "1k head": 1000, "21k head": 21843}


def count_params(name: str, **overrides) -> int:
    """Number of parameters of ``create_model(name, **overrides)``, counted from its config."""
    return model_config(name, **overrides).num_params()


def param_breakdown(name: str, **overrides) -> dict[str, int]:
    """Parameters of ``create_model(name, **overrides)`` by part, counted on the ``meta`` device.

    Returns:
        ``attention`` and ``second`` (the MLP or ISTA block) of *one* layer, ``norms`` (the two
        LayerNorms of one layer), ``layers`` (all layers), ``embedding`` (patches, CLS token,
        positions), ``head`` (final LayerNorm and classifier) and ``total``.
    """
    with torch.device("meta"):
        model = create_model(name, **overrides)

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    block = model.blocks[0]
    return {
        "attention": count(block.attn),
        "second": count(block.mlp),
        "norms": count(block.norm1) + count(block.norm2),
        "layers": sum(count(b) for b in model.blocks),
        "embedding": count(model.patch_embed) + model.cls_token.numel() + model.pos_embed.numel(),
        "head": count(model.norm) + count(model.head),
        "total": count(model),
    }


@dataclass
class Explanation:
    candidate: str  # e.g. "base, patch8, 21k head"
    params: int
    paper_m: float

    @property
    def rel_diff(self) -> float:
        return self.params / 1e6 / self.paper_m - 1

    @property
    def matches(self) -> bool:
        """Whether the count rounds to the paper's figure (two decimals, in millions)."""
        return round(self.params / 1e6, 2) == self.paper_m

    def why_not(self, label: str) -> str:
        """Why no configuration gives the paper's count for ``label`` (e.g. "ViT-T"); '' if one does."""
        if self.matches:
            return ""
        gap = self.paper_m - self.params / 1e6
        return (f"{label}: Table 3's {self.paper_m:.2f}M is {abs(gap):.2f}M {'more' if gap > 0 else 'less'} than the "
                f"closest configuration ({self.candidate}, {self.params / 1e6:.2f}M); no width of the family's size "
                "table, patch size or head comes closer, so the paper's count is of none of these architectures.")


def explain(family: str, size: str) -> Explanation | None:
    """The candidate configuration whose count is closest to the paper's, or None if no figure."""
    paper = PAPER_PARAMS.get((family, size))
    if paper is None:
        return None
    best = None
    for cand_size in SIZES[family]:
        for patch in PATCH_SIZES:
            for head, classes in HEADS.items():
                n = count_params(f"{family}_{cand_size}_patch{patch}", num_classes=classes)
                cand = Explanation(f"{cand_size}, patch{patch}, {head}", n, paper)
                if best is None or abs(cand.rel_diff) < abs(best.rel_diff):
                    best = cand
    return best


def info_table(pattern: str = "*") -> list[dict]:
    """One row per registered model matching ``pattern`` (ordered family, size, patch): its count
    (1000 classes, 224 px) and, where Table 3 has the model, the closest candidate configuration."""
    from fnmatch import fnmatch

    rows = []
    for family, size, patch in ((f, s, p) for f in FAMILIES for s in SIZES[f] for p in PATCH_SIZES):
        name = f"{family}_{size}_patch{patch}"
        if not fnmatch(name, pattern):
            continue
        row = {"model": name, "params_m": count_params(name) / 1e6, "paper_m": None, "closest": "", "why_not": ""}
        exp = explain(family, size) if patch == 8 else None  # the paper's models are /8
        if exp is not None:
            label = f"{'ViT' if family == 'vit' else 'CRATE'}-{size[0].upper()}"
            row.update(paper_m=exp.paper_m, closest=f"{exp.candidate}: {exp.params / 1e6:.2f}M ({exp.rel_diff:+.1%})",
                       why_not=exp.why_not(label))
        rows.append(row)
    return rows


def info_text(rows: list[dict]) -> str:
    """Plain-text rendering of :func:`info_table`."""
    lines = [f"{'model':<26}{'params (1k head)':>18}{'paper':>9}   closest configuration to the paper's count",
             "-" * 100]
    for r in rows:
        paper = f"{r['paper_m']:.2f}M" if r["paper_m"] is not None else "-"
        lines.append(f"{r['model']:<26}{r['params_m']:>17.2f}M{paper:>9}   {r['closest']}")
    lines.append("")
    lines.append("Counts are at 224 px with a 1000-class head. Table 3 of the paper does not state width, patch size or")
    lines.append("head; 'closest' counts every width x patch 8/16 x {no head, 1k head, 21k (21,843-class) head} of the")
    lines.append("family and names the best match. Patch size barely matters: it trades patch-projection for position weights.")
    lines += [r["why_not"] for r in rows if r["why_not"]]
    return "\n".join(lines)
