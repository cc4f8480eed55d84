"""Experiments and figures of the theory chapters (book chapters 2-5).

Each chapter calls one or two functions from here, so that the chapter shows the mathematics and
the library code that implements it, not plotting boilerplate. Every experiment is small (float64,
at most a few hundred tokens) and seeded: a figure takes well under a second on a CPU.

Conventions are cratelib's: tokens are rows, ``Z: (N, d)``; subspace bases ``U: (K, d, p)``;
dictionaries ``D: (d, m)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from cratelib.coding_rate import (
    coding_rate,
    compression_rate,
    random_subspaces,
    sample_union_of_subspaces,
)
from cratelib.unrolling import lasso_objective, ista_step, mssa_operator, rc_gradient_step
from cratelib.figures.style import COLORS, styled

__all__ = [
    "gaussian_rate_formula",
    "rate_vs_dimension",
    "two_subspaces",
    "rate_reduction_vs_angle",
    "plot_coding_rate",
    "union_tokens",
    "cosine",
    "MSSAStepReport",
    "mssa_step_report",
    "plot_mssa_heads",
    "plot_mssa_vs_exact",
    "sparse_coding_problem",
    "ista_trajectory",
    "plot_ista",
    "plot_thresholds",
    "subspaces_of",
    "layer_statistics",
    "plot_layer_statistics",
]


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Chapter 2: coding rate and rate reduction
# ---------------------------------------------------------------------------------------------


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


@styled
def plot_coding_rate(eps: float = 0.5, p: int = 2, d: int = 16, N: int = 256, theta_deg: float = 30.0):
    """Chapter 2's figure: (a) two lines in the plane at ``theta_deg``; (b) R(Z) against the
    dimension of the data's subspace; (c) R, Rc and the rate reduction against the angle between
    two p-dimensional subspaces. Returns the matplotlib figure."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
    # (a) the geometry in R^2: two 1-D subspaces
    ax = axes[0]
    Z2, U2, lab2 = two_subspaces(math.radians(theta_deg), p=1, d=2, N=200, noise=0.02, seed=1)
    for k in range(2):
        pts = Z2[lab2 == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, color=COLORS[k], label=f"subspace {k + 1}")
        u = U2[k, :, 0] * 3
        ax.plot([-u[0], u[0]], [-u[1], u[1]], color=COLORS[k], lw=0.8, alpha=0.6)
    Rv, Rcv = float(coding_rate(Z2, eps)), float(compression_rate(Z2, U2, eps))
    ax.set_title(f"(a) two lines at {theta_deg:.0f}°: R={Rv:.2f}, Rc={Rcv:.2f}")
    ax.set_aspect("equal")
    ax.set_xlim(-3.2, 3.2)
    ax.set_ylim(-3.2, 3.2)
    ax.legend(loc="lower right")
    # (b) R grows with the dimension of the data
    ax = axes[1]
    res = rate_vs_dimension(d=32, N=N, eps=eps)
    ax.plot(res["r"], res["formula"], "-", color="gray", label=r"$\frac{r}{2}\log(1+\frac{d}{r\epsilon^2})$")
    ax.plot(res["r"], res["empirical"], "o", color=COLORS[0], label=f"R(Z), N={N}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dimension r of the data's subspace (d = 32)")
    ax.set_ylabel("nats")
    ax.set_title(f"(b) coding rate vs dimension, ε={eps:g}")
    ax.legend()
    # (c) rate reduction vs angle
    ax = axes[2]
    res = rate_reduction_vs_angle(eps=eps, p=p, d=d, N=N)
    ax.plot(res["degrees"], res["R"], color=COLORS[0], label="R(Z)")
    ax.plot(res["degrees"], res["Rc"], color=COLORS[1], label=r"$R_c(Z\mid U_{[2]})$")
    ax.plot(res["degrees"], res["dR"], color="k", lw=2, label=r"$\Delta R = R - R_c$")
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("angle between the two subspaces (degrees)")
    ax.set_title(f"(c) two {p}-dim subspaces in R^{d}, ε={eps:g}")
    ax.legend()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Chapter 3: MSSA as a compression step
# ---------------------------------------------------------------------------------------------


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


@styled
def plot_mssa_heads(Z: torch.Tensor, U: torch.Tensor, labels: torch.Tensor, head: int = 0,
                    beta: float = 1.0):
    """Head ``head`` of MSSA on sorted tokens: |G_k| = |P_k P_k^T| and softmax(beta G_k) (rows =
    queries). Tokens of subspace k are the only ones with large similarities in head k."""
    P = Z @ U[head]  # (N, p)
    G = P @ P.T
    A = torch.softmax(beta * G, dim=-1)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8))
    im = axes[0].imshow(G.abs(), cmap="viridis")
    axes[0].set_title(f"|similarity| $|P_kP_k^T|$, head k={head}")
    fig.colorbar(im, ax=axes[0], fraction=0.046)
    im = axes[1].imshow(A, cmap="magma")
    axes[1].set_title(f"attention softmax(β·$P_kP_k^T$), β={beta:g}")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    bounds = torch.nonzero(labels[1:] != labels[:-1]).flatten() + 0.5
    for ax in axes:
        for b in bounds.tolist():
            ax.axhline(b, color="w", lw=0.6)
            ax.axvline(b, color="w", lw=0.6)
        ax.set_xlabel("key token (sorted by subspace)")
        ax.set_ylabel("query token")
    fig.tight_layout()
    return fig


@styled
def plot_mssa_vs_exact(Z: torch.Tensor, U: torch.Tensor, kappa: float = 0.5, eps_values=None):
    """Left: how well each approximation of chapter 3 points like the exact step, against eps.
    Right: relative change of Rc after one step (exact, MSSA, shrinkage only) at each eps.
    Returns the figure and the list of :class:`MSSAStepReport`."""
    eps_values = list(eps_values or [0.5, 1.0, 2.0, 4.0])
    reports = [mssa_step_report(Z, U, e, kappa) for e in eps_values]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    ax = axes[0]
    for key, label, c in [("cos_step", "whole update (eq. 6)", "k"),
                          ("cos_neumann", "2nd order: Neumann term", COLORS[0]),
                          ("cos_softmax", "2nd order: MSSA term", COLORS[1]),
                          ("cos_softmax_centered", "2nd order: MSSA, mean removed", COLORS[2])]:
        ax.plot(eps_values, [getattr(r, key) for r in reports], "o-", color=c, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(eps_values, [f"{e:g}" for e in eps_values])
    ax.set_xlabel("ε")
    ax.set_ylabel("cosine with the exact update")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")
    ax.set_title(f"direction of the update (κ={kappa:g})")
    ax = axes[1]
    x = torch.arange(len(eps_values)).float()
    w = 0.25
    for i, (key, label, c) in enumerate([("rc_exact", "exact step", "k"), ("rc_mssa", "MSSA step (eq. 6)", COLORS[1]),
                                         ("rc_shrink", "shrinkage only", COLORS[0])]):
        change = [100 * (getattr(r, key) / r.rc_before - 1) for r in reports]
        ax.bar(x + (i - 1) * w, change, w, color=c, label=label)
    ax.set_xticks(x, [f"{e:g}" for e in eps_values])
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("ε")
    ax.set_ylabel(r"change of $R_c(Z\mid U_{[K]})$ (%)")
    ax.legend(loc="lower right")
    ax.set_title(f"compression term after one step (κ={kappa:g})")
    fig.tight_layout()
    return fig, reports


# ---------------------------------------------------------------------------------------------
# Chapter 4: ISTA
# ---------------------------------------------------------------------------------------------


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


@styled
def plot_ista(Z: torch.Tensor, D: torch.Tensor, X_star: torch.Tensor, eta: float = 0.1,
              lam: float = 0.1, steps: int = 60):
    """Chapter 4's figure: LASSO objective and sparsity along ISTA from X0 = Z (CRATE) and from
    X0 = 0, ReLU and soft-threshold variants; the first step (one CRATE block) is marked."""
    runs = {
        "ReLU, X0 = Z (CRATE)": ista_trajectory(Z, D, eta, lam, steps),
        "ReLU, X0 = 0": ista_trajectory(Z, D, eta, lam, steps, X0=torch.zeros_like(Z)),
        "soft threshold, X0 = Z (CRATE-sth)": ista_trajectory(Z, D, eta, lam, steps, nonnegative=False),
    }
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for (name, run), c in zip(runs.items(), [COLORS[1], COLORS[0], COLORS[2]]):
        axes[0].plot(run["objective"], color=c, label=name)
        axes[0].plot([1], [run["objective"][1]], "o", color=c)
        axes[1].plot(run["sparsity"], color=c, label=name)
        axes[1].plot([1], [run["sparsity"][1]], "o", color=c)
    axes[1].axhline(float((X_star == 0).double().mean()), color="gray", ls="--", label="true codes X*")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("LASSO objective per token")
    axes[1].set_ylabel("fraction of zero entries")
    axes[1].set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.set_xlabel("ISTA iteration (dot: one CRATE block)")
        ax.legend()
    axes[0].set_title(f"objective, η={eta:g}, λ={lam:g}")
    axes[1].set_title("sparsity of the codes")
    fig.tight_layout()
    return fig, runs


@styled
def plot_thresholds(t: float = 0.5):
    """The scalar non-linearities: ReLU(v - t) (CRATE's ISTA), the soft threshold (CRATE-sth),
    and a ViT MLP's GELU for comparison."""
    v = torch.linspace(-2, 2, 401)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(v, v, color="lightgray", lw=1, label="identity")
    ax.plot(v, torch.relu(v - t), color=COLORS[1], lw=2, label=f"ReLU(v - {t:g})  (ISTA, CRATE)")
    ax.plot(v, torch.sign(v) * torch.relu(v.abs() - t), color=COLORS[2], ls="--", lw=2,
            label=f"soft threshold at {t:g} (CRATE-sth)")
    ax.plot(v, F.gelu(v), color=COLORS[0], lw=1, label="GELU(v) (ViT MLP)")
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.set_xlabel("v")
    ax.legend()
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Chapter 5: a model, layer by layer
# ---------------------------------------------------------------------------------------------


def subspaces_of(attn: torch.nn.Module) -> torch.Tensor:
    """The bases ``U (K, d, p)`` of an MSSA layer: its bias-free ``qkv`` weight is ``U^T``
    (``(K p, d)``), split into K blocks of p rows. Learned bases are not orthonormal."""
    W = attn.qkv.weight.detach()  # (K p, d)
    K = attn.num_heads
    return W.reshape(K, W.shape[0] // K, W.shape[1]).transpose(1, 2).contiguous()


@torch.no_grad()
def layer_statistics(model: torch.nn.Module, images: torch.Tensor, eps: float = 0.5,
                     bases: list[torch.Tensor] | None = None) -> dict:
    """Walk a CRATE model block by block (eq. 8) and measure, for each layer l:

    * ``R``: coding rate of the layer's normalised input tokens LN1(Z_l), per image, averaged;
    * ``Rc_in``: Rc(LN1(Z_l) | U^l), the compression term of what MSSA receives;
    * ``Rc_out``: Rc(LN2(Z_{l+1/2}) | U^l) of what ISTA receives, after the MSSA step;
    * ``sparsity``: fraction of exact zeros in the ISTA output Z_{l+1}.

    Tokens include the CLS token (N + 1 rows per image). ``bases`` replaces each layer's U^l by
    a given ``(K, d, p)`` tensor (e.g. random orthonormal bases). Returns lists indexed by layer.
    """
    stats = {"R": [], "Rc_in": [], "Rc_out": [], "sparsity": []}
    x = model.embed(images)
    for l, block in enumerate(model.blocks):
        U = (subspaces_of(block.attn) if bases is None else bases[l]).to(x.dtype)
        h = block.norm1(x)
        stats["R"].append(float(coding_rate(h, eps).mean()))
        stats["Rc_in"].append(float(compression_rate(h, U, eps).mean()))
        x_half = block.attn(h) + (h if block.residual_from_norm else x)
        h2 = block.norm2(x_half)
        stats["Rc_out"].append(float(compression_rate(h2, U, eps).mean()))
        out = block.mlp(h2)
        x = x_half + out if block.mlp.residual else out
        stats["sparsity"].append(float((out == 0).float().mean()))
    return stats


@styled
def plot_layer_statistics(stats: dict, title: str = ""):
    """Two panels: R and Rc before/after MSSA per layer; ISTA sparsity per layer."""
    layers = list(range(1, len(stats["R"]) + 1))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    ax = axes[0]
    ax.plot(layers, stats["R"], "o-", color=COLORS[0], label=r"$R(\mathrm{LN}(Z^\ell))$")
    ax.plot(layers, stats["Rc_in"], "s-", color=COLORS[1], label=r"$R_c$ of the MSSA input")
    ax.plot(layers, stats["Rc_out"], "^--", color=COLORS[3], label=r"$R_c$ after MSSA (ISTA input)")
    ax.set_xlabel("layer ℓ")
    ax.set_ylabel("nats per image")
    ax.legend()
    ax.set_title("coding rates, layer by layer")
    ax = axes[1]
    ax.bar(layers, stats["sparsity"], color=COLORS[2])
    ax.set_ylim(0, 1)
    ax.set_xlabel("layer ℓ")
    ax.set_ylabel("fraction of zeros in $Z^{\\ell+1}$")
    ax.set_title("sparsity of the ISTA output")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
