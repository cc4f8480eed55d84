"""Checkpoints: cratelib's own (atomic, self-describing) and the official CRATE release.

A cratelib checkpoint is ``{"model": state_dict, "config": CRATEConfig dict, **extra}``, so
:func:`load_checkpoint` rebuilds the model without knowing its name; a masked autoencoder's
also says ``"arch": "crate_mae"`` (its config is a :class:`CRATEMAEConfig`). Writes go to a temporary
file in the same directory and are renamed into place, so a crash never leaves half a file.

The official code (``Ma-Lab-Berkeley/CRATE``, ``model/crate.py``) names its parameters
``to_patch_embedding.{1,2,3}``, ``transformer.layers.{i}.{0,1}.{norm,fn...}`` and
``mlp_head.{0,1}``; :func:`convert_official_state_dict` maps them onto cratelib's names.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from cratelib.io import atomic_torch_save
from cratelib.models.crate import CRATE, CRATEConfig, resample_pos_embed
from cratelib.models.crate_mae import CRATEMAE, CRATEMAEConfig
from cratelib.models.registry import CRATE_SIZES

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "convert_official_state_dict",
    "load_official_checkpoint",
    "official_state_dict",
    "OFFICIAL_HEADS",
]

# Official CRATE sizes: width d -> number of heads K (tiny, small, base, large).
OFFICIAL_HEADS = {dims["dim"]: dims["num_heads"] for size, dims in CRATE_SIZES.items() if size != "nano"}


def save_checkpoint(path: str | os.PathLike, model: CRATE | CRATEMAE, **extra: Any) -> Path:
    """Save ``model`` with its config (and any ``extra`` entries, e.g. optimizer, epoch, metrics)."""
    arch = {"arch": model.checkpoint_arch} if isinstance(model, CRATEMAE) else {}
    return atomic_torch_save(path, {"model": model.state_dict(), "config": model.config.to_dict(), **arch, **extra})


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    **overrides: Any) -> CRATE | CRATEMAE:
    """Rebuild a model saved by :func:`save_checkpoint`; ``overrides`` change config fields
    that do not alter the weights (e.g. ``img_size=480``: positions are interpolated; a
    CRATE-MAE's fixed positions are recomputed for any size)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        keys = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(
            f"{path} is not a cratelib checkpoint (expected keys 'model' and 'config', found {keys}); "
            "for released CRATE weights use cratelib.load_official_checkpoint"
        )
    if ckpt.get("arch") == CRATEMAE.checkpoint_arch:
        model = CRATEMAE(CRATEMAEConfig.from_dict({**ckpt["config"], **overrides}))
        model.load_state_dict(ckpt["model"])
        return model
    config = CRATEConfig.from_dict({**ckpt["config"], **overrides})
    model = CRATE(config)
    state = dict(ckpt["model"])
    grid = config.img_size // config.patch_size
    state["pos_embed"] = resample_pos_embed(state["pos_embed"], (grid, grid))
    model.load_state_dict(state)
    return model


_OFFICIAL_TOP = {
    "cls_token": "cls_token",
    "pos_embedding": "pos_embed",
    "to_patch_embedding.1.weight": "patch_embed.norm_in.weight",
    "to_patch_embedding.1.bias": "patch_embed.norm_in.bias",
    "to_patch_embedding.2.weight": "patch_embed.proj.weight",
    "to_patch_embedding.2.bias": "patch_embed.proj.bias",
    "to_patch_embedding.3.weight": "patch_embed.norm_out.weight",
    "to_patch_embedding.3.bias": "patch_embed.norm_out.bias",
    "mlp_head.0.weight": "norm.weight",
    "mlp_head.0.bias": "norm.bias",
    "mlp_head.1.weight": "head.weight",
    "mlp_head.1.bias": "head.bias",
}
_OFFICIAL_LAYER = {
    "0.norm.weight": "norm1.weight",
    "0.norm.bias": "norm1.bias",
    "0.fn.qkv.weight": "attn.qkv.weight",
    "0.fn.to_out.0.weight": "attn.proj.weight",
    "0.fn.to_out.0.bias": "attn.proj.bias",
    "1.norm.weight": "norm2.weight",
    "1.norm.bias": "norm2.bias",
    "1.fn.weight": "mlp.weight",
}
_LAYER_KEY = re.compile(r"^transformer\.layers\.(\d+)\.(.+)$")


def _unwrap(state: dict) -> dict:
    """Strip the usual wrappers: ``{"model": ...}``, ``{"state_dict": ...}``, ``module.`` prefixes."""
    for key in ("model", "state_dict", "model_state_dict"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _read_state(source: str | os.PathLike | dict) -> dict:
    """A state dict as given, or read from a ``.pth``/``.pt`` file (tensors only)."""
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def convert_official_state_dict(state: dict) -> dict:
    """Map an official CRATE state dict onto cratelib's parameter names.

    Raises:
        KeyError: naming the official keys that have no cratelib counterpart, or that are missing.
    """
    state = _unwrap(state)
    out, unexpected = {}, []
    for key, value in state.items():
        if key in _OFFICIAL_TOP:
            out[_OFFICIAL_TOP[key]] = value
            continue
        m = _LAYER_KEY.match(key)
        if m and m.group(2) in _OFFICIAL_LAYER:
            out[f"blocks.{m.group(1)}.{_OFFICIAL_LAYER[m.group(2)]}"] = value
        else:
            unexpected.append(key)
    missing = sorted(set(_OFFICIAL_TOP) - set(state))
    if unexpected or missing:
        hint = ("; it has conv1.weight and ODL dictionaries: a CRATE-alpha file, load it with "
                "cratelib.load_crate_alpha_checkpoint" if "conv1.weight" in state else
                "; these are CRATE-MAE weights: load them with cratelib.load_official_mae_checkpoint"
                if any(k.startswith("decoder_blocks.") for k in state) else "")
        raise KeyError(
            f"not an official CRATE state dict: unexpected keys {sorted(unexpected)[:20]}, "
            f"missing keys {missing[:20]} (expected the names of Ma-Lab-Berkeley/CRATE model/crate.py){hint}"
        )
    return out


def official_state_dict(model: CRATE) -> dict:
    """``model``'s state dict under the official parameter names: the inverse of
    :func:`convert_official_state_dict` (a file in the format of the released weights)."""
    return _renamed(model, _OFFICIAL_TOP, _OFFICIAL_LAYER)


def _renamed(model: CRATE, top: dict[str, str], layer: dict[str, str]) -> dict:
    """``model``'s tensors under released names: ``top`` maps a released name to ours, ``layer``
    does the same inside block ``i`` (``transformer.layers.<i>.<name>`` <- ``blocks.<i>.<ours>``)."""
    ours = model.state_dict()
    state = {name: ours[mine] for name, mine in top.items()}
    for i in range(model.config.depth):
        state |= {f"transformer.layers.{i}.{name}": ours[f"blocks.{i}.{mine}"] for name, mine in layer.items()}
    return state


def load_official_checkpoint(
    source: str | os.PathLike | dict,
    num_heads: int | None = None,
    img_size: int | None = None,
    **overrides: Any,
) -> CRATE:
    """Build the matching :class:`CRATE` from weights released with the official implementation.

    Width, depth, patch size, class count and training resolution are read from the tensor
    shapes; the number of heads is not visible in them and defaults to the official size table
    (:data:`OFFICIAL_HEADS`). ``img_size`` other than the training one interpolates the positions
    (the evaluations run at 480 px).

    Args:
        source: path to a ``.pth``/``.pt`` file or an already loaded state dict.
        num_heads: K, if the checkpoint is not one of the official sizes.
        img_size: resolution to run at (default: the one the weights were trained at).
        overrides: further :class:`CRATEConfig` fields that the weights leave open (e.g.
            ``residual_from_norm``, ``step_size``, ``fused_attn``).

    Raises:
        ValueError: an override of a field the weights determine (``num_classes``, ``dim``,
            ``depth``, ``patch_size``, ``head_dim``, ``attn``, ``mlp``, ``patch_norm``) with
            another value than the one read from them; to change the classifier, call
            ``model.reset_classifier(n)`` on the loaded model.
    """
    state = convert_official_state_dict(_read_state(source))
    dim = state["cls_token"].shape[-1]
    patch_dim = state["patch_embed.proj.weight"].shape[1]
    in_chans = overrides.pop("in_chans", 3)  # the official code always uses 3 channels
    patch = math.isqrt(patch_dim // in_chans)
    if in_chans * patch * patch != patch_dim:
        raise ValueError(f"patch projection input {patch_dim} is not {in_chans} x P x P for any patch size P")
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    grid = math.isqrt(state["pos_embed"].shape[1] - 1)
    if num_heads is None:
        if dim not in OFFICIAL_HEADS:
            raise ValueError(f"width {dim} is not an official CRATE size {sorted(OFFICIAL_HEADS)}; pass num_heads")
        num_heads = OFFICIAL_HEADS[dim]
    inner = state["blocks.0.attn.qkv.weight"].shape[0]  # K * p
    if inner % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide the {inner} rows of the weights' subspace projection")
    read = dict(num_classes=state["head.weight"].shape[0], dim=dim, depth=depth, patch_size=patch,
                head_dim=inner // num_heads, attn="mssa", mlp="ista", patch_norm=True)  # official: MSSA + ISTA
    _reject_contradictions(overrides, read)
    if read["head_dim"] * num_heads == dim:
        read["head_dim"] = None  # the default d / K
    config = CRATEConfig.from_dict(dict(img_size=grid * patch, in_chans=in_chans, num_heads=num_heads,
                                        **read, **overrides))
    model = CRATE(config)
    model.load_state_dict(state, strict=True)
    if img_size is not None and img_size != config.img_size:
        model = _resize(model, img_size)
    return model


def _reject_contradictions(overrides: dict[str, Any], read: dict[str, Any],
                           loader: str = "load_official_checkpoint") -> None:
    """Remove from ``overrides`` the fields that agree with ``read`` (the values the weights
    determine); raise ``ValueError`` naming every field that disagrees and the value read."""
    wrong = []
    for key in sorted(set(overrides) & set(read)):
        value = overrides.pop(key)
        if value != read[key]:
            wrong.append(f"{key}={value!r} (the weights have {key}={read[key]!r})")
    if wrong:
        raise ValueError(
            f"{loader} reads these fields from the weights and cannot change them: {', '.join(wrong)}. "
            "To train on other classes, load the checkpoint and call model.reset_classifier(num_classes); "
            "for another architecture, build it with cratelib.create_model."
        )


def _resize(model: CRATE, img_size: int) -> CRATE:
    """Re-grid the learned positions of ``model`` for square images of ``img_size`` pixels."""
    grid = img_size // model.patch_size
    model.config = CRATEConfig.from_dict({**model.config.to_dict(), "img_size": img_size})
    model.pos_embed = torch.nn.Parameter(resample_pos_embed(model.pos_embed.data, (grid, grid)))
    return model
