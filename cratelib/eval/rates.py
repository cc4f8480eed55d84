"""Coding rates and sparsity of a CRATE model, layer by layer (book chapter 5).

The white-box reading of CRATE says that each MSSA block compresses the tokens against its
subspaces ``U^l`` (lowers ``R^c``) and each ISTA block sparsifies them; :func:`layer_statistics`
measures both on real images, block by block (eq. 8).
"""
from __future__ import annotations

import torch

from cratelib.coding_rate import coding_rate, compression_rate

__all__ = ["subspaces_of", "layer_statistics"]


def subspaces_of(attn: torch.nn.Module) -> torch.Tensor:
    """The bases ``U (K, d, p)`` of an MSSA layer: its bias-free ``qkv`` weight is ``U^T``
    (``(K p, d)``), split into K blocks of p rows. Learned bases are not orthonormal."""
    W = attn.qkv.weight.detach()  # (K p, d)
    K = attn.num_heads
    return W.reshape(K, W.shape[0] // K, W.shape[1]).transpose(1, 2).contiguous()


@torch.no_grad()
def layer_statistics(model: torch.nn.Module, images: torch.Tensor, eps: float = 0.5,
                     bases: list[torch.Tensor] | None = None) -> dict:
    """Walk a CRATE model block by block (eq. 8) and measure, for each layer l:

    * ``R``: coding rate of the layer's normalised input tokens LN1(Z_l), per image, averaged;
    * ``Rc_in``: Rc(LN1(Z_l) | U^l), the compression term of what MSSA receives;
    * ``Rc_out``: Rc(LN2(Z_{l+1/2}) | U^l) of what ISTA receives, after the MSSA step;
    * ``sparsity``: fraction of exact zeros in the ISTA output Z_{l+1}.

    Tokens include the CLS token (N + 1 rows per image). ``bases`` replaces each layer's U^l by
    a given ``(K, d, p)`` tensor (e.g. random orthonormal bases). Returns lists indexed by layer.
    """
    stats = {"R": [], "Rc_in": [], "Rc_out": [], "sparsity": []}
    x = model.embed(images)
    for l, block in enumerate(model.blocks):
        U = (subspaces_of(block.attn) if bases is None else bases[l]).to(x.dtype)
        h = block.norm1(x)
        stats["R"].append(float(coding_rate(h, eps).mean()))
        stats["Rc_in"].append(float(compression_rate(h, U, eps).mean()))
        x_half = block.attn(h) + (h if block.residual_from_norm else x)
        h2 = block.norm2(x_half)
        stats["Rc_out"].append(float(compression_rate(h2, U, eps).mean()))
        out = block.mlp(h2)
        x = x_half + out if block.mlp.residual else out
        stats["sparsity"].append(float((out == 0).float().mean()))
    return stats
