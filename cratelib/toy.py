"""Small seeded experiments on toy data for the theory chapters (book chapters 2-4).

Each experiment builds data with a known structure (tokens on a union of subspaces, sparse codes
of a dictionary) and measures what the chapter's equations say about it with the library's own
functions (:mod:`cratelib.coding_rate`, :mod:`cratelib.unrolling`). Every one is small (float64,
at most a few hundred tokens) and seeded: it takes well under a second on a CPU. The figures of
the results are :mod:`cratelib.figures.theory`.

Conventions are cratelib's: tokens are rows, ``Z: (N, d)``; subspace bases ``U: (K, d, p)``;
dictionaries ``D: (d, m)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from cratelib.coding_rate import (
    coding_rate,
    compression_rate,
    random_subspaces,
    sample_union_of_subspaces,
)
from cratelib.unrolling import ista_step, lasso_objective, mssa_operator, rc_gradient_step

__all__ = [
    "gaussian_rate_formula",
    "rate_vs_dimension",
    "two_subspaces",
    "rate_reduction_vs_angle",
    "coding_rate_panels",
    "union_tokens",
    "cosine",
    "head_attention",
    "MSSAStepReport",
    "mssa_step_report",
    "mssa_step_reports",
    "sparse_coding_problem",
    "ista_trajectory",
    "ista_runs",
]


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- chapter 2: coding rate and rate reduction ---------------------------------------------


def gaussian_rate_formula(r: int, d: int, eps: float) -> float:
    """R of isotropic data on an r-dimensional subspace of R^d with E||z||^2 = 1, as N -> inf:
    the sample covariance has r eigenvalues 1/r, so R = r/2 log(1 + d / (r eps^2))."""
    return 0.5 * r * math.log1p(d / (r * eps**2))


def rate_vs_dimension(d: int = 32, N: int = 256, eps: float = 0.5, dims=None, seed: int = 0) -> dict:
    """Empirical R(Z) of N samples on a random r-dimensional subspace of R^d, for each r in dims,
    beside :func:`gaussian_rate_formula`. Returns ``{"r", "empirical", "formula"}`` lists."""
    dims = list(dims or [1, 2, 4, 8, 16, 32])
    emp, formula = [], []
    for r in dims:
        g = _seeded(seed)
        U = random_subspaces(1, d, r, generator=g, dtype=torch.float64)
        Z, _ = sample_union_of_subspaces(N, U, generator=g)
        emp.append(float(coding_rate(Z, eps)))
        formula.append(gaussian_rate_formula(r, d, eps))
    return {"r": dims, "empirical": emp, "formula": formula}


def two_subspaces(theta: float, p: int = 2, d: int = 16, N: int = 256, noise: float = 0.0,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens from two p-dimensional subspaces of R^d whose principal angles all equal ``theta``.

    ``U_1 = A`` and ``U_2 = cos(theta) A + sin(theta) B`` for orthonormal A, B with A ⟂ B, so
    theta = 0 is one subspace twice and theta = pi/2 two orthogonal subspaces.

    Returns:
        ``Z (N, d)``, ``U (2, d, p)``, labels ``(N,)``.
    """
    g = _seeded(seed)
    Q = torch.linalg.qr(torch.randn(d, 2 * p, generator=g, dtype=torch.float64)).Q
    A, B = Q[:, :p], Q[:, p:]
    U = torch.stack([A, math.cos(theta) * A + math.sin(theta) * B])
    Z, labels = sample_union_of_subspaces(N, U, noise=noise, generator=g)
    return Z, U, labels


def rate_reduction_vs_angle(eps: float = 0.5, p: int = 2, d: int = 16, N: int = 256,
                            degrees=None, seed: int = 0) -> dict:
    """R(Z), Rc(Z | U) with the true bases, and their difference, as the angle between two
    subspaces grows. Returns ``{"degrees", "R", "Rc", "dR"}`` lists."""
    degrees = list(degrees if degrees is not None else range(0, 91, 5))
    out = {"degrees": degrees, "R": [], "Rc": [], "dR": []}
    for deg in degrees:
        Z, U, _ = two_subspaces(math.radians(deg), p, d, N, seed=seed)
        R, Rc = float(coding_rate(Z, eps)), float(compression_rate(Z, U, eps))
        out["R"].append(R)
        out["Rc"].append(Rc)
        out["dR"].append(R - Rc)
    return out


def coding_rate_panels(eps: float = 0.5, p: int = 2, d: int = 16, N: int = 256, theta_deg: float = 30.0) -> dict:
    """The three experiments of chapter 2's figure: ``"lines"``: two lines in the plane at
    ``theta_deg`` (``Z, U, labels, R, Rc``); ``"dimension"``: :func:`rate_vs_dimension` (d = 32);
    ``"angle"``: :func:`rate_reduction_vs_angle`; and the settings."""
    Z2, U2, lab2 = two_subspaces(math.radians(theta_deg), p=1, d=2, N=200, noise=0.02, seed=1)
    return {
        "lines": {"Z": Z2, "U": U2, "labels": lab2, "R": float(coding_rate(Z2, eps)),
                  "Rc": float(compression_rate(Z2, U2, eps))},
        "dimension": rate_vs_dimension(d=32, N=N, eps=eps),
        "angle": rate_reduction_vs_angle(eps=eps, p=p, d=d, N=N),
        "settings": {"eps": eps, "p": p, "d": d, "N": N, "theta_deg": theta_deg},
    }


# --- chapter 3: MSSA as a compression step -------------------------------------------------


def union_tokens(K: int = 4, d: int = 32, p: int = 8, N: int = 128, noise: float = 0.1,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """N tokens from K mutually orthogonal p-dimensional subspaces of R^d plus noise, rows
    sorted by subspace (so attention matrices show blocks). Returns ``Z, U, labels``."""
    g = _seeded(seed)
    U = random_subspaces(K, d, p, generator=g, dtype=torch.float64)
    Z, labels = sample_union_of_subspaces(N, U, noise=noise, generator=g)
    order = torch.argsort(labels, stable=True)
    return Z[order], U, labels[order]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors seen as long vectors."""
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def head_attention(Z: torch.Tensor, U: torch.Tensor, head: int = 0, beta: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Head ``head`` of MSSA on tokens ``Z (N, d)``: the similarities ``G = P P^T`` of the
    projections ``P = Z U_k`` and the attention ``softmax(beta G)`` (rows = queries), each ``(N, N)``."""
    P = Z @ U[head]  # (N, p)
    G = P @ P.T
    return G, torch.softmax(beta * G, dim=-1)


@dataclass
class MSSAStepReport:
    """One compression step three ways, on the same tokens (see chapter 3)."""

    a: float  # p / (N eps^2), the constant of eqs. (5)-(6)
    rc_before: float
    rc_exact: float  # after Z - kappa grad Rc
    rc_mssa: float  # after (1 - kappa a) Z + kappa a MSSA(Z)
    rc_shrink: float  # after the first-order part alone, (1 - kappa a) Z
    cos_step: float  # cosine of the two whole updates (exact vs MSSA)
    cos_neumann: float  # second-order parts: exact vs the Neumann term a^2 G P U^T
    cos_softmax: float  # second-order parts: exact vs the MSSA term
    cos_softmax_centered: float  # ... after removing the softmax's mean-of-values term
    size_ratio: float  # ||MSSA second-order part|| / ||exact second-order part||


def mssa_step_report(Z: torch.Tensor, U: torch.Tensor, eps: float = 0.5, kappa: float = 1.0) -> MSSAStepReport:
    """Compare the exact gradient step on Rc with its approximations, term by term.

    Both updates share the first-order shrinkage ``-kappa a Z``; the remaining *second-order*
    parts are, exactly, ``-kappa a sum_k [(I + a G_k)^{-1} - I] P_k U_k^T`` and, in eq. (6),
    ``kappa a MSSA(Z)`` (with ``P_k = Z U_k``, ``G_k = P_k P_k^T``).
    """
    N, p = Z.shape[-2], U.shape[-1]
    a = p / (N * eps**2)
    exact = rc_gradient_step(Z, U, eps, kappa)
    shrink = (1 - kappa * a) * Z
    mssa_part = kappa * a * mssa_operator(Z, U, eps)
    approx = shrink + mssa_part
    P = torch.einsum("nd,kdp->knp", Z, U)
    neumann = kappa * a**2 * torch.einsum("knm,kmp,kdp->nd", P @ P.mT, P, U)
    mean_term = kappa * a**2 * torch.einsum("kp,kdp->d", P.mean(1), U)  # softmax ~ (11^T + G)/N
    exact_2nd = exact - shrink
    return MSSAStepReport(
        a=a,
        rc_before=float(compression_rate(Z, U, eps)),
        rc_exact=float(compression_rate(exact, U, eps)),
        rc_mssa=float(compression_rate(approx, U, eps)),
        rc_shrink=float(compression_rate(shrink, U, eps)),
        cos_step=cosine(exact - Z, approx - Z),
        cos_neumann=cosine(exact_2nd, neumann),
        cos_softmax=cosine(exact_2nd, mssa_part),
        cos_softmax_centered=cosine(exact_2nd, mssa_part - mean_term),
        size_ratio=float(mssa_part.norm() / exact_2nd.norm()),
    )


def mssa_step_reports(Z: torch.Tensor, U: torch.Tensor, kappa: float = 0.5,
                      eps_values: Sequence[float] = (0.5, 1.0, 2.0, 4.0)) -> list[MSSAStepReport]:
    """:func:`mssa_step_report` at each eps of ``eps_values``."""
    return [mssa_step_report(Z, U, e, kappa) for e in eps_values]


# --- chapter 4: ISTA -----------------------------------------------------------------------


def sparse_coding_problem(d: int = 32, N: int = 64, nonzeros: int = 4, noise: float = 0.05,
                          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens ``Z = X* D^T + noise`` with a square dictionary D (d x d, unit-norm columns, as in
    CRATE's ISTA block) and non-negative codes X* with ``nonzeros`` non-zero entries per token.

    Returns:
        ``Z (N, d)``, ``D (d, d)``, ``X_star (N, d)``.
    """
    g = _seeded(seed)
    D = torch.randn(d, d, generator=g, dtype=torch.float64)
    D = D / D.norm(dim=0, keepdim=True)
    X = torch.zeros(N, d, dtype=torch.float64)
    for i in range(N):
        support = torch.randperm(d, generator=g)[:nonzeros]
        X[i, support] = 0.5 + torch.rand(nonzeros, generator=g, dtype=torch.float64)
    Z = X @ D.T + noise * torch.randn(N, d, generator=g, dtype=torch.float64)
    return Z, D, X


def ista_trajectory(Z: torch.Tensor, D: torch.Tensor, eta: float, lam: float, steps: int = 50,
                    X0: torch.Tensor | None = None, nonnegative: bool = True) -> dict:
    """Run ``steps`` ISTA iterations (:func:`cratelib.unrolling.ista_step`) from ``X0`` (default
    ``Z``, CRATE's choice). Returns ``{"objective", "sparsity", "X"}``: the LASSO objective per
    token and the fraction of zero entries after each step (index 0 = start), and the last codes."""
    X = Z.clone() if X0 is None else X0
    obj, sp = [float(lasso_objective(X, Z, D, lam)) / Z.shape[0]], [float((X == 0).double().mean())]
    for _ in range(steps):
        X = ista_step(X, Z, D, eta=eta, lam=lam, nonnegative=nonnegative)
        obj.append(float(lasso_objective(X, Z, D, lam)) / Z.shape[0])
        sp.append(float((X == 0).double().mean()))
    return {"objective": obj, "sparsity": sp, "X": X}


def ista_runs(Z: torch.Tensor, D: torch.Tensor, eta: float = 0.1, lam: float = 0.1, steps: int = 60) -> dict:
    """Chapter 4's three ISTA runs (:func:`ista_trajectory`): ReLU from ``X0 = Z`` (CRATE), ReLU
    from ``X0 = 0``, and the soft threshold from ``X0 = Z`` (CRATE-sth), keyed by their labels."""
    return {
        "ReLU, X0 = Z (CRATE)": ista_trajectory(Z, D, eta, lam, steps),
        "ReLU, X0 = 0": ista_trajectory(Z, D, eta, lam, steps, X0=torch.zeros_like(Z)),
        "soft threshold, X0 = Z (CRATE-sth)": ista_trajectory(Z, D, eta, lam, steps, nonnegative=False),
    }
