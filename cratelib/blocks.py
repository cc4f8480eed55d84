"""The two CRATE operators as layers, and the ViT parts they are compared with.

Tokens are rows: every layer maps ``x: (B, N, d) -> (B, N, d)`` (N includes the CLS token).

* :class:`MSSA` - multi-head *subspace* self-attention, eq. (5): one gradient step on the
  compression term ``Rc(Z | U_[K])`` (eq. 6). One bias-free projection ``U^T = [U_1 .. U_K]^T``
  gives the query, the key *and* the value of head k, ``U_k^T z``.
* :class:`ISTA` - one proximal-gradient step on a (non-negative) LASSO with dictionary D, eq. (7):
  ``ReLU(z + eta D^T (z - D z) - eta lambda)``; with ``nonnegative=False`` the soft-threshold
  variant of the paper's Fig. 13 (CRATE-sth).
* :class:`MHSA` and :class:`MLP` - a ViT's attention (separate q, k, v) and feed-forward block,
  for the baselines and the ablations of Table 2.
* :class:`ODL` (CRATE-alpha, arXiv 2405.20299) and :class:`~cratelib.tssa.TSSA` (ToST, arXiv
  2412.17810, in :mod:`cratelib.tssa`): the white-box family's successors of ISTA and MSSA.

Every attention layer has two paths: ``F.scaled_dot_product_attention`` (fast, no weights) and an
explicit softmax that can record its internals. :func:`cratelib.trace.trace` switches a layer to the
explicit path by giving it a ``record`` dict; nothing else in the model changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["MSSA", "MHSA", "ISTA", "ODL", "MLP", "Block"]


class _Attention(nn.Module):
    """Shared head bookkeeping and the two attention paths (fused and explicit)."""

    def __init__(self, num_heads: int, head_dim: int, attn_drop: float, fused_attn: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        self.attn_drop = attn_drop
        self.fused_attn = fused_attn
        self.record: dict[str, torch.Tensor] | None = None  # set by cratelib.trace

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Softmax attention of ``q, k, v: (B, H, N, p)``; returns ``(B, H, N, p)``."""
        drop = self.attn_drop if self.training else 0.0
        if self.fused_attn and self.record is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)  # (B, H, N, N)
        if self.record is not None:
            self.record.update(q=q.detach(), k=k.detach(), v=v.detach(), attn=attn.detach())
        attn = F.dropout(attn, drop)
        return attn @ v


class MSSA(_Attention):
    """Multi-head subspace self-attention, eq. (5), as in the official CRATE code (Alg. 2).

    ``qkv`` holds the stacked subspace bases ``[U_1, ..., U_K]^T`` (no bias): its output split into
    K heads of width p is ``U_k^T z`` and serves as query, key and value. ``proj`` maps the K
    head outputs back to d; it plays the role of ``[U_1, ..., U_K]`` in eq. (5) and absorbs the
    constant ``p / ((N+1) eps^2)`` and the step size ``kappa`` of eq. (6). The residual ``Z + MSSA(Z)``
    is added by :class:`Block`.

    Args:
        dim: token width d.
        num_heads: number of subspaces K.
        head_dim: subspace dimension p (default d / K).
        attn_drop, proj_drop: dropout rates.
        fused_attn: use ``scaled_dot_product_attention`` when weights are not recorded.
        proj_bias: bias of the output projection (official CRATE: True; CRATE-alpha: False).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        proj_bias: bool = True,
    ) -> None:
        head_dim = head_dim or dim // num_heads
        super().__init__(num_heads, head_dim, attn_drop, fused_attn)
        self.qkv = nn.Linear(dim, num_heads * head_dim, bias=False)  # U^T
        self.proj = nn.Linear(num_heads * head_dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)``."""
        w = rearrange(self.qkv(x), "b n (h p) -> b h n p", h=self.num_heads)  # U_k^T z
        out = self._attend(w, w, w)  # (B, H, N, p)
        return self.proj_drop(self.proj(rearrange(out, "b h n p -> b n (h p)")))


class MHSA(_Attention):
    """Standard multi-head self-attention with separate query, key and value projections (ViT).

    Args:
        dim: token width d.
        num_heads: number of heads.
        head_dim: width of one head (default d / num_heads).
        qkv_bias: bias on the q, k, v projection (timm's ViT default: True).
        attn_drop, proj_drop: dropout rates.
        fused_attn: use ``scaled_dot_product_attention`` when weights are not recorded.
        proj_bias: bias of the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        proj_bias: bool = True,
    ) -> None:
        head_dim = head_dim or dim // num_heads
        super().__init__(num_heads, head_dim, attn_drop, fused_attn)
        self.qkv = nn.Linear(dim, 3 * num_heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(num_heads * head_dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)``."""
        q, k, v = rearrange(self.qkv(x), "b n (t h p) -> t b h n p", t=3, h=self.num_heads)
        out = self._attend(q, k, v)  # (B, H, N, p)
        return self.proj_drop(self.proj(rearrange(out, "b h n p -> b n (h p)")))


class ODL(nn.Module):
    """CRATE-alpha's overcomplete dictionary learning block (arXiv 2405.20299, Sec. 3).

    Two changes to :class:`ISTA`. *Overcomplete*: the dictionary ``D`` is ``d x r d`` (r = 4), so a
    token ``x`` (a column in the paper) gets a code ``z`` in ``R^{r d}``. *Two steps from zero*: ISTA
    on ``min_z 1/2 ||x - D z||^2 + lambda ||z||_1, z >= 0`` started at ``z0 = 0``::

        z1 = ReLU(eta D^T x - eta lambda)                     # the first step from zero
        z2 = ReLU(z1 - eta D^T (D z1 - x) - eta lambda)       # a second step

    and *decoupled, residual* output: the code is decoded by a second dictionary ``D1`` (``d x r d``,
    not tied to D) and added to the block's input, ``x + D1 z2`` (the residual is added by
    :class:`Block`, since ``residual = True``). One step from zero cannot do better than a
    thresholded correlation ``ReLU(eta D^T x - eta lambda)``, which is why the second step matters.
    As in the official ``torch_inference/model/crate_alpha.py``, ``x`` here is the LayerNorm'd
    token and the residual is the raw one.

    Args:
        dim: token width d.
        ratio: overcompleteness r (official: 4).
        step_size: eta (official: 0.1).
        lambd: lambda, the sparsity weight (official: 0.1).
    """

    residual = True

    def __init__(self, dim: int, ratio: int = 4, step_size: float = 0.1, lambd: float = 0.1) -> None:
        super().__init__()
        self.D = nn.Parameter(torch.empty(dim, ratio * dim))  # dictionary, d x r d
        self.D1 = nn.Parameter(torch.empty(dim, ratio * dim))  # decoding dictionary, d x r d
        nn.init.kaiming_uniform_(self.D)
        nn.init.kaiming_uniform_(self.D1)
        self.step_size = step_size
        self.lambd = lambd
        self.record: dict[str, torch.Tensor] | None = None  # set by cratelib.trace

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, r d)`` the sparse codes z2 after two ISTA steps from zero."""
        eta, threshold = self.step_size, self.step_size * self.lambd
        z1 = F.relu(eta * (x @ self.D) - threshold)  # rows of eta D^T x
        grad = (z1 @ self.D.t() - x) @ self.D  # rows of D^T (D z1 - x)
        return F.relu(z1 - eta * grad - threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)`` the decoded codes ``D1 z2`` (Block adds the residual)."""
        z = self.codes(x)
        if self.record is not None:
            self.record["codes"] = z.detach()
        return z @ self.D1.t()


class ISTA(nn.Module):
    """One ISTA step on a LASSO with a learned dictionary D, eq. (7).

    For a token z (a column in the paper) and ``X = Z`` as the starting point, one proximal-gradient
    step on ``min_x 1/2 ||z - D x||^2 + lambda ||x||_1`` (with ``x >= 0``) is
    ``ReLU(z + eta D^T (z - D z) - eta lambda)``. With ``nonnegative=False`` the proximal map is
    the soft threshold ``sign(v) max(|v| - eta lambda, 0)`` (CRATE-sth, the paper's Fig. 13).
    The block has no residual connection: its output *is* the new representation.

    Args:
        dim: token width d (D is d x d, as in the official code).
        step_size: eta (official: 0.1).
        lambd: lambda, the sparsity weight (official: 0.1).
        nonnegative: ReLU (True, CRATE) or soft-threshold (False, CRATE-sth).
    """

    residual = False

    def __init__(self, dim: int, step_size: float = 0.1, lambd: float = 0.1, nonnegative: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))  # D
        nn.init.kaiming_uniform_(self.weight)
        self.step_size = step_size
        self.lambd = lambd
        self.nonnegative = nonnegative
        self.record: dict[str, torch.Tensor] | None = None  # set by cratelib.trace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)`` sparse codes."""
        residual = x - F.linear(x, self.weight)  # rows of (z - D z)^T
        v = x + self.step_size * F.linear(residual, self.weight.t())  # z + eta D^T (z - D z)
        threshold = self.step_size * self.lambd
        if self.nonnegative:
            out = F.relu(v - threshold)
        else:
            out = torch.sign(v) * F.relu(v.abs() - threshold)
        if self.record is not None:
            self.record["codes"] = out.detach()
        return out


class MLP(nn.Module):
    """A ViT's feed-forward block ``fc2(GELU(fc1(x)))``, used with a residual connection.

    Args:
        dim: token width d.
        hidden_dim: width of the hidden layer (ViT: 4 d).
        drop: dropout rate.
    """

    residual = True

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)
        self.record: dict[str, torch.Tensor] | None = None  # set by cratelib.trace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)``."""
        out = self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
        if self.record is not None:
            self.record["codes"] = out.detach()
        return out


class Block(nn.Module):
    """One layer, eq. (8): ``Z_{l+1/2} = Z_l + MSSA(LN(Z_l))``, ``Z_{l+1} = ISTA(LN(Z_{l+1/2}))``.

    The attention and the second sub-block are injected, so the same class builds CRATE
    (MSSA + ISTA), the ablations (MSSA + MLP, MHSA + ISTA), a ViT (MHSA + MLP), CRATE-alpha
    (MSSA + ODL) and ToST (TSSA + ISTA). A second sub-block with ``residual = True`` (the MLP,
    ODL) is added to its input; ISTA is not.

    Args:
        dim: token width d.
        attn: the attention module (MSSA or MHSA).
        mlp: the second sub-block (ISTA or MLP).
        residual_from_norm: add the *normalised* input as the residual (the paper's Alg. 1 line 15
            and Alg. 3) instead of the raw input (the official ``model/crate.py``, the default,
            which the released checkpoints need).
        norm_eps: epsilon of the two LayerNorms (PyTorch's 1e-5; CRATE-alpha's code uses 1e-6).
    """

    def __init__(self, dim: int, attn: nn.Module, mlp: nn.Module, residual_from_norm: bool = False,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = attn
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = mlp
        self.residual_from_norm = residual_from_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)``."""
        h = self.norm1(x)
        x = self.attn(h) + (h if self.residual_from_norm else x)
        out = self.mlp(self.norm2(x))
        return x + out if self.mlp.residual else out
