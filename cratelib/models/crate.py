"""The CRATE model (Sec. 2, Fig. 2, Alg. 1) and, by swapping its two sub-blocks, the ViT baseline.

``f = f_L o ... o f_1 o f_0`` (eq. 4): ``f_0`` embeds the patches and prepends the CLS token,
each ``f_l`` is a :class:`~cratelib.blocks.Block`, and the classifier reads the last CLS token
(eq. 9). The same skeleton with ``attn="mhsa", mlp="mlp"`` is a ViT, which is how the paper's
Table 2 frames its ablations (MSSA+ISTA, MSSA+MLP, MHSA+ISTA, MHSA+MLP). ``mlp="odl"`` is
CRATE-alpha's sparse coding block (arXiv 2405.20299) and ``attn="tssa"`` ToST's attention
(arXiv 2412.17810).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from cratelib.blocks import ISTA, MHSA, MLP, MSSA, ODL, Block
from cratelib.tssa import TSSA

__all__ = ["ConfigDict", "CRATEConfig", "CRATE", "resample_pos_embed", "check_images", "PatchEmbed"]


class ConfigDict:
    """``from_dict`` / ``to_dict`` of a config dataclass (:class:`CRATEConfig`, the MAE's config)."""

    @classmethod
    def from_dict(cls, d: dict):
        """Rebuild a config, naming any key that is not a field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CRATEConfig(ConfigDict):
    """Hyper-parameters of a CRATE / ViT model (defaults: CRATE-T/16 at 224 px, 1000 classes)."""

    img_size: int = 224  # training resolution; other resolutions interpolate the positions
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    dim: int = 384  # d
    depth: int = 12  # L
    num_heads: int = 6  # K
    head_dim: int | None = None  # p, default d / K
    attn: Literal["mssa", "mhsa", "tssa"] = "mssa"
    mlp: Literal["ista", "ista_sth", "mlp", "odl"] = "ista"
    mlp_ratio: float = 4.0  # hidden width of the MLP block (ViT); unused by ISTA and ODL
    odl_ratio: int = 4  # overcompleteness r of the ODL dictionaries (d x r d); ODL only
    step_size: float = 0.1  # eta of the ISTA / ODL block
    lambd: float = 0.1  # lambda of the ISTA / ODL block
    qkv_bias: bool = True  # MHSA and TSSA; MSSA's projection has no bias
    proj_bias: bool = True  # bias of the attention's output projection (CRATE-alpha: False)
    norm_eps: float = 1e-5  # epsilon of the blocks' LayerNorms (CRATE-alpha: 1e-6)
    residual_from_norm: bool = False  # Alg. 1 / Alg. 3 residual instead of the official one
    patch_norm: bool = True  # LayerNorm before and after the patch projection (official CRATE)
    pool: Literal["cls", "mean"] = "cls"
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    fused_attn: bool = True
    check_inputs: bool = True  # validate shapes, dtype and finiteness of the images

    def __post_init__(self) -> None:
        choices = {"attn": ("mssa", "mhsa", "tssa"), "mlp": ("ista", "ista_sth", "mlp", "odl"),
                   "pool": ("cls", "mean")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"CRATEConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.head_dim is None and self.dim % self.num_heads:
            raise ValueError(
                f"dim={self.dim} is not divisible by num_heads={self.num_heads}; pass head_dim explicitly"
            )
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size={self.img_size} must be a multiple of patch_size={self.patch_size}")


    def num_params(self, include_head: bool = True) -> int:
        """Parameters of ``CRATE(self)``, counted from the config without building the model
        (equals :meth:`CRATE.num_params`)."""
        d, inner = self.dim, self.num_heads * (self.head_dim or self.dim // self.num_heads)
        patch_dim = self.in_chans * self.patch_size**2
        norm = 2 * d  # a LayerNorm on d features: weight and bias
        embed = patch_dim * d + d + (2 * patch_dim + norm if self.patch_norm else 0)
        tokens = 1 + (self.img_size // self.patch_size) ** 2  # CLS + patch positions
        out = inner * d + (d if self.proj_bias else 0)  # the output projection
        qkv_bias = inner if self.qkv_bias else 0
        if self.attn == "mssa":  # U^T without bias
            attn = d * inner + out
        elif self.attn == "tssa":  # U^T, the inverse temperatures of Pi
            attn = d * inner + qkv_bias + self.num_heads + out
        else:  # q, k, v
            attn = 3 * (d * inner + qkv_bias) + out
        hidden = int(d * self.mlp_ratio)
        mlp = {"mlp": 2 * d * hidden + hidden + d, "odl": 2 * d * self.odl_ratio * d}.get(self.mlp, d * d)  # ISTA: D
        head = self.num_classes * d + self.num_classes if include_head and self.num_classes > 0 else 0
        return embed + d + tokens * d + self.depth * (2 * norm + attn + mlp) + norm + head


def resample_pos_embed(pos: torch.Tensor, new_grid: tuple[int, int], num_prefix: int = 1) -> torch.Tensor:
    """Bicubically resample learned positional embeddings to another patch grid.

    Args:
        pos: ``(1, num_prefix + h*w, d)`` embeddings of a square ``h x w`` grid.
        new_grid: target grid ``(h', w')``.
        num_prefix: leading non-patch tokens (CLS) kept as they are.

    Returns:
        ``(1, num_prefix + h'*w', d)``.
    """
    prefix, patches = pos[:, :num_prefix], pos[:, num_prefix:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"positional embedding has {patches.shape[1]} patch positions, not a square grid")
    if (side, side) == tuple(new_grid):
        return pos
    grid = rearrange(patches, "1 (h w) d -> 1 d h w", h=side)
    grid = F.interpolate(grid.float(), size=new_grid, mode="bicubic", align_corners=False).to(pos.dtype)
    return torch.cat([prefix, rearrange(grid, "1 d h w -> 1 (h w) d")], dim=1)


def check_images(x: torch.Tensor, in_chans: int, patch_size: int) -> None:
    """Raise a clear error unless ``x`` is a finite float batch ``(B, in_chans, H, W)`` with H and W
    multiples of ``patch_size``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected images of shape (B, {in_chans}, H, W), got {got}")
    if x.shape[1] != in_chans:
        raise ValueError(f"expected {in_chans} channels (B, {in_chans}, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected floating-point images (normalised float32/16), got dtype {x.dtype}")
    h, w = x.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {patch_size}")
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf values")


class PatchEmbed(nn.Module):
    """Cut ``(B, C, H, W)`` images into ``P x P`` patches and project them: ``(B, N, d)``.

    The flattening order inside a patch is ``(p1 p2 c)`` as in the official CRATE code, so its
    released weights load unchanged. ``norm=True`` is CRATE's LayerNorm -> Linear -> LayerNorm;
    ``norm=False`` is a ViT's plain linear patch projection.
    """

    def __init__(self, patch_size: int, in_chans: int, dim: int, norm: bool) -> None:
        super().__init__()
        self.patch_size = patch_size
        patch_dim = in_chans * patch_size * patch_size
        self.norm_in = nn.LayerNorm(patch_dim) if norm else nn.Identity()
        self.proj = nn.Linear(patch_dim, dim)
        self.norm_out = nn.LayerNorm(dim) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
        return self.norm_out(self.proj(self.norm_in(x)))


class CRATE(nn.Module):
    """CRATE (``attn="mssa", mlp="ista"``), its ablations, the ViT (``"mhsa"``, ``"mlp"``), CRATE-alpha
    (``"mssa"``, ``"odl"``) and ToST's attention in the CRATE body (``"tssa"``, ``"ista"``).

    Forward API (timm's): ``forward_features(x) -> (B, 1+N, d)`` tokens after the last layer,
    ``forward_head(tokens, pre_logits=False) -> (B, num_classes)``, ``forward(x)``. Per-layer
    tokens, attention and codes: :func:`cratelib.trace.trace`.
    """

    num_prefix_tokens = 1

    def __init__(self, config: CRATEConfig | None = None, **overrides) -> None:
        super().__init__()
        config = CRATEConfig.from_dict({**(config.to_dict() if config else {}), **overrides})
        self.config = c = config
        self.patch_size = c.patch_size
        self.depth = c.depth
        self.num_classes = c.num_classes
        self.patch_embed = PatchEmbed(c.patch_size, c.in_chans, c.dim, c.patch_norm)
        grid = c.img_size // c.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, c.dim))
        self.pos_drop = nn.Dropout(c.drop_rate)
        self.blocks = nn.ModuleList([Block(c.dim, self._make_attn(c), self._make_mlp(c), c.residual_from_norm,
                                           c.norm_eps) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.dim)  # the official mlp_head's LayerNorm
        self.head = nn.Linear(c.dim, c.num_classes) if c.num_classes > 0 else nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    @staticmethod
    def _make_attn(c: CRATEConfig) -> nn.Module:
        if c.attn == "mssa":
            return MSSA(c.dim, c.num_heads, c.head_dim, c.attn_drop_rate, c.drop_rate, c.fused_attn, c.proj_bias)
        if c.attn == "tssa":
            return TSSA(c.dim, c.num_heads, c.head_dim, c.qkv_bias, c.attn_drop_rate, c.drop_rate, c.proj_bias)
        return MHSA(c.dim, c.num_heads, c.head_dim, c.qkv_bias, c.attn_drop_rate, c.drop_rate, c.fused_attn,
                    c.proj_bias)

    @staticmethod
    def _make_mlp(c: CRATEConfig) -> nn.Module:
        if c.mlp == "mlp":
            return MLP(c.dim, int(c.dim * c.mlp_ratio), c.drop_rate)
        if c.mlp == "odl":
            return ODL(c.dim, c.odl_ratio, c.step_size, c.lambd)
        return ISTA(c.dim, c.step_size, c.lambd, nonnegative=c.mlp == "ista")

    def _check_inputs(self, x: torch.Tensor) -> None:
        check_images(x, self.config.in_chans, self.config.patch_size)

    def patch_grid(self, x: torch.Tensor) -> tuple[int, int]:
        """The ``(h, w)`` patch grid of images ``x: (B, C, H, W)``."""
        return x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``f_0``: images ``(B, C, H, W)`` -> tokens ``(B, 1+N, d)`` with CLS and positions."""
        if self.config.check_inputs:
            self._check_inputs(x)
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        return self.pos_drop(tokens + resample_pos_embed(self.pos_embed, self.patch_grid(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` -> output tokens ``Z_{L+1}: (B, 1+N, d)``."""
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens ``(B, 1+N, d)`` -> logits ``(B, num_classes)`` (or pooled features)."""
        x = x[:, 0] if self.config.pool == "cls" else x[:, 1:].mean(dim=1)
        x = self.norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classification head (fine-tuning, Table 3)."""
        self.num_classes = self.config.num_classes = num_classes
        self.head = nn.Linear(self.config.dim, num_classes) if num_classes > 0 else nn.Identity()

    def num_params(self, include_head: bool = True) -> int:
        """Number of parameters, with or without the classification head's Linear layer."""
        n = sum(p.numel() for p in self.parameters())
        return n if include_head else n - sum(p.numel() for p in self.head.parameters())
