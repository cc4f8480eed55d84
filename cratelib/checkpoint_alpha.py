"""Released CRATE-alpha weights (UCSC-VLAA/CRATE-alpha, PyTorch files ``torch/crate_alpha_*.pth``).

The files are plain state dicts of ``torch_inference/model/crate_alpha.py`` (its evaluation
script calls ``model.load_state_dict(torch.load(path))``), with these names (d wide, L layers,
patch P, r = 4)::

    conv1.weight (d, 3, P, P), conv1.bias (d,)            patch embedding (a stride-P Conv2d)
    cls_token (1, 1, d), pos_embedding (1, 1 + N, d)
    transformer.layers.{i}.0.norm.{weight,bias} (d,)      LayerNorm (eps 1e-6) before MSSA
    transformer.layers.{i}.0.fn.qkv.weight (K p, d)       U^T, no bias
    transformer.layers.{i}.0.fn.to_out.0.weight (d, K p)  output projection, no bias
    transformer.layers.{i}.1.norm.{weight,bias} (d,)      LayerNorm (eps 1e-6) before ODL
    transformer.layers.{i}.1.fn.D, .D1 (d, r d)           the two dictionaries of ODL
    mlp_head.0.{weight,bias} (d,), mlp_head.1.{weight,bias} (classes, d) / (classes,)

:func:`load_crate_alpha_checkpoint` maps them onto a ``crate_alpha`` :class:`~cratelib.CRATE`.
The convolution becomes cratelib's linear patch projection over ``(p1 p2 c)``-ordered pixels,
the same map: ``W_linear = W_conv.permute(0, 2, 3, 1).reshape(d, P * P * C)``;
:func:`crate_alpha_state_dict` writes a model back in the released layout. The files are on the
Hugging Face hub (:data:`CRATE_ALPHA_REPO`, :data:`CRATE_ALPHA_RELEASES`):
``cratelib.notebook.fetch("crate-alpha:B16")`` downloads one.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

from cratelib.checkpoint import _read_state, _reject_contradictions, _renamed, _resize, _unwrap
from cratelib.models.crate import CRATE, CRATEConfig
from cratelib.models.registry import CRATE_ALPHA_SIZES, FAMILIES

__all__ = ["load_crate_alpha_checkpoint", "convert_crate_alpha_state_dict", "crate_alpha_state_dict", "CRATE_ALPHA_HEADS",
           "CRATE_ALPHA_REPO", "CRATE_ALPHA_RELEASES"]

CRATE_ALPHA_REPO = "UCSC-VLAA/CRATE-alpha"  # the Hugging Face repository of the released weights
# Its PyTorch classifiers, torch/crate_alpha_<size>.pth -> the registered model of that size.
CRATE_ALPHA_RELEASES = {"B16": "crate_alpha_base_patch16", "L14": "crate_alpha_large_patch14"}

# Official CRATE-alpha widths d -> heads K (decode_variant: Ti, S, B, L); nano is the book's own size.
CRATE_ALPHA_HEADS = {dims["dim"]: dims["num_heads"] for size, dims in CRATE_ALPHA_SIZES.items() if size != "nano"}

_TOP = {
    "cls_token": "cls_token",
    "pos_embedding": "pos_embed",
    "conv1.weight": "patch_embed.proj.weight",
    "conv1.bias": "patch_embed.proj.bias",
    "mlp_head.0.weight": "norm.weight",
    "mlp_head.0.bias": "norm.bias",
    "mlp_head.1.weight": "head.weight",
    "mlp_head.1.bias": "head.bias",
}
_LAYER = {
    "0.norm.weight": "norm1.weight",
    "0.norm.bias": "norm1.bias",
    "0.fn.qkv.weight": "attn.qkv.weight",
    "0.fn.to_out.0.weight": "attn.proj.weight",
    "1.norm.weight": "norm2.weight",
    "1.norm.bias": "norm2.bias",
    "1.fn.D": "mlp.D",
    "1.fn.D1": "mlp.D1",
}
_LAYER_KEY = re.compile(r"^transformer\.layers\.(\d+)\.(.+)$")


def convert_crate_alpha_state_dict(state: dict) -> dict:
    """Map a released CRATE-alpha state dict onto cratelib's names (module docstring).

    Raises:
        KeyError: naming the keys that are not CRATE-alpha's, and the CRATE-alpha keys missing
            (layers are expected to be numbered 0 .. L-1 without gaps).
        ValueError: a ``conv1.weight`` that is not ``(d, C, P, P)``.
    """
    state = _unwrap(state)
    layers = {int(m.group(1)) for m in map(_LAYER_KEY.match, state) if m}
    depth = max(layers) + 1 if layers else 0
    expected = set(_TOP) | {f"transformer.layers.{i}.{k}" for i in range(depth) for k in _LAYER}
    unexpected, missing = sorted(set(state) - expected), sorted(expected - set(state))
    if unexpected or missing or depth == 0:
        hint = ""
        if any(k.startswith("to_patch_embedding.") for k in state) or any(k.endswith(".1.fn.weight") for k in state):
            hint = ("; it has CRATE's patch LayerNorms / one square ISTA dictionary: an official CRATE file, "
                    "load it with cratelib.load_official_checkpoint")
        raise KeyError(
            f"not a CRATE-alpha state dict (UCSC-VLAA/CRATE-alpha torch_inference/model/crate_alpha.py): "
            f"read {len(state)} keys, {depth} layers; unexpected keys {unexpected[:20]}, missing keys {missing[:20]}{hint}"
        )
    out = {_TOP[k]: v for k, v in state.items() if k in _TOP}
    conv = out["patch_embed.proj.weight"]
    if conv.dim() != 4 or conv.shape[-1] != conv.shape[-2]:
        raise ValueError(f"conv1.weight must be (d, C, P, P), read shape {tuple(conv.shape)}")
    out["patch_embed.proj.weight"] = conv.permute(0, 2, 3, 1).reshape(conv.shape[0], -1)  # (p1 p2 c) order
    for key, value in state.items():
        m = _LAYER_KEY.match(key)
        if m:
            out[f"blocks.{m.group(1)}.{_LAYER[m.group(2)]}"] = value
    return out


def crate_alpha_state_dict(model: CRATE) -> dict:
    """``model``'s state dict in the released CRATE-alpha layout (module docstring): the inverse of
    :func:`convert_crate_alpha_state_dict`, a file that ``crate_alpha.py`` and
    :func:`load_crate_alpha_checkpoint` read. The linear patch projection ``(d, P * P * C)`` over
    ``(p1 p2 c)``-ordered pixels goes back to the convolution ``(d, C, P, P)``.

    Raises:
        ValueError: a model that is not of the ``crate_alpha`` family (MSSA + ODL, no patch norm).
    """
    c = model.config
    if (c.attn, c.mlp, c.patch_norm) != ("mssa", "odl", False):
        raise ValueError(f"expected a crate_alpha model (attn 'mssa', mlp 'odl', no patch norm), "
                         f"got attn {c.attn!r}, mlp {c.mlp!r}, patch_norm {c.patch_norm}")
    state = _renamed(model, _TOP, _LAYER)
    linear = state["conv1.weight"]  # (d, P * P * C)
    state["conv1.weight"] = linear.reshape(c.dim, c.patch_size, c.patch_size, c.in_chans).permute(0, 3, 1, 2).contiguous()
    return state


def load_crate_alpha_checkpoint(
    source: str | os.PathLike | dict,
    num_heads: int | None = None,
    img_size: int | None = None,
    **overrides: Any,
) -> CRATE:
    """Build the matching ``crate_alpha`` :class:`CRATE` from released CRATE-alpha PyTorch weights.

    Width, depth, patch size, input channels, overcompleteness, class count and training
    resolution are read from the tensor shapes (``crate_alpha_B16.pth`` gives
    ``crate_alpha_base_patch16``, ``crate_alpha_L14.pth`` ``crate_alpha_large_patch14``). The
    number of heads is not visible in them: it defaults to the official size of that width
    (:data:`CRATE_ALPHA_HEADS`). The step size and lambda (0.1 each) and the LayerNorm eps (1e-6)
    are not stored either and take the official values unless overridden.

    Args:
        source: path to a ``.pth`` file or an already loaded state dict.
        num_heads: K, for a width that is not an official size.
        img_size: resolution to run at (default: the weights' own); positions are interpolated.
        overrides: further :class:`CRATEConfig` fields the weights leave open (e.g. ``step_size``).

    Raises:
        KeyError: a file that is not in CRATE-alpha's layout (the message names the keys read).
        ValueError: an override of a field the weights determine, with another value than the
            one read from them (the message names both).
    """
    raw = _unwrap(_read_state(source))
    state = convert_crate_alpha_state_dict(raw)
    dim = state["cls_token"].shape[-1]
    in_chans, patch = raw["conv1.weight"].shape[1], raw["conv1.weight"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    D = state["blocks.0.mlp.D"]
    ratio = D.shape[1] // dim
    if D.shape[0] != dim or ratio * dim != D.shape[1]:
        raise ValueError(f"ODL dictionary D must be (d, r d) with d = {dim}, read shape {tuple(D.shape)}")
    grid = math.isqrt(state["pos_embed"].shape[1] - 1)
    if grid * grid + 1 != state["pos_embed"].shape[1]:
        raise ValueError(f"pos_embedding has {state['pos_embed'].shape[1]} positions, not 1 + a square grid")
    if num_heads is None:
        if dim not in CRATE_ALPHA_HEADS:
            raise ValueError(f"width {dim} is not an official CRATE-alpha size {sorted(CRATE_ALPHA_HEADS)}; "
                             "pass num_heads")
        num_heads = CRATE_ALPHA_HEADS[dim]
    inner = state["blocks.0.attn.qkv.weight"].shape[0]
    if inner % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide the {inner} rows of the weights' subspace projection")
    read = dict(num_classes=state["head.weight"].shape[0], dim=dim, depth=depth, patch_size=patch,
                in_chans=in_chans, head_dim=inner // num_heads, odl_ratio=ratio, **FAMILIES["crate_alpha"])
    read.pop("norm_eps")  # not stored in the weights: the official 1e-6 unless overridden
    _reject_contradictions(overrides, read, loader="load_crate_alpha_checkpoint")
    if read["head_dim"] * num_heads == dim:
        read["head_dim"] = None  # the default d / K
    fields = {"norm_eps": FAMILIES["crate_alpha"]["norm_eps"], **read, **overrides}
    config = CRATEConfig.from_dict(dict(img_size=grid * patch, num_heads=num_heads, **fields))
    model = CRATE(config)
    model.load_state_dict(state, strict=True)
    if img_size is not None and img_size != config.img_size:
        model = _resize(model, img_size)
    return model
