"""CRATE-alpha's ODL block and ToST's TSSA against computations written out by hand."""
import pytest
import torch
import torch.nn.functional as F

from cratelib.blocks import MSSA, ODL, Block
from cratelib.coding_rate import compression_rate
from cratelib.tssa import TSSA, head_statistics, membership, variational_compression, weighted_compression

D64 = torch.float64


# --- ODL -------------------------------------------------------------------------------------


def ista_step(z: torch.Tensor, x: torch.Tensor, D: torch.Tensor, eta: float, lam: float) -> torch.Tensor:
    """One non-negative ISTA step on 1/2 ||x - D z||^2 + lam ||z||_1 for one token (a column)."""
    return F.relu(z - eta * D.T @ (D @ z - x) - eta * lam)


def test_odl_is_two_ista_steps_from_zero_then_decoded():
    d, r, eta, lam = 6, 4, 0.1, 0.05
    layer = ODL(d, ratio=r, step_size=eta, lambd=lam).double()
    D, D1 = layer.D.detach(), layer.D1.detach()
    assert D.shape == D1.shape == (d, r * d)
    x = torch.randn(2, 5, d, dtype=D64)
    codes, decoded = torch.empty(2, 5, r * d, dtype=D64), torch.empty(2, 5, d, dtype=D64)
    for b in range(2):
        for i in range(5):
            z0 = torch.zeros(r * d, dtype=D64)
            z2 = ista_step(ista_step(z0, x[b, i], D, eta, lam), x[b, i], D, eta, lam)
            codes[b, i], decoded[b, i] = z2, D1 @ z2
    torch.testing.assert_close(layer.codes(x), codes)
    torch.testing.assert_close(layer(x), decoded)
    assert (codes == 0).any() and (codes > 0).any()  # sparse and not trivially zero


def test_odl_block_adds_the_raw_residual():
    dim = 8
    block = Block(dim, MSSA(dim, 2, proj_bias=False), ODL(dim), norm_eps=1e-6).double()
    assert block.norm1.eps == block.norm2.eps == 1e-6 and block.attn.proj.bias is None
    x = torch.randn(2, 5, dim, dtype=D64)
    half = block.attn(block.norm1(x)) + x
    torch.testing.assert_close(block(x), half + block.mlp(block.norm2(half)))


def test_odl_records_its_sparse_codes():
    layer = ODL(8)
    layer.record = {}
    x = torch.randn(1, 3, 8)
    layer(x)
    torch.testing.assert_close(layer.record["codes"], layer.codes(x))


# --- TSSA ------------------------------------------------------------------------------------


def tssa_direct(x: torch.Tensor, layer: TSSA) -> torch.Tensor:
    """TSSA token by token and head by head: Pi from the normalised squared features (softmax over
    heads), s_kj = sum_i pi_ik w_ikj^2 / n_k, and the update -pi_ik w_ik / (1 + s_k), then proj."""
    B, N, d = x.shape
    K, p = layer.num_heads, layer.head_dim
    Ut = layer.qkv.weight.detach().reshape(K, p, d)  # row block k is U_k^T
    bias = layer.qkv.bias.detach().reshape(K, p)
    temp = layer.temp.detach().reshape(K)
    out = torch.zeros(B, N, K * p, dtype=x.dtype)
    for b in range(B):
        W = [x[b] @ Ut[k].T + bias[k] for k in range(K)]  # (N, p) per head
        score = torch.stack([
            torch.stack([sum((W[k][i, j] / W[k][:, j].norm()) ** 2 for j in range(p)) for i in range(N)])
            for k in range(K)
        ])  # (K, N)
        pi = torch.stack([torch.softmax(temp * score[:, i], dim=0) for i in range(N)], dim=1)  # (K, N)
        for k in range(K):
            n_k = pi[k].sum()
            s = torch.stack([sum(pi[k, i] * W[k][i, j] ** 2 for i in range(N)) / n_k for j in range(p)])
            for i in range(N):
                out[b, i, k * p:(k + 1) * p] = -pi[k, i] * W[k][i] / (1 + s)
    return layer.proj(out)


def test_tssa_is_the_per_head_formula():
    torch.manual_seed(0)
    layer = TSSA(dim=12, num_heads=3).double().eval()
    with torch.no_grad():
        layer.temp.copy_(torch.tensor([[0.5], [1.0], [2.0]]))
        layer.qkv.bias.normal_()
    x = torch.randn(2, 7, 12, dtype=D64)
    torch.testing.assert_close(layer(x), tssa_direct(x, layer))


def test_tssa_membership_is_a_distribution_over_heads():
    layer = TSSA(dim=16, num_heads=4)
    layer.record = {}
    layer(torch.randn(2, 9, 16))
    pi = layer.record["membership"]
    assert pi.shape == (2, 4, 9) and (pi >= 0).all()
    torch.testing.assert_close(pi.sum(1), torch.ones(2, 9))
    assert layer.record["k"].shape == (2, 4, 9, 4) and layer.record["statistics"].shape == (2, 4, 4)


def _u_as_proj(layer: TSSA) -> torch.Tensor:
    """Make proj = [U_1 .. U_K] without bias (the derivation's output map); return U as (K, d, p)."""
    with torch.no_grad():
        layer.proj.weight.copy_(layer.qkv.weight.T)
        layer.proj.bias.zero_()
        layer.qkv.bias.zero_()
    K, p = layer.num_heads, layer.head_dim
    return layer.qkv.weight.detach().reshape(K, p, -1).mT


def test_tssa_is_a_gradient_step_on_the_variational_bound():
    """With proj = [U_1..U_K] and Pi held fixed, TSSA(Z) = -N grad_Z Rc^var(U^T Z, Pi) (alpha = 1):
    checked with autograd and with a central finite difference of the bound itself."""
    torch.manual_seed(1)
    K, d, N = 3, 12, 10
    layer = TSSA(d, K).double()
    U = _u_as_proj(layer)
    z = torch.randn(2, N, d, dtype=D64)
    layer.record = {}
    out = layer(z)
    pi = layer.record["membership"]  # held fixed: the variational parameter

    def bound(zz: torch.Tensor) -> torch.Tensor:
        w = torch.einsum("bnd,kdp->bknp", zz, U)
        return variational_compression(w, pi).sum()

    zz = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(bound(zz), zz)
    torch.testing.assert_close(out, -N * grad)
    v, h = torch.randn_like(z), 1e-5
    fd = (bound(z + h * v) - bound(z - h * v)) / (2 * h)
    torch.testing.assert_close(fd, (grad * v).sum(), rtol=1e-7, atol=1e-9)
    # the step moves down the bound: a small step along the update lowers it
    assert bound(z + 1e-3 * out) < bound(z)


def test_variational_bound_is_an_upper_bound_tight_for_diagonal_statistics():
    torch.manual_seed(2)
    B, K, N, p = 3, 4, 20, 5
    w = torch.randn(B, K, N, p, dtype=D64)
    pi = torch.softmax(torch.randn(B, K, N, dtype=D64), dim=1)
    for alpha in (0.3, 1.0, 7.0):
        gap = variational_compression(w, pi, alpha) - weighted_compression(w, pi, alpha)
        assert (gap > 1e-6).all()
    # columns orthogonal under the weights pi: W_k^T diag(pi_k) W_k is diagonal, the bound is exact
    q, _ = torch.linalg.qr(torch.randn(B, K, N, p, dtype=D64))  # orthonormal columns
    scaled = q * torch.rand(B, K, 1, p, dtype=D64) * 3 / pi.unsqueeze(-1).sqrt()
    torch.testing.assert_close(variational_compression(scaled, pi, 2.0), weighted_compression(scaled, pi, 2.0))


def test_weighted_compression_with_full_membership_is_cratess_compression_term():
    torch.manual_seed(3)
    K, d, p, N, eps = 3, 9, 3, 11, 0.5
    z = torch.randn(2, N, d, dtype=D64)
    U = torch.linalg.qr(torch.randn(K, d, p, dtype=D64))[0]
    w = torch.einsum("bnd,kdp->bknp", z, U)
    ones = torch.ones(2, K, N, dtype=D64)
    torch.testing.assert_close(weighted_compression(w, ones, alpha=p / eps**2), compression_rate(z, U, eps))


def test_membership_and_statistics_helpers_agree_with_the_layer():
    layer = TSSA(dim=8, num_heads=2).double()
    x = torch.randn(1, 6, 8, dtype=D64)
    layer.record = {}
    layer(x)
    w = layer.record["k"]
    torch.testing.assert_close(membership(w, layer.temp.detach()), layer.record["membership"])
    torch.testing.assert_close(head_statistics(w, layer.record["membership"]), layer.record["statistics"])


@pytest.mark.parametrize("bad", [(torch.randn(2, 3, 4), torch.rand(2, 3)), (torch.randn(1, 2, 5, 3), torch.rand(1, 2, 4))])
def test_bound_rejects_mismatched_shapes(bad):
    with pytest.raises(ValueError, match=r"expected w of shape \(B, K, N, p\)"):
        variational_compression(*bad)
