"""Tests for cratelib.coding_rate: R, Rc, rate reduction, sparsity, the gradient of Rc, toy data."""

import math

import pytest
import torch

from cratelib.coding_rate import (
    coding_rate,
    compression_gradient,
    compression_rate,
    l0_norm,
    l1_norm,
    random_subspaces,
    rate_reduction,
    sample_union_of_subspaces,
    sparse_rate_reduction,
    sparsity_ratio,
)

EPS = 0.5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def direct_logdet_rate(Z: torch.Tensor, eps: float) -> torch.Tensor:
    """1/2 logdet(I_d + d/(N eps^2) Z^T Z) on the d x d matrix, in float64, no Cholesky."""
    Z = Z.double()
    n, d = Z.shape[-2:]
    M = torch.eye(d, dtype=torch.float64) + d / (n * eps**2) * Z.mT @ Z
    sign, logabsdet = torch.linalg.slogdet(M)
    assert bool((sign > 0).all())
    return 0.5 * logabsdet


# ------------------------------------------------------------------ coding rate R(Z)


@pytest.mark.parametrize("n, d", [(5, 12), (20, 6), (7, 7)])
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_coding_rate_matches_direct_formula_batched(n, d, dtype, rtol):
    Z = torch.randn(2, 3, n, d, generator=gen(1), dtype=torch.float64)
    got = coding_rate(Z.to(dtype), EPS)
    assert got.shape == (2, 3) and got.dtype == dtype
    torch.testing.assert_close(got.double(), direct_logdet_rate(Z, EPS), rtol=rtol, atol=0.0)


def test_coding_rate_invariant_to_feature_rotation_and_token_permutation():
    n, d = 9, 6
    Z = torch.randn(n, d, generator=gen(2), dtype=torch.float64)
    Q = torch.linalg.qr(torch.randn(d, d, generator=gen(3), dtype=torch.float64)).Q
    perm = torch.randperm(n, generator=gen(4))
    r = coding_rate(Z)
    torch.testing.assert_close(coding_rate(Z @ Q), r, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(coding_rate(Z[perm]), r, rtol=1e-12, atol=0.0)
    # a non-orthogonal change of the features does change it
    assert abs(float(coding_rate(2.0 * Z) - r)) > 1.0


@pytest.mark.parametrize("n, d", [(12, 5), (4, 10)])
def test_coding_rate_closed_form_for_scaled_orthonormal_tokens(n, d):
    # m = min(N, d) orthonormal directions scaled by sqrt(s): the smaller Gram matrix is s * I_m,
    # so R = m/2 log(1 + d s / (N eps^2)).
    s, eps = 3.0, 0.7
    m = min(n, d)
    Q = torch.linalg.qr(torch.randn(max(n, d), m, generator=gen(5), dtype=torch.float64)).Q
    Z = math.sqrt(s) * (Q if n >= d else Q.T)  # (N, d)
    expected = m / 2 * math.log(1 + d * s / (n * eps**2))
    assert math.isclose(float(coding_rate(Z, eps)), expected, rel_tol=1e-12)


def test_coding_rate_survives_cholesky_failure_in_float32():
    # rank one with a huge scale: rounding makes I + a Z^T Z numerically indefinite in float32
    u = torch.randn(100, 1, generator=gen(6), dtype=torch.float64)
    v = torch.randn(1, 50, generator=gen(7), dtype=torch.float64)
    Z64 = 1e4 * u @ v
    Z32 = Z64.float()
    a = 50 / (100 * EPS**2)
    _, info = torch.linalg.cholesky_ex(torch.eye(50) + a * Z32.T @ Z32)
    assert int(info) != 0, "the test input no longer makes Cholesky fail; pick a harder one"
    got = coding_rate(Z32)
    assert torch.isfinite(got)
    torch.testing.assert_close(got.double(), direct_logdet_rate(Z64, EPS), rtol=1e-3, atol=0.0)


def test_coding_rate_and_compression_rate_gradcheck():
    # N < d for R (N x N Gram), N > p for Rc (p x p Gram)
    Z = torch.randn(2, 4, 6, generator=gen(8), dtype=torch.float64, requires_grad=True)
    U = random_subspaces(2, 6, 3, generator=gen(9), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: coding_rate(z), (Z,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda z: compression_rate(z, U), (Z,), fast_mode=True)


# ------------------------------------------------------------------ Rc and rate reduction


def test_compression_rate_matches_direct_formula():
    K, d, p, n = 3, 10, 4, 7
    U = random_subspaces(K, d, p, generator=gen(10), dtype=torch.float64, mutually_orthogonal=False)
    Z = torch.randn(2, n, d, generator=gen(11), dtype=torch.float64)
    expected = torch.zeros(2, dtype=torch.float64)
    for k in range(K):
        P = Z @ U[k]  # (2, N, p)
        M = torch.eye(p, dtype=torch.float64) + p / (n * EPS**2) * P.mT @ P
        expected += 0.5 * torch.linalg.slogdet(M).logabsdet
    torch.testing.assert_close(compression_rate(Z, U), expected, rtol=1e-10, atol=0.0)
    torch.testing.assert_close(rate_reduction(Z, U), direct_logdet_rate(Z, EPS) - expected, rtol=1e-10, atol=1e-12)


def test_compression_rate_one_subspace_vs_spread_closed_form():
    # Same total energy s * p: all in subspace 0 gives Rc = p/2 log(1 + a s); spread evenly over
    # K subspaces gives K p/2 log(1 + a s / K), which is larger (log is concave).
    K, d, p, s = 3, 12, 4, 2.0
    U = random_subspaces(K, d, p, generator=gen(12), dtype=torch.float64)
    n = K * p
    a = p / (n * EPS**2)
    one = torch.zeros(n, d, dtype=torch.float64)
    one[:p] = math.sqrt(s) * U[0].T  # P_0^T P_0 = s I_p, other projections zero
    spread = torch.cat([math.sqrt(s / K) * U[k].T for k in range(K)])  # P_k^T P_k = (s/K) I_p
    rc_one, rc_spread = float(compression_rate(one, U)), float(compression_rate(spread, U))
    assert math.isclose(rc_one, p / 2 * math.log(1 + a * s), rel_tol=1e-12)
    assert math.isclose(rc_spread, K * p / 2 * math.log(1 + a * s / K), rel_tol=1e-12)
    assert rc_one < rc_spread


def test_rate_reduction_larger_for_orthogonal_than_overlapping_subspaces():
    K, d, p, n = 4, 32, 6, 200
    orthogonal = random_subspaces(K, d, p, generator=gen(13), dtype=torch.float64)
    # overlapping: small perturbations of one common basis
    base = random_subspaces(1, d, p, generator=gen(14), dtype=torch.float64)[0]
    bumps = 0.2 * torch.randn(K, d, p, generator=gen(15), dtype=torch.float64)
    overlapping = torch.linalg.qr(base + bumps).Q
    gaps = []
    for seed in range(3):
        Z_orth, _ = sample_union_of_subspaces(n, orthogonal, noise=0.01, generator=gen(100 + seed))
        Z_over, _ = sample_union_of_subspaces(n, overlapping, noise=0.01, generator=gen(200 + seed))
        gaps.append(float(rate_reduction(Z_orth, orthogonal) - rate_reduction(Z_over, overlapping)))
    assert min(gaps) > 5.0, gaps


# ------------------------------------------------------------------ sparsity and eq. (2)


def test_l0_l1_and_sparsity_ratio_values():
    Z = torch.tensor([[[0.0, 1e-4, -2.0], [3.0, 0.0, 0.0]], [[1.0, 1.0, 1.0], [1.0, 1.0, -1.0]]])
    torch.testing.assert_close(l0_norm(Z), torch.tensor([3.0, 6.0]))
    torch.testing.assert_close(l0_norm(Z, tol=1e-3), torch.tensor([2.0, 6.0]))
    torch.testing.assert_close(l1_norm(Z), torch.tensor([5.0001, 6.0]))
    torch.testing.assert_close(sparsity_ratio(Z), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(sparsity_ratio(Z, tol=1e-3), torch.tensor([4 / 6, 0.0]))


def test_sparse_rate_reduction_penalties():
    U = random_subspaces(2, 6, 3, generator=gen(16), dtype=torch.float64)
    Z = torch.randn(5, 6, generator=gen(17), dtype=torch.float64)
    Z[0, :4] = 0.0  # 26 of 30 entries non-zero
    lam = 0.3
    dr = float(rate_reduction(Z, U))
    assert math.isclose(float(sparse_rate_reduction(Z, U, lam)), dr - lam * 26, rel_tol=1e-12)
    l1 = float(Z.abs().sum())
    assert math.isclose(float(sparse_rate_reduction(Z, U, lam, penalty="l1")), dr - lam * l1, rel_tol=1e-12)
    # l1 variant: the penalty contributes -lam * sign(Z) to the gradient; l0 contributes nothing
    Zg = Z.clone().requires_grad_(True)
    (g_l1,) = torch.autograd.grad(sparse_rate_reduction(Zg, U, lam, penalty="l1"), Zg)
    (g_l0,) = torch.autograd.grad(sparse_rate_reduction(Zg, U, lam, penalty="l0"), Zg)
    torch.testing.assert_close(g_l0 - g_l1, lam * torch.sign(Z), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ gradient of Rc


@pytest.mark.parametrize("n, p", [(3, 5), (9, 2)])  # both branches: N <= p and N > p
def test_compression_gradient_matches_autograd(n, p):
    K, d = 3, 8
    U = random_subspaces(K, d, p, generator=gen(18), dtype=torch.float64, mutually_orthogonal=False)
    Z = torch.randn(2, n, d, generator=gen(19), dtype=torch.float64, requires_grad=True)
    eps = 0.4
    (expected,) = torch.autograd.grad(compression_rate(Z, U, eps).sum(), Z)
    torch.testing.assert_close(compression_gradient(Z.detach(), U, eps), expected, rtol=1e-10, atol=1e-12)


def test_gradient_descent_with_compression_gradient_lowers_rc():
    U = random_subspaces(3, 12, 4, generator=gen(20), dtype=torch.float64)
    Z0, _ = sample_union_of_subspaces(30, U, noise=0.1, generator=gen(21))
    # first-order Taylor: a small step lowers Rc by kappa ||grad||^2
    kappa = 0.05
    grad = compression_gradient(Z0, U)
    drop = float(compression_rate(Z0, U) - compression_rate(Z0 - kappa * grad, U))
    assert drop == pytest.approx(kappa * float(grad.square().sum()), rel=0.01)
    # larger steps keep lowering it, towards 0 (all tokens compressed to the origin)
    Z, rates = Z0, [float(compression_rate(Z0, U))]
    for _ in range(10):
        Z = Z - 0.5 * compression_gradient(Z, U)
        rates.append(float(compression_rate(Z, U)))
    assert all(later < earlier for earlier, later in zip(rates, rates[1:])), rates
    assert rates[-1] < 0.2 * rates[0], rates


# ------------------------------------------------------------------ toy data


def test_random_subspaces_orthonormal_and_mutually_orthogonal():
    K, d, p = 3, 10, 3
    U = random_subspaces(K, d, p, generator=gen(22), dtype=torch.float64)
    assert U.shape == (K, d, p) and U.dtype == torch.float64
    stacked = U.permute(1, 0, 2).reshape(d, K * p)
    torch.testing.assert_close(stacked.T @ stacked, torch.eye(K * p, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(U, random_subspaces(K, d, p, generator=gen(22), dtype=torch.float64))

    V = random_subspaces(4, d, p, generator=gen(23), mutually_orthogonal=False)  # K p > d is fine
    assert V.dtype == torch.float32
    torch.testing.assert_close(V.mT @ V, torch.eye(p).expand(4, p, p), rtol=0, atol=1e-5)
    assert float((V[0].T @ V[1]).abs().max()) > 0.1  # independent draws overlap


def test_sample_union_of_subspaces_lies_in_labelled_subspace():
    K, d, p, n = 3, 12, 4, 600
    U = random_subspaces(K, d, p, generator=gen(24), dtype=torch.float64)
    Z, labels = sample_union_of_subspaces(n, U, generator=gen(25))
    assert Z.shape == (n, d) and labels.shape == (n,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(K))
    projector = U[labels] @ U[labels].mT  # (N, d, d)
    in_subspace = torch.einsum("nde,ne->nd", projector, Z)
    torch.testing.assert_close(in_subspace, Z, rtol=0, atol=1e-12)
    assert abs(float(Z.square().sum(-1).mean()) - 1.0) < 0.1  # E||z||^2 = 1

    sigma = 0.05
    Zn, labels_n = sample_union_of_subspaces(n, U, noise=sigma, generator=gen(25))
    torch.testing.assert_close(labels_n, labels)
    off = Zn - torch.einsum("nde,ne->nd", projector, Zn)  # noise outside the subspace: d - p dims
    assert abs(float(off.square().sum(-1).mean()) / ((d - p) * sigma**2) - 1.0) < 0.1


# ------------------------------------------------------------------ bad input


def test_bad_input_raises_clear_value_error():
    U = random_subspaces(2, 6, 3, generator=gen(26))
    Z = torch.randn(4, 6)
    with pytest.raises(ValueError, match=r"\(\.\.\., N, d\).*got shape \(6,\)"):
        coding_rate(torch.randn(6))
    with pytest.raises(ValueError, match=r"U must have shape \(K, d, p\).*got shape \(6, 3\)"):
        compression_rate(Z, U[0])
    with pytest.raises(ValueError, match=r"d = Z.shape\[-1\] = 5"):
        rate_reduction(torch.randn(4, 5), U)
    with pytest.raises(ValueError, match="same dtype"):
        compression_gradient(Z.double(), U)
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        coding_rate(Z, eps=0.0)
    with pytest.raises(ValueError, match="floating-point"):
        l0_norm(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="penalty must be 'l0' or 'l1', got 'l2'"):
        sparse_rate_reduction(Z, U, 0.1, penalty="l2")
    with pytest.raises(ValueError, match="K \\* p <= d"):
        random_subspaces(3, 6, 3)
    with pytest.raises(ValueError, match="p must be <= d"):
        random_subspaces(1, 3, 4, mutually_orthogonal=False)
