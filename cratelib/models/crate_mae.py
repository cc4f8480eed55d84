"""CRATE-MAE: a white-box masked autoencoder (Pai et al., ICLR 2024, arXiv 2404.02446).

The encoder ``f = f_L o ... o f_1 o f_0`` is CRATE (eq. (8) of 2308.16271: ``Z + MSSA(LN Z)``, then
ISTA), run on *every* patch position, the masked ones replaced by one learned mask token, as in the
official code (``Ma-Lab-Berkeley/CRATE``, ``model/crate_ae/crate_ae.py``): unlike He et al.'s MAE,
the masked positions are not dropped before the encoder. The decoder ``g = g_L o ... o g_1``
undoes the encoder layer by layer: where an encoder layer compresses (an MSSA step *adds*
``MSSA(Z)``, a gradient step on the coding rate of eq. (6)) and then sparsifies (ISTA with a
dictionary D), a decoder layer first maps the sparse codes back with a learned dictionary and then
takes the compression step *backwards*::

    Y = D LN_1(Z),    g_l(Z) = Y - MSSA(LN_2(Y))        (official ``crate_decoder.py``)

Both halves have the same width, depth and number of heads; the encoder's ISTA uses ``lambda =
0.5`` (official default), positions are fixed 2-D sine-cosine tables, and the loss is the mean
squared error on the masked patches only (``norm_pix_loss=False``: the official default; with True
each target patch is standardised first, He et al.'s option).

``blocks="vit"`` builds the *same skeleton* with ViT blocks (MHSA + 4d MLP) in both halves: the
standard MAE of the same configuration, for comparing parameter counts (the official file's
``mae_vit_*``). Shapes: images ``(B, C, H, W)``, tokens ``(B, 1+N, d)`` with the [CLS] token first,
patches ``(B, N, P*P*C)`` flattened in ``(p1 p2 c)`` order, masks ``(B, N)`` bool, True = masked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from cratelib.blocks import ISTA, MHSA, MLP, MSSA, Block
from cratelib.models.crate import ConfigDict, PatchEmbed, check_images

__all__ = ["CRATEMAEConfig", "CRATEMAE", "CRATEMAEEncoder", "CRATEMAEDecoder", "DecoderBlock", "MAEOutput",
           "sincos_pos_embed", "num_visible", "random_mask", "patchify", "unpatchify", "masked_patch_loss"]


@dataclass
class CRATEMAEConfig(ConfigDict):
    """Hyper-parameters of a CRATE-MAE (defaults: the released CRATE-MAE-Base at 224 px, patch 16)."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    dim: int = 768  # d, shared by encoder and decoder
    depth: int = 12  # encoder layers L
    num_heads: int = 12  # K
    decoder_depth: int | None = None  # default: depth (one decoder layer per encoder layer)
    decoder_num_heads: int | None = None  # default: num_heads
    blocks: Literal["crate", "vit"] = "crate"  # "vit": the standard MAE of the same configuration
    mlp_ratio: float = 4.0  # ViT blocks only
    qkv_bias: bool = True  # ViT blocks only
    step_size: float = 0.1  # eta of the encoder's ISTA
    lambd: float = 0.5  # lambda of the encoder's ISTA (the official CRATE-MAE default)
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False
    pool: Literal["cls", "mean"] = "cls"  # the encoder's pooled feature (linear probes)
    fused_attn: bool = True
    check_inputs: bool = True

    def __post_init__(self) -> None:
        for name, allowed in {"blocks": ("crate", "vit"), "pool": ("cls", "mean")}.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"CRATEMAEConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name, heads in (("num_heads", self.num_heads), ("decoder_num_heads", self.decoder_heads)):
            if self.dim % heads:
                raise ValueError(f"dim={self.dim} is not divisible by {name}={heads}")
        if self.dim % 4:
            raise ValueError(f"dim={self.dim} must be a multiple of 4 (2-D sine-cosine positions)")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size={self.img_size} must be a multiple of patch_size={self.patch_size}")
        if not 0 < self.mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")

    @property
    def decoder_layers(self) -> int:
        return self.depth if self.decoder_depth is None else self.decoder_depth

    @property
    def decoder_heads(self) -> int:
        return self.num_heads if self.decoder_num_heads is None else self.decoder_num_heads

    def num_params(self) -> int:
        """Parameters of ``CRATEMAE(self)`` (counted on the meta device, nothing allocated)."""
        with torch.device("meta"):
            return CRATEMAE(self).num_params()


@lru_cache(maxsize=32)
def _sincos_table(dim: int, h: int, w: int) -> torch.Tensor:
    """``(h*w, dim)``: the first half of the features encodes the column, the second the row; each
    half is ``[sin(pos * omega_k), cos(pos * omega_k)]`` with ``omega_k = 10000^(-k / (dim/4))``."""
    quarter = dim // 4
    cpu = dict(dtype=torch.float64, device="cpu")  # cached: never on another default device
    omega = 10000.0 ** (-torch.arange(quarter, **cpu) / quarter)
    rows, cols = torch.meshgrid(torch.arange(h, **cpu), torch.arange(w, **cpu), indexing="ij")

    def axis(pos: torch.Tensor) -> torch.Tensor:
        angle = pos.reshape(-1, 1) * omega
        return torch.cat([angle.sin(), angle.cos()], dim=1)

    return torch.cat([axis(cols), axis(rows)], dim=1).float()


def sincos_pos_embed(dim: int, grid: tuple[int, int], num_prefix: int = 1) -> torch.Tensor:
    """Fixed 2-D sine-cosine positions ``(1, num_prefix + h*w, dim)`` (zeros for the prefix tokens),
    the table the official CRATE-MAE (after MAE and MoCo v3) uses; any grid, no interpolation."""
    table = _sincos_table(dim, int(grid[0]), int(grid[1]))
    return torch.cat([torch.zeros(num_prefix, dim, device="cpu"), table]).unsqueeze(0)


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """Patches left visible: ``floor(N (1 - ratio))``, the official count (rounded against float
    error, so that 10 patches at ratio 0.9 keep 1, not 0)."""
    return math.floor(num_patches * (1 - mask_ratio) + 1e-9)


def random_mask(batch: int, num_patches: int, mask_ratio: float, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, N)`` bool, True = masked: per image, a uniformly random set of exactly
    ``N - num_visible(N, ratio)`` patches (the patches with the largest of N uniform draws).
    Draws on the generator's device (CPU for a CPU generator), then moves the mask to ``device``."""
    keep = num_visible(num_patches, mask_ratio)
    where = generator.device if generator is not None else device
    noise = torch.rand(batch, num_patches, generator=generator, device=where)
    order = noise.argsort(dim=1)
    mask = torch.zeros(batch, num_patches, dtype=torch.bool, device=where)
    mask.scatter_(1, order[:, keep:], True)
    return mask.to(device)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, N, P*P*C)``, patches in row-major order, pixels in ``(p1 p2 c)`` order."""
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch, p2=patch)


def unpatchify(patches: torch.Tensor, patch: int, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, P*P*C) -> (B, C, h P, w P)``."""
    return rearrange(patches, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=grid[0], w=grid[1], p1=patch, p2=patch)


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      norm_pix: bool = False) -> torch.Tensor:
    """Mean squared error per patch, averaged over the masked patches only.

    Args:
        pred, target: ``(B, N, P*P*C)``; ``target`` is the patchified input.
        mask: ``(B, N)`` bool, True = masked.
        norm_pix: standardise each target patch (its mean and unbiased variance, eps 1e-6) first.
    """
    if not mask.any():
        raise ValueError("the mask hides no patch: the reconstruction loss is defined on masked patches only")
    if norm_pix:
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = (pred.float() - target.float()).pow(2).mean(-1)  # (B, N)
    weight = mask.to(per_patch.dtype)
    return (per_patch * weight).sum() / weight.sum()


class DecoderBlock(nn.Module):
    """One CRATE-MAE decoder layer ``g_l``: ``Y = D LN_1(Z)``, then ``Y - MSSA(LN_2(Y))``.

    ``D`` (``weight``, d x d, no bias) maps sparse codes back to the subspaces (it plays the role of
    the ISTA dictionary, whose step it undoes); subtracting ``MSSA`` runs the compression step of
    eq. (6) in reverse, an expansion. ``x: (B, T, d) -> (B, T, d)``.
    """

    def __init__(self, dim: int, attn: MSSA) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.weight = nn.Parameter(torch.empty(dim, dim))  # D
        nn.init.kaiming_uniform_(self.weight)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(self.norm1(x), self.weight)
        return y - self.attn(self.norm2(y))


def _encoder_block(c: CRATEMAEConfig) -> Block:
    if c.blocks == "crate":
        return Block(c.dim, MSSA(c.dim, c.num_heads, fused_attn=c.fused_attn), ISTA(c.dim, c.step_size, c.lambd))
    return Block(c.dim, MHSA(c.dim, c.num_heads, qkv_bias=c.qkv_bias, fused_attn=c.fused_attn),
                 MLP(c.dim, int(c.dim * c.mlp_ratio)))


def _decoder_block(c: CRATEMAEConfig) -> nn.Module:
    if c.blocks == "crate":
        return DecoderBlock(c.dim, MSSA(c.dim, c.decoder_heads, fused_attn=c.fused_attn))
    return Block(c.dim, MHSA(c.dim, c.decoder_heads, qkv_bias=c.qkv_bias, fused_attn=c.fused_attn),
                 MLP(c.dim, int(c.dim * c.mlp_ratio)))


class CRATEMAEEncoder(nn.Module):
    """The encoder: patches (plain linear projection) -> mask tokens -> [CLS] -> positions -> L
    CRATE layers -> LayerNorm. With ``mask=None`` it encodes the whole image, which is what
    :func:`cratelib.trace.trace` and linear probes read (``forward_features``, ``forward_head``)."""

    num_prefix_tokens = 1

    def __init__(self, c: CRATEMAEConfig) -> None:
        super().__init__()
        self.config, self.patch_size = c, c.patch_size
        self.patch_embed = PatchEmbed(c.patch_size, c.in_chans, c.dim, norm=False)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.blocks = nn.ModuleList([_encoder_block(c) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)

    def patch_grid(self, x: torch.Tensor) -> tuple[int, int]:
        return x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``f_0``: images ``(B, C, H, W)`` -> ``(B, 1+N, d)``; masked patches become the mask token."""
        if self.config.check_inputs:
            check_images(x, self.config.in_chans, self.patch_size)
        tokens = self.patch_embed(x)
        if mask is not None:
            if mask.shape != tokens.shape[:2]:
                raise ValueError(f"mask must have shape (B, N) = {tuple(tokens.shape[:2])}, got {tuple(mask.shape)}")
            tokens = torch.where(mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        pos = sincos_pos_embed(tokens.shape[-1], self.patch_grid(x)).to(tokens.device, tokens.dtype)
        return tokens + pos

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, C, H, W)`` -> normalised output tokens ``(B, 1+N, d)``."""
        x = self.embed(x, mask)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        """Tokens ``(B, 1+N, d)`` -> pooled features ``(B, d)`` ([CLS] or the patch mean). The
        encoder has no classifier, so ``pre_logits`` changes nothing (timm's signature)."""
        return x[:, 0] if self.config.pool == "cls" else x[:, 1:].mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class CRATEMAEDecoder(nn.Module):
    """The decoder: L' inverse layers -> LayerNorm -> linear map to pixels; drops [CLS].
    ``(B, 1+N, d) -> (B, N, P*P*C)``."""

    def __init__(self, c: CRATEMAEConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_decoder_block(c) for _ in range(c.decoder_layers)])
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.pred = nn.Linear(c.dim, c.patch_size**2 * c.in_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))[:, 1:]


class MAEOutput(NamedTuple):
    loss: torch.Tensor  # () mean squared error on the masked patches
    pred: torch.Tensor  # (B, N, P*P*C) predicted patches (standardised ones if norm_pix_loss)
    mask: torch.Tensor  # (B, N) bool, True = masked


class CRATEMAE(nn.Module):
    """CRATE-MAE (``blocks="crate"``) or the standard MAE of the same configuration (``"vit"``).

    ``model(images) -> MAEOutput``: a fresh random mask (``config.mask_ratio``, drawn from torch's
    global generator) unless ``mask`` is given. ``forward_features``/``forward_head`` and
    :func:`cratelib.trace.trace` use the encoder on the whole, unmasked image.
    """

    checkpoint_arch = "crate_mae"  # the tag cratelib checkpoints carry to rebuild this class

    def __init__(self, config: CRATEMAEConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = c = CRATEMAEConfig.from_dict({**(config.to_dict() if config else {}), **overrides})
        self.patch_size = c.patch_size
        self.encoder = CRATEMAEEncoder(c)
        self.decoder = CRATEMAEDecoder(c)
        self.apply(self._init_weights)
        nn.init.normal_(self.encoder.cls_token, std=0.02)
        nn.init.normal_(self.encoder.mask_token, std=0.02)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """The official initialisation: Xavier-uniform linear layers, zero biases, unit LayerNorms
        (the dictionaries D keep their Kaiming-uniform start, as there)."""
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def random_mask(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A ``(B, N)`` mask of ``config.mask_ratio`` for ``images`` (see :func:`random_mask`)."""
        h, w = self.encoder.patch_grid(images)
        return random_mask(len(images), h * w, self.config.mask_ratio, images.device, generator)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> MAEOutput:
        """Encode the masked images, decode every patch, score the masked ones."""
        if mask is None:
            mask = self.random_mask(images)
        pred = self.decoder(self.encoder.forward_features(images, mask))
        loss = masked_patch_loss(pred, patchify(images, self.patch_size), mask, self.config.norm_pix_loss)
        return MAEOutput(loss, pred, mask)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)``: the visible patches as given, the masked ones as predicted (with
        ``norm_pix_loss`` the prediction is mapped back with each true patch's mean and spread)."""
        pred = self(images, mask).pred.float()
        target = patchify(images, self.patch_size).float()
        if self.config.norm_pix_loss:
            pred = pred * (target.var(-1, keepdim=True) + 1e-6).sqrt() + target.mean(-1, keepdim=True)
        mixed = torch.where(mask.unsqueeze(-1), pred, target)
        return unpatchify(mixed, self.patch_size, self.encoder.patch_grid(images)).to(images.dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's tokens of the whole image ``(B, 1+N, d)`` (no mask)."""
        return self.encoder.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        """Pooled encoder features ``(B, d)`` (what a linear probe reads)."""
        return self.encoder.forward_head(x, pre_logits)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
