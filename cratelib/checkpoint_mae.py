"""The released CRATE-MAE weights (``Ma-Lab-Berkeley/CRATE``, ``model/crate_ae/``; CRATE-MAE-Base).

The official ``MaskedAutoencoderViT`` (trained with Meta's MAE code, whose files wrap the state
dict as ``{"model": ..., "optimizer": ..., "args": Namespace, ...}``) names its parameters::

    cls_token, mask_token, pos_embed, decoder_pos_embed       (1, 1, d), (1, 1, d), (1, 1+N, d) x 2
    patch_embed.proj.{weight,bias}                            Conv2d (d, C, P, P), (d,)
    blocks.<i>.layers.0.0.{norm.*, fn.qkv.weight, fn.to_out.0.*}           encoder MSSA
    blocks.<i>.layers.0.1.{norm.*, fn.weight}                              encoder ISTA, D
    norm.*, decoder_embed.*, decoder_norm.*, decoder_pred.*
    decoder_blocks.<i>.layers.0.0.{norm.*, fn.weight}                      decoder D
    decoder_blocks.<i>.layers.0.1.{norm.*, fn.qkv.weight, fn.to_out.0.*}   decoder MSSA

Its forward never uses ``decoder_embed`` (the decoder reads the encoder's tokens as they are) nor
``pos_embed`` (the encoder adds ``decoder_pos_embed``); both positions are the fixed sine-cosine
table. :func:`load_official_mae_checkpoint` therefore checks those four tensors (present, right
shapes, the positions equal to :func:`~cratelib.models.crate_mae.sincos_pos_embed`) and loads the
rest into :class:`~cratelib.models.crate_mae.CRATEMAE`.
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from cratelib.models.crate_mae import CRATEMAE, CRATEMAEConfig, sincos_pos_embed
from cratelib.models.registry import CRATE_SIZES

__all__ = ["convert_official_mae_state_dict", "load_official_mae_checkpoint", "OFFICIAL_MAE_HEADS"]

# Official sizes (crate_ae.py's mae_crate_*): width d -> heads K, the same in encoder and decoder.
OFFICIAL_MAE_HEADS = {dims["dim"]: dims["num_heads"] for size, dims in CRATE_SIZES.items() if size != "nano"}

_TOP = {
    "cls_token": "encoder.cls_token",
    "mask_token": "encoder.mask_token",
    "patch_embed.proj.weight": "encoder.patch_embed.proj.weight",  # Conv2d -> Linear over (p1 p2 c)
    "patch_embed.proj.bias": "encoder.patch_embed.proj.bias",
    "norm.weight": "encoder.norm.weight",
    "norm.bias": "encoder.norm.bias",
    "decoder_norm.weight": "decoder.norm.weight",
    "decoder_norm.bias": "decoder.norm.bias",
    "decoder_pred.weight": "decoder.pred.weight",
    "decoder_pred.bias": "decoder.pred.bias",
}
_UNUSED = ("pos_embed", "decoder_pos_embed", "decoder_embed.weight", "decoder_embed.bias")  # checked only
_ENCODER = {
    "layers.0.0.norm.weight": "norm1.weight",
    "layers.0.0.norm.bias": "norm1.bias",
    "layers.0.0.fn.qkv.weight": "attn.qkv.weight",
    "layers.0.0.fn.to_out.0.weight": "attn.proj.weight",
    "layers.0.0.fn.to_out.0.bias": "attn.proj.bias",
    "layers.0.1.norm.weight": "norm2.weight",
    "layers.0.1.norm.bias": "norm2.bias",
    "layers.0.1.fn.weight": "mlp.weight",
}
_DECODER = {
    "layers.0.0.norm.weight": "norm1.weight",
    "layers.0.0.norm.bias": "norm1.bias",
    "layers.0.0.fn.weight": "weight",
    "layers.0.1.norm.weight": "norm2.weight",
    "layers.0.1.norm.bias": "norm2.bias",
    "layers.0.1.fn.qkv.weight": "attn.qkv.weight",
    "layers.0.1.fn.to_out.0.weight": "attn.proj.weight",
    "layers.0.1.fn.to_out.0.bias": "attn.proj.bias",
}
_LAYER = re.compile(r"^(blocks|decoder_blocks)\.(\d+)\.(.+)$")
_PREFIX = {"blocks": ("encoder.blocks", _ENCODER), "decoder_blocks": ("decoder.blocks", _DECODER)}


def _read(source: str | os.PathLike | dict) -> tuple[dict, str]:
    """The state dict inside ``source`` (a file or a loaded object) and a description of it."""
    if isinstance(source, dict):
        obj, where = source, "the given dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # Meta's MAE code stores its argparse.Namespace beside the weights
            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        where = str(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{where} holds a {type(obj).__name__}, not a state dict (a mapping of parameter names)")
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    return {k.removeprefix("module."): v for k, v in obj.items()}, where


def convert_official_mae_state_dict(state: dict, where: str = "the state dict") -> dict:
    """Map an official CRATE-MAE state dict (unwrapped) onto :class:`CRATEMAE`'s names.

    Raises:
        ValueError: naming the unexpected and the missing keys, and what was read instead.
    """
    out, unexpected = {}, []
    for key, value in state.items():
        m = _LAYER.match(key)
        if key in _TOP:
            out[_TOP[key]] = value
        elif m and m.group(3) in _PREFIX[m.group(1)][1]:
            prefix, names = _PREFIX[m.group(1)]
            out[f"{prefix}.{m.group(2)}.{names[m.group(3)]}"] = value
        elif key not in _UNUSED:
            unexpected.append(key)
    missing = sorted(k for k in (*_TOP, *_UNUSED) if k not in state)
    if not any(k.startswith("blocks.") for k in state) or not any(k.startswith("decoder_blocks.") for k in state):
        missing.append("blocks.<i>.* and decoder_blocks.<i>.*")
    if unexpected or missing:
        hint = ""
        if any(k.startswith(("transformer.layers.", "to_patch_embedding.")) for k in state):
            hint = " It looks like a CRATE classifier: load it with cratelib.load_official_checkpoint."
        elif any(".attn.qkv." in k or ".mlp.fc1." in k for k in unexpected):
            hint = " It looks like a ViT-MAE (timm blocks), not CRATE-MAE."
        raise ValueError(
            f"{where} is not an official CRATE-MAE checkpoint (Ma-Lab-Berkeley/CRATE model/crate_ae): "
            f"unexpected keys {sorted(unexpected)[:12]}, missing keys {missing[:12]}; "
            f"read {len(state)} keys, e.g. {sorted(state)[:8]}.{hint}"
        )
    w = out["encoder.patch_embed.proj.weight"]
    if w.ndim != 4:
        raise ValueError(f"{where}: patch_embed.proj.weight should be a Conv2d weight (d, C, P, P), got {tuple(w.shape)}")
    out["encoder.patch_embed.proj.weight"] = rearrange(w, "d c p1 p2 -> d (p1 p2 c)")
    return out


def load_official_mae_checkpoint(source: str | os.PathLike | dict, num_heads: int | None = None,
                                 **overrides: Any) -> CRATEMAE:
    """Build the matching :class:`CRATEMAE` from the released CRATE-MAE weights.

    Width, encoder and decoder depth, patch size, channels and training resolution are read from
    the tensor shapes; the number of heads is not visible in them and defaults to the official size
    table (:data:`OFFICIAL_MAE_HEADS`, encoder and decoder alike).

    Args:
        source: a ``.pth`` file (Meta's MAE wrapping and ``module.`` prefixes are unwrapped) or a dict.
        num_heads: K, if the width is not an official size.
        overrides: :class:`CRATEMAEConfig` fields the weights leave open (``img_size``,
            ``mask_ratio``, ``norm_pix_loss``, ``lambd``, ``pool``, ...).

    Raises:
        ValueError: a file of another layout (naming what it holds), fixed positions that are not
            the sine-cosine table, or an override that contradicts the weights.
    """
    state, where = _read(source)
    converted = convert_official_mae_state_dict(state, where)
    dim = converted["encoder.cls_token"].shape[-1]
    _, in_chans, patch, _ = state["patch_embed.proj.weight"].shape
    depth = 1 + max(int(k.split(".")[2]) for k in converted if k.startswith("encoder.blocks."))
    decoder_depth = 1 + max(int(k.split(".")[2]) for k in converted if k.startswith("decoder.blocks."))
    grid = math.isqrt(state["decoder_pos_embed"].shape[1] - 1)
    for key in ("pos_embed", "decoder_pos_embed"):
        table, expected = state[key].float(), sincos_pos_embed(dim, (grid, grid))
        if table.shape != expected.shape:
            raise ValueError(f"{where}: {key} has shape {tuple(table.shape)}, expected {tuple(expected.shape)} "
                             f"(a {grid}x{grid} grid of width {dim} with [CLS])")
        gap = (table - expected).abs().max().item()
        if gap > 1e-4:
            raise ValueError(f"{where}: {key} is not the fixed 2-D sine-cosine table CRATE-MAE uses "
                             f"(largest deviation {gap:.3g}); these are not CRATE-MAE weights")
    if num_heads is None:
        if dim not in OFFICIAL_MAE_HEADS:
            raise ValueError(f"width {dim} is not an official CRATE-MAE size {sorted(OFFICIAL_MAE_HEADS)}; pass num_heads")
        num_heads = OFFICIAL_MAE_HEADS[dim]
    read = dict(dim=dim, depth=depth, decoder_depth=None if decoder_depth == depth else decoder_depth,
                patch_size=patch, in_chans=in_chans, blocks="crate")
    wrong = [f"{k}={overrides[k]!r} (the weights have {k}={v!r})" for k, v in read.items()
             if k in overrides and overrides[k] != v]
    if wrong:
        raise ValueError(f"load_official_mae_checkpoint reads these fields from the weights and cannot change them: "
                         f"{', '.join(wrong)}; for another architecture use cratelib.create_model('crate_mae_...')")
    config = CRATEMAEConfig.from_dict({"img_size": grid * patch, "num_heads": num_heads, **overrides, **read})
    model = CRATEMAE(config)
    model.load_state_dict(converted, strict=True)
    return model
