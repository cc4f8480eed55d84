"""The derivation as code: functional reference forms of the two CRATE operators.

CRATE's layer (eq. (8)) is one step of alternating optimisation of the sparse rate reduction
objective (eq. (2)):

1. compression: a gradient step on Rc(Z | U_[K]) (eq. (6)), whose approximation is the
   multi-head subspace self-attention MSSA (eq. (5));
2. sparsification: one proximal-gradient (ISTA) step on a LASSO problem with dictionary D
   (eq. (7)).

These functions are plain tensor code with no parameters to learn. The model's layers in
``cratelib.blocks`` are tested against them, and the book chapters show them.

Tokens are rows: ``Z`` has shape ``(..., N, d)``, the transpose of the paper's d x N matrix (see
``cratelib.coding_rate``). ``U`` has shape ``(K, d, p)``; ``D`` has shape ``(d, m)``.
"""

from __future__ import annotations

import torch

from cratelib.coding_rate import _check_bases, _check_positive, _check_tokens, compression_gradient

__all__ = [
    "rc_gradient_step",
    "mssa_operator",
    "mssa_gradient_approx",
    "lasso_objective",
    "ista_step",
    "ista_block_reference",
]


# ---------------------------------------------------------------------------------------------
# compression: gradient step on Rc and its MSSA approximation (eqs. (5), (6))
# ---------------------------------------------------------------------------------------------


def rc_gradient_step(Z: torch.Tensor, U: torch.Tensor, eps: float, kappa: float) -> torch.Tensor:
    """Exact gradient step on the compression term, the left side of eq. (6).

    Z - kappa * grad_Z Rc(Z | U_[K]), with the closed-form gradient of
    :func:`cratelib.coding_rate.compression_gradient` (N = number of rows of Z).

    Args:
        Z: tokens, shape ``(..., N, d)``.
        U: subspace bases, shape ``(K, d, p)``.
        eps: coding precision, > 0.
        kappa: step size, > 0.

    Returns:
        the updated tokens, shape ``(..., N, d)``.
    """
    _check_positive(kappa, "kappa")
    return Z - kappa * compression_gradient(Z, U, eps)


def mssa_operator(Z: torch.Tensor, U: torch.Tensor, eps: float = 0.5, scale: float = 1.0) -> torch.Tensor:
    """Multi-head subspace self-attention, eq. (5), in row form.

    MSSA(Z | U_[K]) = c * sum_k softmax(scale * (Z U_k)(Z U_k)^T) (Z U_k) U_k^T,
    c = p / (n eps^2),

    where n is the number of rows of Z and the softmax runs over keys (the last axis). With
    the CLS token included, n = N + 1 and c = p / ((N + 1) eps^2), the constant of eq. (5) of
    arXiv 2308.16271. Head k uses the projection P_k = Z U_k as query, key and value at once.

    Where it comes from (arXiv 2306.01129, Sec. 2.3). With a = p / (n eps^2) and the Gram
    matrix G_k = P_k P_k^T (n x n), the exact gradient is

        grad_Z Rc = a sum_k (I + a G_k)^{-1} P_k U_k^T.

    Three approximations turn the step Z - kappa grad_Z Rc into eq. (6):

    1. first-order Neumann series, valid for small a ||G_k||: (I + a G_k)^{-1} ~ I - a G_k,
       so grad_Z Rc ~ a sum_k P_k U_k^T - a^2 sum_k G_k P_k U_k^T;
    2. the subspaces are orthogonal and together span R^d (K p = d), so
       sum_k P_k U_k^T = Z sum_k U_k U_k^T ~ Z;
    3. the unnormalised similarity G_k is replaced by the row-normalised softmax(G_k). For
       small similarities softmax(G_k) ~ (1 1^T + G_k) / n: besides the 1/n scale this adds a
       query-independent mean of the values, so only the direction of the second-order term
       is kept, and only roughly (``tests/test_unrolling.py`` measures it).

    The result is Z - kappa grad_Z Rc ~ (1 - kappa a) Z + kappa a MSSA(Z | U_[K])
    (:func:`mssa_gradient_approx`).

    The model layer (``cratelib.blocks``, Alg. 2, official code) differs in two ways: c is
    absorbed into its learned output projection, and the softmax uses scale = p ** -0.5 as in
    standard attention. Pass ``scale=p ** -0.5`` here to match it; the default 1.0 is eq. (5)
    as written.

    Args:
        Z: tokens, shape ``(..., n, d)`` (may include the CLS token).
        U: subspace bases, shape ``(K, d, p)``.
        eps: coding precision, > 0.
        scale: factor applied to the similarities before the softmax, > 0.

    Returns:
        MSSA(Z | U), shape ``(..., n, d)``.
    """
    _check_tokens(Z)
    _check_bases(U, Z)
    _check_positive(eps, "eps")
    _check_positive(scale, "scale")
    n, p = Z.shape[-2], U.shape[-1]
    c = p / (n * eps**2)
    P = Z.unsqueeze(-3) @ U  # (..., K, n, p)
    attention = torch.softmax(scale * P @ P.mT, dim=-1)  # (..., K, n, n)
    heads = attention @ P  # (..., K, n, p)
    return c * torch.einsum("...knp,kdp->...nd", heads, U)


def mssa_gradient_approx(Z: torch.Tensor, U: torch.Tensor, eps: float, kappa: float) -> torch.Tensor:
    """The MSSA approximation of the gradient step on Rc, the right side of eq. (6).

    (1 - kappa c) Z + kappa c MSSA(Z | U_[K]),   c = p / (n eps^2), n = rows of Z.

    Args:
        Z: tokens, shape ``(..., n, d)``.
        U: subspace bases, shape ``(K, d, p)``.
        eps: coding precision, > 0.
        kappa: step size, > 0.

    Returns:
        the updated tokens, shape ``(..., n, d)``.
    """
    _check_positive(kappa, "kappa")
    mssa = mssa_operator(Z, U, eps)
    c = U.shape[-1] / (Z.shape[-2] * eps**2)
    return (1.0 - kappa * c) * Z + kappa * c * mssa


# ---------------------------------------------------------------------------------------------
# sparsification: LASSO and one ISTA step (eq. (7))
# ---------------------------------------------------------------------------------------------


def _check_lasso(X: torch.Tensor, Z: torch.Tensor, D: torch.Tensor) -> None:
    """Raise ValueError unless X (..., N, m), Z (..., N, d) and D (d, m) fit together."""
    _check_tokens(X, "X")
    _check_tokens(Z, "Z")
    if not isinstance(D, torch.Tensor) or D.dim() != 2:
        shape = tuple(D.shape) if isinstance(D, torch.Tensor) else type(D).__name__
        raise ValueError(f"D must be a dictionary of shape (d, m), got {shape}")
    if D.shape[0] != Z.shape[-1]:
        raise ValueError(f"D must have shape (d, m) with d = Z.shape[-1] = {Z.shape[-1]}, got {tuple(D.shape)}")
    if X.shape[-1] != D.shape[1]:
        raise ValueError(f"X must have shape (..., N, m) with m = D.shape[1] = {D.shape[1]}, got {tuple(X.shape)}")
    if X.shape[:-1] != Z.shape[:-1]:
        raise ValueError(
            f"X (..., N, m) and Z (..., N, d) must agree on (..., N), got {tuple(X.shape)} and {tuple(Z.shape)}"
        )
    if not X.dtype == Z.dtype == D.dtype:
        raise ValueError(f"X, Z and D must have the same dtype, got {X.dtype}, {Z.dtype}, {D.dtype}")


def lasso_objective(X: torch.Tensor, Z: torch.Tensor, D: torch.Tensor, lam: float = 0.1) -> torch.Tensor:
    """LASSO objective of the sparse coding step: 1/2 ||Z - X D^T||_F^2 + lam ||X||_1.

    Row form of the paper's 1/2 ||Z - D X||_F^2 + lam ||X||_1: each token z ≈ D x.

    Args:
        X: codes, shape ``(..., N, m)``.
        Z: tokens, shape ``(..., N, d)``.
        D: dictionary, shape ``(d, m)``.
        lam: sparsity weight, >= 0.

    Returns:
        the objective per batch element, shape ``(...)``.
    """
    _check_lasso(X, Z, D)
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    residual = Z - X @ D.T  # (..., N, d)
    return 0.5 * residual.square().sum((-2, -1)) + lam * X.abs().sum((-2, -1))


def ista_step(
    X: torch.Tensor,
    Z: torch.Tensor,
    D: torch.Tensor,
    eta: float = 0.1,
    lam: float = 0.1,
    nonnegative: bool = True,
) -> torch.Tensor:
    """One proximal-gradient (ISTA) step on :func:`lasso_objective`.

    The smooth part f(X) = 1/2 ||Z - X D^T||^2 has gradient -(Z - X D^T) D, so the gradient
    step is V = X + eta (Z - X D^T) D. The proximal map of eta * g then gives

    * ``nonnegative=True``, g = lam ||X||_1 + indicator(X >= 0): X <- ReLU(V - eta lam)
      (CRATE, eq. (7));
    * ``nonnegative=False``, g = lam ||X||_1: X <- sign(V) max(|V| - eta lam, 0), soft
      thresholding (the CRATE-sth ablation, Fig. 13).

    The objective does not increase when eta <= 1 / ||D||_2^2 (once X is feasible).
    Defaults eta = lam = 0.1 are those of the official CRATE code.

    Args:
        X: current codes, shape ``(..., N, m)``.
        Z: tokens to code, shape ``(..., N, d)``.
        D: dictionary, shape ``(d, m)``.
        eta: step size, > 0.
        lam: sparsity weight, >= 0.
        nonnegative: ReLU (True) or soft thresholding (False).

    Returns:
        the new codes, shape ``(..., N, m)``.
    """
    _check_lasso(X, Z, D)
    _check_positive(eta, "eta")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    V = X + eta * (Z - X @ D.T) @ D  # (..., N, m)
    threshold = eta * lam
    if nonnegative:
        return torch.relu(V - threshold)
    return torch.sign(V) * torch.relu(V.abs() - threshold)


def ista_block_reference(
    Z: torch.Tensor,
    D: torch.Tensor,
    eta: float = 0.1,
    lam: float = 0.1,
    nonnegative: bool = True,
) -> torch.Tensor:
    """The CRATE ISTA block, eq. (7): one ISTA step started from the codes X = Z.

    Row form: ReLU(Z + eta (Z - Z D^T) D - eta lam); the paper's column form is
    ReLU(Z + eta D^* (Z - D Z) - eta lam 1). The official code's ``weight`` is D.

    Args:
        Z: tokens, shape ``(..., N, d)``.
        D: square dictionary, shape ``(d, d)``.
        eta: step size, > 0.
        lam: sparsity weight, >= 0.
        nonnegative: ReLU (CRATE) or soft thresholding (CRATE-sth).

    Returns:
        the block's output, shape ``(..., N, d)``.
    """
    if not isinstance(D, torch.Tensor) or D.dim() != 2 or D.shape[0] != D.shape[1]:
        shape = tuple(D.shape) if isinstance(D, torch.Tensor) else type(D).__name__
        raise ValueError(f"the ISTA block needs a square dictionary D of shape (d, d), got {shape}")
    return ista_step(Z, Z, D, eta=eta, lam=lam, nonnegative=nonnegative)
