"""Tests for cratelib.unrolling: the gradient step on Rc, MSSA (eqs. (5), (6)) and ISTA (eq. (7))."""

import pytest
import torch
import torch.nn.functional as F

from cratelib.coding_rate import compression_rate, random_subspaces, sample_union_of_subspaces, sparsity_ratio
from cratelib.unrolling import (
    ista_block_reference,
    ista_step,
    lasso_objective,
    mssa_gradient_approx,
    mssa_operator,
    rc_gradient_step,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


# ------------------------------------------------------------------ compression: Rc step and MSSA


def test_rc_gradient_step_is_a_descent_step_on_autograd_gradient():
    U = random_subspaces(2, 8, 3, generator=gen(0), dtype=torch.float64)
    Z = torch.randn(2, 6, 8, generator=gen(1), dtype=torch.float64, requires_grad=True)
    eps, kappa = 0.6, 0.3
    (grad,) = torch.autograd.grad(compression_rate(Z, U, eps).sum(), Z)
    stepped = rc_gradient_step(Z.detach(), U, eps, kappa)
    torch.testing.assert_close(stepped, Z.detach() - kappa * grad, rtol=1e-10, atol=1e-12)
    assert bool((compression_rate(stepped, U, eps) < compression_rate(Z.detach(), U, eps)).all())


@pytest.mark.parametrize("scale", [1.0, 3**-0.5])
def test_mssa_operator_equals_loop_over_heads_in_column_form(scale):
    # Eq. (5) as the paper writes it: tokens as COLUMNS, softmax normalising each column.
    K, d, p, n, eps = 3, 9, 3, 5, 0.8  # n = N + 1 tokens, CLS included
    U = random_subspaces(K, d, p, generator=gen(2), dtype=torch.float64)
    Z = torch.randn(2, n, d, generator=gen(3), dtype=torch.float64)
    for b in range(2):
        Zc = Z[b].T  # (d, n)
        expected = torch.zeros(d, n, dtype=torch.float64)
        for k in range(K):
            Pk = U[k].T @ Zc  # (p, n)
            expected += U[k] @ Pk @ torch.softmax(scale * Pk.T @ Pk, dim=0)
        expected *= p / (n * eps**2)
        torch.testing.assert_close(mssa_operator(Z, U, eps, scale=scale)[b], expected.T, rtol=1e-12, atol=1e-12)


def test_mssa_approximation_tracks_the_exact_rc_step():
    """Eq. (6): on data from K orthogonal subspaces spanning R^d, with small a = p/(n eps^2).

    Measured over seeds 0-4 (K=4, d=32, p=8, n=64, eps=2, a=0.031, noise 0.01):
    * whole update: cos 0.9987-0.9992. Both updates are dominated by the shrinkage -kappa a Z,
      which approximations 1 and 2 of ``mssa_operator``'s docstring keep exactly; bound 0.99.
    * second-order ("attention") part, the update plus kappa a Z: cos 0.54-0.65. The softmax
      (approximation 3) adds a query-independent mean of the values that the exact step lacks;
      bound 0.4.
    * removing that mean term from the MSSA part: cos 0.84-0.97, bound 0.75. This checks that
      the mean term is what separates the two, as the docstring says.
    """
    K, d, p, n, eps, kappa = 4, 32, 8, 64, 2.0, 0.1
    a = p / (n * eps**2)
    for seed in range(5):
        U = random_subspaces(K, d, p, generator=gen(10 + seed), dtype=torch.float64)
        Z, _ = sample_union_of_subspaces(n, U, noise=0.01, generator=gen(20 + seed))
        exact = rc_gradient_step(Z, U, eps, kappa) - Z
        approx = mssa_gradient_approx(Z, U, eps, kappa) - Z
        assert cosine(exact, approx) > 0.99

        exact_2nd, approx_2nd = exact + kappa * a * Z, approx + kappa * a * Z
        assert cosine(exact_2nd, approx_2nd) > 0.4

        P = Z @ U  # (K, n, p)
        mean_of_values = kappa * a**2 * torch.einsum("kp,kdp->d", P.mean(1), U)  # same for every query
        assert cosine(exact_2nd, approx_2nd - mean_of_values) > 0.75


def test_mssa_gradient_approx_constant_counts_rows():
    # the constant c = p / (n eps^2) uses all n rows (N patches + CLS): with U = I (K=1, p=d)
    # and identical tokens, softmax is uniform, MSSA(Z) = c Z, so the step is
    # (1 - kappa c) Z + kappa c^2 Z.
    n, d, eps, kappa = 5, 4, 0.5, 0.2
    U = torch.eye(d, dtype=torch.float64).unsqueeze(0)
    Z = torch.ones(n, 1, dtype=torch.float64) * torch.randn(1, d, generator=gen(4), dtype=torch.float64)
    c = d / (n * eps**2)
    torch.testing.assert_close(mssa_operator(Z, U, eps), c * Z, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        mssa_gradient_approx(Z, U, eps, kappa), (1 - kappa * c + kappa * c**2) * Z, rtol=1e-12, atol=1e-12
    )


# ------------------------------------------------------------------ sparsification: ISTA


def test_ista_block_reference_matches_column_form_and_official_code():
    d, n, eta, lam = 6, 7, 0.1, 0.1
    D = torch.randn(d, d, generator=gen(5), dtype=torch.float64)  # not symmetric
    Z = torch.randn(2, n, d, generator=gen(6), dtype=torch.float64)
    out = ista_block_reference(Z, D, eta, lam)
    for b in range(2):
        Zc = Z[b].T  # eq. (7), column form
        expected = torch.relu(Zc + eta * D.T @ (Zc - D @ Zc) - eta * lam)
        torch.testing.assert_close(out[b], expected.T, rtol=1e-12, atol=1e-12)
    # Alg. 2 (official code, weight = D): x1 = x W^T; grad_1 = x1 W; grad_2 = x W
    x1 = F.linear(Z, D)
    grad_1, grad_2 = F.linear(x1, D.t()), F.linear(Z, D.t())
    torch.testing.assert_close(out, torch.relu(Z + eta * (grad_2 - grad_1) - eta * lam), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nonnegative", [True, False])
def test_ista_with_orthogonal_dictionary_reaches_lasso_minimiser_in_one_step(nonnegative):
    # D orthogonal and eta = 1: X + (Z - X D^T) D = Z D for every X, so one step gives the
    # closed-form minimiser prox(Z D).
    d, n, lam = 5, 8, 0.4
    D = torch.linalg.qr(torch.randn(d, d, generator=gen(7), dtype=torch.float64)).Q
    Z = torch.randn(n, d, generator=gen(8), dtype=torch.float64)
    X0 = torch.randn(n, d, generator=gen(9), dtype=torch.float64)
    X = ista_step(X0, Z, D, eta=1.0, lam=lam, nonnegative=nonnegative)
    V = Z @ D
    expected = torch.relu(V - lam) if nonnegative else torch.sign(V) * torch.relu(V.abs() - lam)
    torch.testing.assert_close(X, expected, rtol=1e-12, atol=1e-12)
    # and it is a minimiser: feasible random perturbations do not lower the objective
    best = float(lasso_objective(X, Z, D, lam))
    for seed in range(20):
        Y = X + 0.05 * torch.randn(n, d, generator=gen(100 + seed), dtype=torch.float64)
        if nonnegative:
            Y = Y.clamp(min=0)
        assert float(lasso_objective(Y, Z, D, lam)) > best


@pytest.mark.parametrize("nonnegative", [True, False])
def test_repeated_ista_lowers_lasso_and_sparsifies(nonnegative):
    d, n, lam = 8, 20, 0.5
    Q1 = torch.linalg.qr(torch.randn(d, d, generator=gen(10), dtype=torch.float64)).Q
    Q2 = torch.linalg.qr(torch.randn(d, d, generator=gen(11), dtype=torch.float64)).Q
    D = Q1 @ torch.diag(torch.linspace(0.5, 1.5, d, dtype=torch.float64)) @ Q2.T  # condition 3
    eta = 1.0 / float(torch.linalg.matrix_norm(D, ord=2)) ** 2
    Z = torch.randn(n, d, generator=gen(12), dtype=torch.float64)
    X = Z
    objectives, zeros = [], [float(sparsity_ratio(X))]
    for _ in range(30):
        X = ista_step(X, Z, D, eta=eta, lam=lam, nonnegative=nonnegative)
        objectives.append(float(lasso_objective(X, Z, D, lam)))
        zeros.append(float(sparsity_ratio(X)))
    # from the first step on every iterate is feasible (X >= 0 for ReLU): monotone descent
    assert all(later <= earlier + 1e-12 for earlier, later in zip(objectives, objectives[1:])), objectives
    assert objectives[-1] < objectives[0] - 1e-3
    # the dense Z becomes sparse codes (not monotonically for ReLU: its first step zeroes every
    # negative entry at once, and later steps revive some)
    assert zeros[0] == 0.0 and zeros[-1] > 0.3, zeros
    assert bool((X < 0).any()) != nonnegative  # soft thresholding keeps signs, ReLU cannot


def test_soft_threshold_keeps_negatives_relu_does_not():
    D = torch.eye(4)
    Z = torch.tensor([[-2.0, -0.005, 0.005, 2.0]])  # D = I: the step is Z - eta lam, eta lam = 0.01
    torch.testing.assert_close(ista_block_reference(Z, D, nonnegative=True), torch.tensor([[0.0, 0.0, 0.0, 1.99]]))
    torch.testing.assert_close(ista_block_reference(Z, D, nonnegative=False), torch.tensor([[-1.99, 0.0, 0.0, 1.99]]))


# ------------------------------------------------------------------ bad input


def test_bad_input_raises_clear_value_error():
    U = random_subspaces(2, 6, 3, generator=gen(13))
    Z = torch.randn(4, 6)
    D = torch.randn(6, 6)
    with pytest.raises(ValueError, match=r"Z must have shape \(\.\.\., N, d\).*got shape \(6,\)"):
        mssa_operator(torch.randn(6), U)
    with pytest.raises(ValueError, match=r"U must have shape \(K, d, p\).*got shape \(2, 18\)"):
        mssa_gradient_approx(Z, U.reshape(2, 18), 0.5, 0.1)
    with pytest.raises(ValueError, match=r"d = Z.shape\[-1\] = 5"):
        rc_gradient_step(torch.randn(4, 5), U, 0.5, 0.1)
    with pytest.raises(ValueError, match="kappa must be > 0, got -0.1"):
        rc_gradient_step(Z, U, 0.5, -0.1)
    with pytest.raises(ValueError, match=r"D must be a dictionary of shape \(d, m\), got \(6,\)"):
        ista_step(Z, Z, torch.randn(6))
    with pytest.raises(ValueError, match=r"d = Z.shape\[-1\] = 6, got \(5, 6\)"):
        lasso_objective(Z, Z, torch.randn(5, 6))
    with pytest.raises(ValueError, match=r"m = D.shape\[1\] = 6"):
        ista_step(torch.randn(4, 3), Z, D)
    with pytest.raises(ValueError, match=r"must agree on \(\.\.\., N\)"):
        ista_step(torch.randn(3, 6), Z, D)
    with pytest.raises(ValueError, match=r"square dictionary D of shape \(d, d\), got \(6, 4\)"):
        ista_block_reference(Z, torch.randn(6, 4))
    with pytest.raises(ValueError, match="eta must be > 0, got 0"):
        ista_block_reference(Z, D, eta=0.0)
