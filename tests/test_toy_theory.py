"""cratelib.toy (the theory chapters' experiments on toy data), cratelib.eval.rates (coding rates
and sparsity of a model, layer by layer) and the figures of cratelib.figures.theory."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import cratelib  # noqa: E402
from cratelib import toy  # noqa: E402
from cratelib.eval.rates import layer_statistics, subspaces_of  # noqa: E402
from cratelib.figures import theory  # noqa: E402


def test_coding_rate_of_a_subspace_approaches_the_formula():
    res = toy.rate_vs_dimension(d=16, N=4000, eps=0.5, dims=[2, 8])
    for emp, formula in zip(res["empirical"], res["formula"]):
        assert emp == pytest.approx(formula, rel=0.05)
    assert res["empirical"][0] < res["empirical"][1]  # more dimensions, more nats


def test_two_subspaces_at_an_angle_and_the_rate_reduction():
    Z, U, labels = toy.two_subspaces(math.radians(30), p=2, d=8, N=100, seed=0)
    torch.testing.assert_close(U[0].T @ U[1], math.cos(math.radians(30)) * torch.eye(2, dtype=torch.float64))
    assert Z.shape == (100, 8) and set(labels.tolist()) == {0, 1}
    res = toy.rate_reduction_vs_angle(eps=0.5, p=2, d=8, N=200, degrees=[0, 45, 90])
    assert res["dR"][0] < res["dR"][1] < res["dR"][2]  # orthogonal subspaces reduce the rate most
    panels = toy.coding_rate_panels(N=64)
    assert set(panels) == {"lines", "dimension", "angle", "settings"} and panels["lines"]["Z"].shape == (200, 2)


def test_mssa_experiments():
    Z, U, labels = toy.union_tokens(K=3, d=24, p=4, N=60, noise=0.05, seed=0)
    assert (labels[1:] >= labels[:-1]).all()  # sorted by subspace
    G, A = toy.head_attention(Z, U, head=1, beta=2.0)
    assert G.shape == A.shape == (60, 60)
    torch.testing.assert_close(A.sum(-1), torch.ones(60, dtype=A.dtype))
    reports = toy.mssa_step_reports(Z, U, kappa=0.5, eps_values=[0.5, 2.0])
    assert len(reports) == 2
    for r in reports:
        assert r.rc_exact < r.rc_before  # a gradient step on Rc compresses
        assert 0 < r.cos_step <= 1 + 1e-12


def test_ista_experiments():
    Z, D, X = toy.sparse_coding_problem(d=16, N=20, nonzeros=3, seed=0)
    torch.testing.assert_close(D.norm(dim=0), torch.ones(16, dtype=torch.float64))
    assert ((X != 0).sum(1) == 3).all()
    L = torch.linalg.matrix_norm(D, 2).item() ** 2
    run = toy.ista_trajectory(Z, D, eta=1 / L, lam=0.1, steps=30)
    assert all(b <= a + 1e-9 for a, b in zip(run["objective"], run["objective"][1:]))  # monotone at eta <= 1/L
    runs = toy.ista_runs(Z, D, eta=0.1, lam=0.1, steps=5)
    assert len(runs) == 3 and all(len(r["sparsity"]) == 6 for r in runs.values())


def test_layer_statistics_match_the_trace():
    torch.manual_seed(0)
    net = cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=3, depth=2, dim=48, num_heads=3).eval()
    images = torch.randn(2, 3, 32, 32)
    stats = layer_statistics(net, images)
    assert all(len(v) == 2 for v in stats.values())
    tr = cratelib.trace(net, images)
    assert all(abs(tr.sparsity(l) - s) < 1e-6 for l, s in enumerate(stats["sparsity"]))
    assert subspaces_of(net.blocks[0].attn).shape == (3, 48, 16)


def test_theory_figures_draw_the_experiments():
    Z, U, labels = toy.union_tokens(K=2, d=16, p=4, N=40, seed=0)
    Zs, D, X = toy.sparse_coding_problem(d=16, N=20, nonzeros=3, seed=0)
    net = cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=3, depth=2, dim=48, num_heads=3).eval()
    figs = [
        theory.plot_coding_rate(toy.coding_rate_panels(N=64)),
        theory.plot_mssa_heads(*toy.head_attention(Z, U, head=1), labels, head=1),
        theory.plot_mssa_vs_exact(toy.mssa_step_reports(Z, U, eps_values=[0.5, 1.0]), [0.5, 1.0]),
        theory.plot_ista(toy.ista_runs(Zs, D, steps=5), 0.5),
        theory.plot_thresholds(0.5),
        theory.plot_layer_statistics(layer_statistics(net, torch.randn(1, 3, 32, 32))),
    ]
    assert len(figs[0].axes) == 3 and "head 2" in figs[1].axes[0].get_title()
    assert len(figs[3].axes[0].lines) == 6  # three runs, each with its first step marked
    for fig in figs:
        plt.close(fig)
