"""Figures of the theory chapters (book chapters 2-5).

Each figure draws what an experiment returns: :mod:`cratelib.toy` for the coding rate, MSSA and
ISTA on toy data (chapters 2-4), :func:`cratelib.eval.rates.layer_statistics` for a model layer by
layer (chapter 5). Layers are numbered from 1.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from cratelib.figures.style import COLORS, styled
from cratelib.toy import MSSAStepReport

__all__ = ["plot_coding_rate", "plot_mssa_heads", "plot_mssa_vs_exact", "plot_ista", "plot_thresholds",
           "plot_layer_statistics"]


@styled
def plot_coding_rate(panels: dict):
    """Chapter 2's figure from :func:`cratelib.toy.coding_rate_panels`: (a) two lines in the plane;
    (b) R(Z) against the dimension of the data's subspace; (c) R, Rc and the rate reduction against
    the angle between two p-dimensional subspaces."""
    eps, p, d, N, theta_deg = (panels["settings"][k] for k in ("eps", "p", "d", "N", "theta_deg"))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
    # (a) the geometry in R^2: two 1-D subspaces
    ax = axes[0]
    lines = panels["lines"]
    Z2, U2, lab2 = lines["Z"], lines["U"], lines["labels"]
    for k in range(2):
        pts = Z2[lab2 == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, color=COLORS[k], label=f"subspace {k + 1}")
        u = U2[k, :, 0] * 3
        ax.plot([-u[0], u[0]], [-u[1], u[1]], color=COLORS[k], lw=0.8, alpha=0.6)
    ax.set_title(f"(a) two lines at {theta_deg:.0f}°: R={lines['R']:.2f}, Rc={lines['Rc']:.2f}")
    ax.set_aspect("equal")
    ax.set_xlim(-3.2, 3.2)
    ax.set_ylim(-3.2, 3.2)
    ax.legend(loc="lower right")
    # (b) R grows with the dimension of the data
    ax = axes[1]
    res = panels["dimension"]
    ax.plot(res["r"], res["formula"], "-", color="gray", label=r"$\frac{r}{2}\log(1+\frac{d}{r\epsilon^2})$")
    ax.plot(res["r"], res["empirical"], "o", color=COLORS[0], label=f"R(Z), N={N}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dimension r of the data's subspace (d = 32)")
    ax.set_ylabel("nats")
    ax.set_title(f"(b) coding rate vs dimension, ε={eps:g}")
    ax.legend()
    # (c) rate reduction vs angle
    ax = axes[2]
    res = panels["angle"]
    ax.plot(res["degrees"], res["R"], color=COLORS[0], label="R(Z)")
    ax.plot(res["degrees"], res["Rc"], color=COLORS[1], label=r"$R_c(Z\mid U_{[2]})$")
    ax.plot(res["degrees"], res["dR"], color="k", lw=2, label=r"$\Delta R = R - R_c$")
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("angle between the two subspaces (degrees)")
    ax.set_title(f"(c) two {p}-dim subspaces in R^{d}, ε={eps:g}")
    ax.legend()
    fig.tight_layout()
    return fig


@styled
def plot_mssa_heads(G: torch.Tensor, A: torch.Tensor, labels: torch.Tensor, head: int = 0, beta: float = 1.0):
    """One head of MSSA on tokens sorted by subspace (:func:`cratelib.toy.head_attention`):
    ``|G_k| = |P_k P_k^T|`` and ``softmax(beta G_k)`` (rows = queries). Tokens of subspace k are the
    only ones with large similarities in head k; ``head`` is 0-based and shown from 1."""
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8))
    im = axes[0].imshow(G.abs(), cmap="viridis")
    axes[0].set_title(f"|similarity| $|P_kP_k^T|$, head {head + 1}")
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
def plot_mssa_vs_exact(reports: Sequence[MSSAStepReport], eps_values: Sequence[float], kappa: float = 0.5):
    """From :func:`cratelib.toy.mssa_step_reports` at ``eps_values``. Left: how well each
    approximation of chapter 3 points like the exact step, against eps. Right: relative change of
    Rc after one step (exact, MSSA, shrinkage only) at each eps."""
    eps_values = list(eps_values)
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
    return fig


@styled
def plot_ista(runs: dict, true_sparsity: float, eta: float = 0.1, lam: float = 0.1):
    """Chapter 4's figure from :func:`cratelib.toy.ista_runs`: LASSO objective and sparsity along
    ISTA from X0 = Z (CRATE) and from X0 = 0, ReLU and soft-threshold variants; the first step
    (one CRATE block) is marked; ``true_sparsity``: the fraction of zeros of the true codes
    (:func:`cratelib.sparsity_ratio`), drawn as a line."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for (name, run), c in zip(runs.items(), [COLORS[1], COLORS[0], COLORS[2]]):
        axes[0].plot(run["objective"], color=c, label=name)
        axes[0].plot([1], [run["objective"][1]], "o", color=c)
        axes[1].plot(run["sparsity"], color=c, label=name)
        axes[1].plot([1], [run["sparsity"][1]], "o", color=c)
    axes[1].axhline(true_sparsity, color="gray", ls="--", label="true codes X*")
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
    return fig


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


@styled
def plot_layer_statistics(stats: dict, title: str = ""):
    """Two panels from :func:`cratelib.eval.rates.layer_statistics`: R and Rc before/after MSSA per
    layer; ISTA sparsity per layer."""
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
