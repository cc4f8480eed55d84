"""Inspection without hooks in user code: per-layer tokens, attention, q/k/v and ISTA codes.

``trace(model, images)`` runs one forward pass and returns a :class:`Trace`. It works for every
cratelib model and for timm's ``VisionTransformer`` (supervised ViT, DINO, ... loaded by timm), so
the evaluations of Appendix B treat CRATE and a ViT with the same code:

* CRATE (MSSA): ``q = k = v = U_k^T z`` (eq. 5), the features of eqs. (10) and (12);
* ViT (MHSA): separate ``Q_k z``, ``K_k z``, ``V_k z`` (eq. 11 uses keys and the CLS query);
* ToST (TSSA, :mod:`cratelib.tssa`): no query-key attention; its layers record the features
  ``k = v = U_k^T z`` and the membership ``Pi`` of every token in every head, which
  :meth:`Trace.membership_maps` turns into one map per head over the patch grid;
* CRATE-alpha (ODL): ``codes`` are the sparse codes ``z2`` in ``R^{4d}``.

A masked autoencoder (:class:`~cratelib.models.crate_mae.CRATEMAE`) is traced through its
encoder, on the whole, unmasked image: its layers are the encoder's CRATE layers and
``Trace.logits`` holds the encoder's pooled features (the decoder only serves the training loss).
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Sequence

import torch
from einops import rearrange
from torch import nn

from cratelib.models.crate import CRATE
from cratelib.models.crate_mae import CRATEMAE, CRATEMAEEncoder

__all__ = ["Trace", "trace", "num_layers", "patch_size"]


@dataclass
class Trace:
    """What one forward pass saw, for the requested layers ``l`` (block indices, 0-based).

    Attributes:
        tokens: ``l -> (B, T, d)`` output tokens of block l (``T = num_prefix + N``).
        attn: ``l -> (B, H, T, T)`` softmax attention weights of block l (none for TSSA layers).
        q, k, v: ``l -> (B, H, T, p)``; for MSSA all three are the same tensor ``U_k^T z``; TSSA
            layers have ``k = v = U_k^T z`` and no q.
        membership: ``l -> (B, K, T)`` TSSA's Pi, each token's soft membership in the K heads
            (sums to 1 over K); TSSA layers only, see :meth:`membership_maps`.
        codes: ``l -> (B, T, d)`` output of the second sub-block (the ISTA codes for CRATE); for
            ODL (CRATE-alpha) the sparse codes ``(B, T, r d)`` before decoding.
        num_prefix: number of non-patch tokens (1 for the CLS token).
        grid: ``(h, w)`` patch grid, ``N = h * w``.
        scale: the attention scale ``p ** -0.5`` the model uses (NaN for TSSA, which has none).
        logits: the model's output, ``(B, num_classes)`` (pooled features for a headless model).
    """

    tokens: dict[int, torch.Tensor] = field(default_factory=dict)
    attn: dict[int, torch.Tensor] = field(default_factory=dict)
    q: dict[int, torch.Tensor] = field(default_factory=dict)
    k: dict[int, torch.Tensor] = field(default_factory=dict)
    v: dict[int, torch.Tensor] = field(default_factory=dict)
    codes: dict[int, torch.Tensor] = field(default_factory=dict)
    membership: dict[int, torch.Tensor] = field(default_factory=dict)
    num_prefix: int = 1
    grid: tuple[int, int] = (0, 0)
    scale: float = 1.0
    logits: torch.Tensor | None = None

    @property
    def layers(self) -> list[int]:
        return sorted(self.tokens)

    def patch_features(self, layer: int) -> torch.Tensor:
        """``(B, H, N, p)`` patch features: CRATE's ``U_k^T z_i`` (eq. 12), a ViT's keys."""
        return self.k[layer][:, :, self.num_prefix :]

    def cls_attention(self, layer: int) -> torch.Tensor:
        """``(B, H, h, w)``: the model's own attention of the CLS query to every patch."""
        if layer in self.membership:
            raise ValueError(f"layer {layer} is a TSSA layer: it forms no query-key attention; "
                             "use Trace.membership_maps(layer) for its per-head maps")
        a = self.attn[layer][:, :, 0, self.num_prefix :]
        return rearrange(a, "b k (h w) -> b k h w", h=self.grid[0])

    def membership_maps(self, layer: int) -> torch.Tensor:
        """``(B, K, h, w)``: TSSA's membership Pi of every patch in each of the K heads.

        ``maps[b, k, i, j]`` is the weight with which the patch in row i, column j of image b
        enters head k's statistic (and is moved by head k); at every patch the K values sum to 1.
        The CLS token's membership is left out (it is ``self.membership[layer][:, :, 0]``).
        """
        if layer not in self.membership:
            kinds = "traced TSSA layers: " + str(sorted(self.membership)) if self.membership else "no TSSA layer traced"
            raise ValueError(f"layer {layer} has no membership Pi ({kinds}); only TSSA (ToST) layers have one")
        pi = self.membership[layer][:, :, self.num_prefix :]
        return rearrange(pi, "b k (h w) -> b k h w", h=self.grid[0])

    def sparsity(self, layer: int, tol: float = 0.0) -> float:
        """Fraction of entries of the layer's codes with ``|x| <= tol`` (ISTA: exact zeros)."""
        return (self.codes[layer].abs() <= tol).float().mean().item()


_CRATELIB_MODELS = (CRATE, CRATEMAEEncoder)  # blocks that record their own internals


def _traced(model: nn.Module) -> nn.Module:
    """The network a trace runs: a masked autoencoder's encoder, any other model itself."""
    return model.encoder if isinstance(model, CRATEMAE) else model


def num_layers(model: nn.Module) -> int:
    """Number of transformer blocks of a cratelib or timm ViT model (a CRATE-MAE's encoder's)."""
    model = _traced(model)
    if not hasattr(model, "blocks"):
        raise TypeError(f"expected a cratelib CRATE model or a timm VisionTransformer, got {type(model).__name__}")
    return len(model.blocks)


def _normalise_layers(model: nn.Module, layers: Sequence[int] | int | None) -> list[int]:
    depth = num_layers(model)
    if layers is None:
        return list(range(depth))
    layers = [layers] if isinstance(layers, int) else list(layers)
    out = []
    for l in layers:
        if not -depth <= l < depth:
            raise ValueError(f"layer {l} out of range for a model with {depth} blocks (use 0..{depth - 1} or negatives)")
        out.append(l % depth)
    return sorted(set(out))


def patch_size(model: nn.Module) -> int:
    """The patch size of a cratelib model or a timm ViT."""
    model = _traced(model)
    if isinstance(model, _CRATELIB_MODELS):
        return model.patch_size
    ps = model.patch_embed.patch_size
    return ps[0] if isinstance(ps, (tuple, list)) else int(ps)


def _trace_timm_attention(attn_module: nn.Module, store: dict) -> torch.utils.hooks.RemovableHandle:
    """Recompute q, k, v and the attention of a timm ``Attention`` from its (normalised) input."""

    def hook(module: nn.Module, args: tuple, _output: torch.Tensor) -> None:
        x = args[0]
        qkv = rearrange(module.qkv(x), "b n (t h p) -> t b h n p", t=3, h=module.num_heads)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = module.q_norm(q), module.k_norm(k)
        store.update(q=q, k=k, v=v, attn=(q @ k.transpose(-2, -1) * module.scale).softmax(dim=-1))

    return attn_module.register_forward_hook(hook)


@torch.no_grad()
def trace(model: nn.Module, images: torch.Tensor, layers: Sequence[int] | int | None = None) -> Trace:
    """Run ``model`` on ``images: (B, 3, H, W)`` and record the requested layers.

    Args:
        model: a cratelib model (any family; a CRATE-MAE runs its encoder without a mask) or a timm
            ``VisionTransformer``.
        images: normalised images; H and W multiples of the patch size.
        layers: block indices (negatives count from the end); None = every block.

    Returns:
        a :class:`Trace`; the model's weights and mode are left unchanged.
    """
    model = _traced(model)
    layers = _normalise_layers(model, layers)
    patch = patch_size(model)
    out = Trace(num_prefix=int(getattr(model, "num_prefix_tokens", 1)),
                grid=(images.shape[-2] // patch, images.shape[-1] // patch))
    stores: dict[int, dict] = {l: {} for l in layers}
    timm_model = not isinstance(model, _CRATELIB_MODELS)
    with ExitStack() as stack:
        for l in layers:
            block = model.blocks[l]
            store = stores[l]
            if timm_model:
                stack.enter_context(_trace_timm_attention(block.attn, store))
                mlp_handle = block.mlp.register_forward_hook(lambda m, a, o, s=store: s.update(codes=o))
                stack.enter_context(mlp_handle)
            else:
                block.attn.record = store
                block.mlp.record = store
                stack.callback(setattr, block.attn, "record", None)
                stack.callback(setattr, block.mlp, "record", None)
            stack.enter_context(block.register_forward_hook(lambda m, a, o, s=store: s.update(tokens=o)))
        logits = model(images)
    out.logits = logits
    for l, store in stores.items():
        for name in ("tokens", "attn", "q", "k", "v", "codes", "membership"):
            if name in store:
                getattr(out, name)[l] = store[name]
    out.scale = float(getattr(model.blocks[layers[0]].attn, "scale", float("nan")))
    return out
