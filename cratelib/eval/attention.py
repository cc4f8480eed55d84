"""CLS attention maps, App. B.1 (eqs. 10-11), and DINO's way of showing them.

For head k of layer l the map over the N patches is

    CRATE (eq. 10):  A_k,i = softmax_i( s * <U_k^T z_i, U_k^T z_CLS> )
    ViT   (eq. 11):  A_k,i = softmax_i( s * <K_k z_i,   Q_k z_CLS> )

with the softmax over patches only (i = 1..N), reshaped to the patch grid.

Softmax scale ``s``: eqs. 10-11 are written without one (``s = 1``), but the
paper says it uses the method of DINO, which reads the model's own attention,
computed with ``s = p ** -0.5``.  :func:`cls_attention` therefore takes
``scale`` as an argument and defaults to the model's scale; pass ``scale=1.0``
for the equations as printed.  With the model's scale the map equals the
model's own CLS attention row (``Trace.cls_attention``, softmax over all T
tokens including CLS) renormalised over the patches; :func:`model_cls_attention`
returns that row unchanged, as DINO plots it.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from cratelib.eval.threshold import mass_mask
from cratelib.trace import Trace

Upsample = Literal["nearest", "bilinear"]


def cls_attention_from_qk(
    q: torch.Tensor,
    k: torch.Tensor,
    grid: tuple[int, int],
    num_prefix: int = 1,
    scale: float = 1.0,
) -> torch.Tensor:
    """Eqs. 10-11 from per-head queries and keys.

    Args:
        q, k: ``(B, H, T, p)`` with ``T = num_prefix + N``; token 0 is CLS.
            For CRATE pass ``q = k = U_k^T z`` (eq. 10).
        grid: ``(h, w)`` patch grid, ``h * w = N``.
        num_prefix: number of non-patch tokens before the patches.
        scale: softmax temperature ``s`` (1.0 = the equations as printed).

    Returns:
        ``(B, H, h, w)`` maps, each summing to 1 over the patches.
    """
    if q.dim() != 4 or q.shape != k.shape:
        raise ValueError(
            f"expected q and k of the same shape (B, H, T, p), got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    n = q.shape[2] - num_prefix
    if n != grid[0] * grid[1]:
        raise ValueError(
            f"{q.shape[2]} tokens minus {num_prefix} prefix = {n} patches, "
            f"but the grid {grid} has {grid[0] * grid[1]}"
        )
    cls_q = q[:, :, :1]  # (B, H, 1, p)
    patch_k = k[:, :, num_prefix:]  # (B, H, N, p)
    logits = (patch_k @ cls_q.transpose(-2, -1)).squeeze(-1) * scale  # (B, H, N)
    return logits.softmax(-1).unflatten(-1, grid)


def cls_attention(tr: Trace, layer: int, scale: float | None = None) -> torch.Tensor:
    """Eq. 10 (CRATE) / eq. 11 (ViT) for every head of ``layer``: ``(B, H, h, w)``.

    Args:
        tr: a trace that recorded ``layer``.
        layer: block index.
        scale: softmax scale; ``None`` = the model's ``p ** -0.5`` (DINO's
            maps), ``1.0`` = the equations as printed.
    """
    return cls_attention_from_qk(
        tr.q[layer], tr.k[layer], tr.grid, tr.num_prefix, tr.scale if scale is None else scale
    )


def layer_map(tr: Trace, layer: int, scale: float | None = None) -> torch.Tensor:
    """The per-head map the book measures at ``layer``, ``(B, H, h, w)``: the CLS attention of
    eqs. 10-11 (:func:`cls_attention`), or, for a TSSA (ToST) layer, which forms no token-to-token
    attention, the membership Pi of every patch in each head (:meth:`cratelib.trace.Trace.membership_maps`)."""
    if layer in tr.membership:
        return tr.membership_maps(layer)
    return cls_attention(tr, layer, scale)


def model_cls_attention(tr: Trace, layer: int) -> torch.Tensor:
    """The model's own softmax row of the CLS query, patches only: ``(B, H, h, w)`` (DINO)."""
    return tr.cls_attention(layer)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int], mode: Upsample = "nearest") -> torch.Tensor:
    """Resize ``(..., h, w)`` maps to ``size = (H, W)`` pixels.

    ``"nearest"`` repeats each patch's value over its pixels (DINO's display,
    blocky, exact); ``"bilinear"`` interpolates (smooth, for overlays).  Bool
    masks are resized with nearest and stay bool.
    """
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
    lead = maps.shape[:-2]
    is_bool = maps.dtype == torch.bool
    x = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    if is_bool or mode == "nearest":
        x = F.interpolate(x, size=size, mode="nearest")
    else:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    x = x.reshape(*lead, *size)
    return x > 0.5 if is_bool else x


def dino_display(
    maps: torch.Tensor,
    size: tuple[int, int] | None = None,
    mass: float = 0.6,
    mode: Upsample = "nearest",
) -> tuple[torch.Tensor, torch.Tensor]:
    """DINO's figure: the maps and the smallest patch sets holding ``mass`` of each.

    Args:
        maps: ``(..., h, w)`` attention maps.
        size: image size ``(H, W)`` to upsample to (``None`` = stay on the grid).
        mass: share of the attention mass kept (DINO: 0.6).
        mode: upsampling of the continuous maps; masks always use nearest.

    Returns:
        ``(maps, masks)`` of shapes ``(..., H, W)``: float maps and bool masks.
    """
    masks = mass_mask(maps, mass)
    if size is None:
        return maps, masks
    return upsample_maps(maps, size, mode), upsample_maps(masks, size)
