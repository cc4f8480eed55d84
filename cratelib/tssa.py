"""Token statistics self-attention (ToST, arXiv 2412.17810): the variational bound and its layer.

CRATE's MSSA is a gradient step on the compression term ``Rc(Z | U_[K])``, whose log-determinant
needs the N x N token Gram matrix of every head. ToST bounds it from above. For a PSD matrix M
and the concave ``log(1 + x)``, the eigenvalues majorise the diagonal (Schur-Horn), so
``logdet(I + M) <= sum_j log(1 + M_jj)``, with equality when M is diagonal. With soft memberships
``pi_k in [0, 1]^N`` of the tokens in the K groups, ``n_k = sum_i pi_ik``, and the projected
tokens ``w_ik = U_k^T z_i`` (p numbers each), the weighted compression term and its bound are
(rows are tokens, as everywhere in cratelib):

* weighted compression  ``Rc(W, Pi)    = sum_k n_k/(2N) logdet(I_p + alpha/n_k W_k^T diag(pi_k) W_k)``
* variational bound     ``Rc^var(W, Pi) = sum_k n_k/(2N) sum_j log(1 + alpha s_kj)``,
  with the second-moment statistic ``s_kj = 1/n_k sum_i pi_ik w_ikj^2`` (the diagonal of the
  matrix in the log-determinant, divided by alpha).

The bound needs only the K x p statistics, computed in one pass over the tokens: linear in N.
Its gradient with Pi held fixed is ``d Rc^var / d w_ik = (alpha/N) pi_ik w_ik / (1 + alpha s_k)``
(element-wise), so a gradient step ``z_i <- z_i - tau sum_k U_k (d Rc^var / d w_ik)`` moves every
token by its own projections, scaled per coordinate by a statistic of its group: that is TSSA,
:class:`TSSA`. With ``pi_ik = 1`` and ``alpha = p / eps^2`` the weighted term is CRATE's
``Rc(Z | U_[K])`` (:func:`cratelib.coding_rate.compression_rate`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["TSSA", "membership", "head_statistics", "variational_compression", "weighted_compression"]

_EPS = 1e-8  # added to n_k, as in the official code


def membership(w: torch.Tensor, temp: torch.Tensor) -> torch.Tensor:
    """Soft membership Pi of every token in every head (the paper's eq. (10), official form).

    As in the official ``tost_vision/tost.py``: each coordinate of a head's features is first
    normalised over the tokens, the token's score in head k is the sum of its squared normalised
    coordinates, ``sum_j w_ikj^2 / ||w_.kj||^2``, and Pi is a softmax over the heads of the scores
    times a learned per-head inverse temperature.

    Args:
        w: ``(B, K, N, p)`` projected tokens ``U_k^T z_i``.
        temp: ``(K, 1)`` inverse temperatures.

    Returns:
        ``(B, K, N)``, non-negative, summing to 1 over the K heads for every token.
    """
    score = F.normalize(w, dim=-2).square().sum(-1)  # (B, K, N)
    return torch.softmax(score * temp, dim=1)


def head_statistics(w: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """The second-moment statistic ``s_kj = sum_i pi_ik w_ikj^2 / n_k`` of every head.

    Args:
        w: ``(B, K, N, p)`` projected tokens.
        pi: ``(B, K, N)`` memberships.

    Returns:
        ``(B, K, p)``: the Pi-weighted mean of the squared features, one pass over the tokens.
    """
    weights = pi / (pi.sum(-1, keepdim=True) + _EPS)  # pi_ik / n_k
    return (weights.unsqueeze(-2) @ w.square()).squeeze(-2)


def _check(w: torch.Tensor, pi: torch.Tensor) -> None:
    """Raise ValueError unless ``w`` is ``(B, K, N, p)`` and ``pi`` is ``(B, K, N)``."""
    if w.dim() != 4 or pi.shape != w.shape[:3]:
        raise ValueError(f"expected w of shape (B, K, N, p) and pi of shape (B, K, N), "
                         f"got {tuple(w.shape)} and {tuple(pi.shape)}")


def variational_compression(w: torch.Tensor, pi: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """The variational bound ``Rc^var = sum_k n_k/(2N) sum_j log(1 + alpha s_kj)`` (module docstring).

    Args:
        w: ``(B, K, N, p)`` projected tokens.
        pi: ``(B, K, N)`` memberships (any non-negative weights).
        alpha: the scale inside the log (``p / eps^2`` in the rate; the trained layer absorbs it in
            U, which amounts to ``alpha = 1``).

    Returns:
        ``(B,)``.
    """
    _check(w, pi)
    n_k = pi.sum(-1)  # (B, K)
    rate = torch.log1p(alpha * head_statistics(w, pi)).sum(-1)  # (B, K)
    return (n_k * rate).sum(-1) / (2 * w.shape[-2])


def weighted_compression(w: torch.Tensor, pi: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """The weighted compression ``sum_k n_k/(2N) logdet(I_p + alpha/n_k W_k^T diag(pi_k) W_k)``,
    which :func:`variational_compression` bounds from above (module docstring).

    Args:
        w: ``(B, K, N, p)`` projected tokens.
        pi: ``(B, K, N)`` memberships.
        alpha: the scale inside the log-determinant.

    Returns:
        ``(B,)``.
    """
    _check(w, pi)
    n_k = pi.sum(-1)  # (B, K)
    gram = w.mT @ (pi.unsqueeze(-1) * w)  # (B, K, p, p) = W_k^T diag(pi_k) W_k
    eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
    logdet = torch.logdet(eye + alpha * gram / (n_k[..., None, None] + _EPS))
    return (n_k * logdet).sum(-1) / (2 * w.shape[-2])


class TSSA(nn.Module):
    """Token statistics self-attention, a gradient step on :func:`variational_compression`.

    For token i and head k, with ``w_ik = U_k^T z_i`` (``qkv``), memberships Pi
    (:func:`membership`) and statistics ``s_k`` (:func:`head_statistics`)::

        TSSA(Z)_i = proj( concat_k [ -pi_ik w_ik / (1 + s_k) ] )

    The bracket is ``-N`` times the gradient of ``Rc^var`` with respect to ``w_ik`` at ``alpha = 1``
    and Pi held fixed; ``proj`` plays the role of ``[U_1 .. U_K]`` and absorbs the step size
    ``tau / N`` (as MSSA's does). There is no N x N matrix: the cost is linear in N. Following
    the official ``AttentionTSSA`` (``tost_vision/tost.py``): ``qkv`` has a bias in the official
    vision models, ``temp`` (K x 1, initially 1) is Pi's learned inverse temperature, and
    attention dropout acts on the gains ``1 / (1 + s_k)``. The residual is added by
    :class:`~cratelib.blocks.Block`.

    With a ``record`` dict (set by :func:`cratelib.trace.trace`) the layer stores ``membership``
    ``(B, K, N)``, ``statistics`` ``(B, K, p)`` and the features ``k = v = w`` ``(B, K, N, p)``;
    it has no query-key attention to record.

    Args:
        dim: token width d.
        num_heads: number of groups (heads) K.
        head_dim: p (default d / K).
        qkv_bias: bias of the projection U^T (official ToST: True).
        attn_drop, proj_drop: dropout rates.
        proj_bias: bias of the output projection (official: True).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        proj_bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim = head_dim or dim // num_heads
        self.qkv = nn.Linear(dim, num_heads * head_dim, bias=qkv_bias)  # U^T
        self.temp = nn.Parameter(torch.ones(num_heads, 1))
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(num_heads * head_dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)
        self.record: dict[str, torch.Tensor] | None = None  # set by cratelib.trace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, N, d) -> (B, N, d)``."""
        w = rearrange(self.qkv(x), "b n (h p) -> b h n p", h=self.num_heads)
        pi = membership(w, self.temp)  # (B, K, N)
        stats = head_statistics(w, pi)  # (B, K, p)
        gain = self.attn_drop(1.0 / (1.0 + stats)).unsqueeze(-2)  # (B, K, 1, p)
        out = -(pi.unsqueeze(-1) * w) * gain  # (B, K, N, p)
        if self.record is not None:
            self.record.update(membership=pi.detach(), statistics=stats.detach(), k=w.detach(), v=w.detach())
        return self.proj_drop(self.proj(rearrange(out, "b h n p -> b n (h p)")))
