"""Coding rates and the sparse rate reduction objective (eq. (2)).

The CRATE papers (arXiv 2306.01129, Sec. 2; arXiv 2308.16271, Sec. 2, eq. (2)) write a set of N
tokens as a matrix Z in R^{d x N} whose *columns* are the tokens. cratelib follows PyTorch and
puts tokens in ROWS: ``Z`` has shape ``(..., N, d)``, where ``...`` are optional batch dimensions.
Every formula below is the paper's formula with Z replaced by its transpose; for example the
paper's Gram matrix ``Z Z^*`` (d x d) is ``Z^T Z`` here.

The K local signal models ("subspaces") are a tensor ``U`` of shape ``(K, d, p)``: ``U[k]`` is a
d x p matrix with (close to) orthonormal columns, the basis U_k of the k-th subspace. The
projection of all tokens onto subspace k, the paper's ``U_k^* Z`` (p x N), is ``Z @ U[k]``
(N x p) here.

Quantities (row form, eps is the coding precision):

* coding rate     R(Z)        = 1/2 logdet(I_d + d/(N eps^2) Z^T Z)
* compression     Rc(Z | U)   = sum_k 1/2 logdet(I_p + p/(N eps^2) (Z U_k)^T (Z U_k))
* rate reduction  dR(Z | U)   = R(Z) - Rc(Z | U)
* objective (2)   R(Z) - lam ||Z||_0 - Rc(Z | U)
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "coding_rate",
    "compression_rate",
    "rate_reduction",
    "l0_norm",
    "l1_norm",
    "sparsity_ratio",
    "sparse_rate_reduction",
    "compression_gradient",
    "random_subspaces",
    "sample_union_of_subspaces",
]


# ---------------------------------------------------------------------------------------------
# input checks (shared with cratelib.unrolling)
# ---------------------------------------------------------------------------------------------


def _check_tokens(Z: torch.Tensor, name: str = "Z") -> None:
    """Raise ValueError unless ``Z`` is a floating tensor of shape ``(..., N, d)`` with N, d >= 1."""
    if not isinstance(Z, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (..., N, d), got {type(Z).__name__}")
    if Z.dim() < 2:
        raise ValueError(
            f"{name} must have shape (..., N, d) (tokens as rows, at least 2 dims), "
            f"got shape {tuple(Z.shape)}"
        )
    if not Z.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {Z.dtype}")
    if Z.shape[-2] < 1 or Z.shape[-1] < 1:
        raise ValueError(f"{name} must have N >= 1 tokens and d >= 1 features, got shape {tuple(Z.shape)}")


def _check_bases(U: torch.Tensor, Z: torch.Tensor) -> None:
    """Raise ValueError unless ``U`` is ``(K, d, p)`` with Z's feature size d and Z's dtype."""
    if not isinstance(U, torch.Tensor):
        raise ValueError(f"U must be a torch.Tensor of shape (K, d, p), got {type(U).__name__}")
    if U.dim() != 3:
        raise ValueError(f"U must have shape (K, d, p) (K bases of size d x p), got shape {tuple(U.shape)}")
    if U.shape[1] != Z.shape[-1]:
        raise ValueError(
            f"U must have shape (K, d, p) with d = Z.shape[-1] = {Z.shape[-1]}, got shape {tuple(U.shape)}"
        )
    if U.dtype != Z.dtype:
        raise ValueError(f"U and Z must have the same dtype, got U {U.dtype} and Z {Z.dtype}")


def _check_positive(value: float, name: str) -> None:
    """Raise ValueError unless ``value`` is a positive number."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


# ---------------------------------------------------------------------------------------------
# coding rates
# ---------------------------------------------------------------------------------------------


def _logdet_identity_plus_gram(Z: torch.Tensor, alpha: float) -> torch.Tensor:
    """logdet(I_d + alpha Z^T Z) for ``Z`` of shape ``(..., N, d)``; returns shape ``(...)``.

    By Sylvester's determinant identity det(I_d + a Z^T Z) = det(I_N + a Z Z^T), so the
    determinant is taken of the smaller of the two Gram matrices, min(N, d) square. It is
    symmetric positive definite, and logdet = 2 sum log diag(L) for its Cholesky factor L.
    When rounding makes the factorisation fail (float32 with a huge dynamic range), those
    elements use logdet = sum_i log(1 + alpha s_i^2) over the singular values s_i of Z instead,
    which stays accurate where slogdet of the rounded matrix does not.
    """
    n, d = Z.shape[-2], Z.shape[-1]
    gram = Z @ Z.mT if n < d else Z.mT @ Z  # (..., m, m), m = min(N, d)
    eye = torch.eye(gram.shape[-1], dtype=Z.dtype, device=Z.device)
    L, info = torch.linalg.cholesky_ex(eye + alpha * gram)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    failed = info != 0
    if bool(failed.any()):
        from_svd = torch.log1p(alpha * torch.linalg.svdvals(Z).square()).sum(-1)
        logdet = torch.where(failed, from_svd, logdet)
    return logdet


def coding_rate(Z: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """Coding rate R(Z) of N tokens in R^d at precision eps (Sec. 2, the first term of eq. (2)).

    R(Z) = 1/2 logdet(I_d + d / (N eps^2) Z^T Z)   (row form; the paper writes Z Z^*).

    It is (a tight approximation of) the number of nats needed to code the tokens up to
    precision eps with a Gaussian codebook. Differentiable, batched, float32 or float64.

    Args:
        Z: tokens, shape ``(..., N, d)``.
        eps: coding precision, > 0.

    Returns:
        R(Z), shape ``(...)``.
    """
    _check_tokens(Z)
    _check_positive(eps, "eps")
    n, d = Z.shape[-2], Z.shape[-1]
    return 0.5 * _logdet_identity_plus_gram(Z, d / (n * eps**2))


def compression_rate(Z: torch.Tensor, U: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """Compression term Rc(Z | U_[K]) of eq. (2): the coding rate of the projections onto U_k.

    Rc(Z | U) = sum_k R(Z U_k) = sum_k 1/2 logdet(I_p + p / (N eps^2) (Z U_k)^T (Z U_k)).

    Each projection Z U_k has p features, so its coding rate uses the scale p / (N eps^2), as in
    arXiv 2306.01129, Sec. 2.

    Args:
        Z: tokens, shape ``(..., N, d)``.
        U: subspace bases, shape ``(K, d, p)``.
        eps: coding precision, > 0.

    Returns:
        Rc(Z | U), shape ``(...)``.
    """
    _check_tokens(Z)
    _check_bases(U, Z)
    projections = Z.unsqueeze(-3) @ U  # (..., K, N, p)
    return coding_rate(projections, eps).sum(-1)


def rate_reduction(Z: torch.Tensor, U: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """Rate reduction dR(Z | U_[K]) = R(Z) - Rc(Z | U_[K]) (eq. (2) without the sparsity term).

    Args:
        Z: tokens, shape ``(..., N, d)``.
        U: subspace bases, shape ``(K, d, p)``.
        eps: coding precision, > 0.

    Returns:
        dR, shape ``(...)``.
    """
    return coding_rate(Z, eps) - compression_rate(Z, U, eps)


# ---------------------------------------------------------------------------------------------
# sparsity
# ---------------------------------------------------------------------------------------------


def l0_norm(Z: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """||Z||_0 of eq. (2): the number of entries with |z| > tol (a count, not differentiable).

    Args:
        Z: tokens, shape ``(..., N, d)``.
        tol: entries with absolute value <= tol count as zero, >= 0.

    Returns:
        the count, shape ``(...)``, dtype of ``Z``.
    """
    _check_tokens(Z)
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    return (Z.detach().abs() > tol).to(Z.dtype).sum((-2, -1))


def l1_norm(Z: torch.Tensor) -> torch.Tensor:
    """||Z||_1, the convex surrogate of ||Z||_0 that the LASSO / ISTA step minimises (eq. (7)).

    Args:
        Z: tokens, shape ``(..., N, d)``.

    Returns:
        sum of absolute values, shape ``(...)``; differentiable.
    """
    _check_tokens(Z)
    return Z.abs().sum((-2, -1))


def sparsity_ratio(Z: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """Fraction of (near-)zero entries, 1 - ||Z||_0 / (N d): the "sparsity of the ISTA codes".

    Args:
        Z: tokens, shape ``(..., N, d)``.
        tol: entries with absolute value <= tol count as zero, >= 0.

    Returns:
        a fraction in [0, 1], shape ``(...)``.
    """
    return 1.0 - l0_norm(Z, tol) / (Z.shape[-2] * Z.shape[-1])


def sparse_rate_reduction(
    Z: torch.Tensor,
    U: torch.Tensor,
    lam: float,
    eps: float = 0.5,
    penalty: Literal["l0", "l1"] = "l0",
) -> torch.Tensor:
    """Sparse rate reduction, the objective of eq. (2): R(Z) - lam ||Z||_0 - Rc(Z | U_[K]).

    Args:
        Z: tokens, shape ``(..., N, d)``.
        U: subspace bases, shape ``(K, d, p)``.
        lam: weight of the sparsity penalty, >= 0.
        eps: coding precision, > 0.
        penalty: ``"l0"`` counts non-zeros as in eq. (2) (no gradient flows through it);
            ``"l1"`` uses ||Z||_1 instead, the convex surrogate, so the whole objective is
            differentiable.

    Returns:
        the objective, shape ``(...)``.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if penalty == "l0":
        sparsity_term = l0_norm(Z)
    elif penalty == "l1":
        sparsity_term = l1_norm(Z)
    else:
        raise ValueError(f"penalty must be 'l0' or 'l1', got {penalty!r}")
    return rate_reduction(Z, U, eps) - lam * sparsity_term


# ---------------------------------------------------------------------------------------------
# the gradient that MSSA approximates (eq. (6))
# ---------------------------------------------------------------------------------------------


def compression_gradient(Z: torch.Tensor, U: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """Closed-form gradient of Rc(Z | U_[K]) with respect to Z (the exact left side of eq. (6)).

    With P_k = Z U_k (N x p) and a = p / (N eps^2), R(P_k) = 1/2 logdet(I_N + a P_k P_k^T) has
    dR/dP_k = a (I_N + a P_k P_k^T)^{-1} P_k, and the chain rule through P_k = Z U_k gives

        grad_Z Rc = sum_k a (I_N + a P_k P_k^T)^{-1} P_k U_k^T
                  = sum_k a P_k (I_p + a P_k^T P_k)^{-1} U_k^T     (push-through identity).

    (Column form: sum_k a U_k U_k^* Z (I + a (U_k^* Z)^* (U_k^* Z))^{-1}, arXiv 2306.01129.)
    The linear system is solved with the smaller of the two matrices, min(N, p) square.

    Args:
        Z: tokens, shape ``(..., N, d)``.
        U: subspace bases, shape ``(K, d, p)``.
        eps: coding precision, > 0.

    Returns:
        the gradient, shape ``(..., N, d)``.
    """
    _check_tokens(Z)
    _check_bases(U, Z)
    _check_positive(eps, "eps")
    n, p = Z.shape[-2], U.shape[-1]
    a = p / (n * eps**2)
    P = Z.unsqueeze(-3) @ U  # (..., K, N, p)
    if n <= p:
        eye = torch.eye(n, dtype=Z.dtype, device=Z.device)
        L = torch.linalg.cholesky(eye + a * P @ P.mT)  # (..., K, N, N)
        dR_dP = a * torch.cholesky_solve(P, L)  # (..., K, N, p)
    else:
        eye = torch.eye(p, dtype=Z.dtype, device=Z.device)
        L = torch.linalg.cholesky(eye + a * P.mT @ P)  # (..., K, p, p)
        dR_dP = a * torch.cholesky_solve(P.mT, L).mT  # (..., K, N, p)
    return torch.einsum("...knp,kdp->...nd", dR_dP, U)


# ---------------------------------------------------------------------------------------------
# toy data: a union of subspaces
# ---------------------------------------------------------------------------------------------


def random_subspaces(
    K: int,
    d: int,
    p: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    mutually_orthogonal: bool = True,
) -> torch.Tensor:
    """K random p-dimensional subspaces of R^d, as orthonormal bases.

    Args:
        K: number of subspaces.
        d: ambient dimension.
        p: dimension of each subspace, p <= d.
        generator: optional CPU ``torch.Generator`` for reproducibility.
        dtype: floating dtype of the result.
        mutually_orthogonal: if True (needs K p <= d), the K subspaces are orthogonal to one
            another (all K p columns are orthonormal); if False each basis is drawn
            independently (the subspaces then overlap at random).

    Returns:
        U, shape ``(K, d, p)``, on the CPU, with U[k]^T U[k] = I_p.
    """
    if K < 1 or d < 1 or p < 1:
        raise ValueError(f"K, d, p must be >= 1, got K={K}, d={d}, p={p}")
    if p > d:
        raise ValueError(f"subspace dimension p must be <= d, got p={p}, d={d}")
    if mutually_orthogonal:
        if K * p > d:
            raise ValueError(
                f"mutually orthogonal subspaces need K * p <= d, got K={K}, p={p} (K*p={K * p}), d={d}"
            )
        gaussian = torch.randn(d, K * p, generator=generator, dtype=torch.float64)
        Q = torch.linalg.qr(gaussian).Q  # (d, K p), orthonormal columns
        U = Q.reshape(d, K, p).permute(1, 0, 2)
    else:
        gaussian = torch.randn(K, d, p, generator=generator, dtype=torch.float64)
        U = torch.linalg.qr(gaussian).Q  # (K, d, p)
    return U.to(dtype).contiguous()


def sample_union_of_subspaces(
    N: int,
    U: torch.Tensor,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """N tokens drawn from the union of the subspaces spanned by U, plus isotropic noise.

    Token i gets a uniform random label k_i in {0, ..., K-1} and is
    z_i = U_{k_i} c_i + noise * g_i, with c_i ~ N(0, I_p / p) (so E||U_k c_i||^2 = 1) and
    g_i ~ N(0, I_d).

    Args:
        N: number of tokens, >= 1.
        U: subspace bases, shape ``(K, d, p)``.
        noise: standard deviation of the per-coordinate Gaussian noise, >= 0.
        generator: optional CPU ``torch.Generator`` for reproducibility.

    Returns:
        Z of shape ``(N, d)`` (dtype of U) and the labels, shape ``(N,)``, int64.
    """
    if N < 1:
        raise ValueError(f"N must be >= 1, got {N}")
    if not isinstance(U, torch.Tensor) or U.dim() != 3:
        shape = tuple(U.shape) if isinstance(U, torch.Tensor) else type(U).__name__
        raise ValueError(f"U must have shape (K, d, p), got {shape}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    K, d, p = U.shape
    labels = torch.randint(K, (N,), generator=generator)
    coefficients = torch.randn(N, p, generator=generator, dtype=U.dtype) / p**0.5  # (N, p)
    Z = torch.einsum("ndp,np->nd", U.cpu()[labels], coefficients)  # (N, d)
    if noise > 0:
        Z = Z + noise * torch.randn(N, d, generator=generator, dtype=U.dtype)
    return Z.to(U.device), labels.to(U.device)
