"""MSSA, ISTA and the block against the expressions they implement (eqs. 5, 7, 8)."""
import pytest
import torch
import torch.nn.functional as F

from cratelib.blocks import ISTA, MHSA, MLP, MSSA, Block

torch.manual_seed(0)


def mssa_direct(x: torch.Tensor, layer: MSSA) -> torch.Tensor:
    """Eq. (5) written head by head: sum_k proj_k( softmax(scale (U_k^T Z)^T (U_k^T Z)) applied to U_k^T Z )."""
    K, p = layer.num_heads, layer.head_dim
    U = layer.qkv.weight.T.reshape(x.shape[-1], K, p)  # column block k is U_k (d x p)
    out = torch.zeros(x.shape[:-1] + (K * p,), dtype=x.dtype)
    for k in range(K):
        w = x @ U[:, k]  # (B, N, p) = rows of U_k^T z
        a = torch.softmax(w @ w.transpose(-1, -2) * p**-0.5, dim=-1)
        out[..., k * p:(k + 1) * p] = a @ w
    return layer.proj(out)


@pytest.mark.parametrize("fused", [True, False])
def test_mssa_is_subspace_self_attention(fused):
    layer = MSSA(dim=24, num_heads=4, fused_attn=fused).double().eval()
    x = torch.randn(3, 7, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x), mssa_direct(x, layer))


def test_mssa_has_one_projection_shared_by_query_key_value():
    layer = MSSA(dim=24, num_heads=4)
    assert layer.qkv.weight.shape == (24, 24) and layer.qkv.bias is None
    layer.record = {}
    layer(torch.randn(2, 5, 24))
    r = layer.record
    assert r["q"].data_ptr() == r["k"].data_ptr() == r["v"].data_ptr()
    torch.testing.assert_close(layer.record["attn"].sum(-1), torch.ones(2, 4, 5))


@pytest.mark.parametrize("cls", [MSSA, MHSA])
def test_fused_and_explicit_attention_agree(cls):
    layer = cls(dim=32, num_heads=4).eval()
    x = torch.randn(2, 9, 32)
    fused = layer(x)
    layer.fused_attn = False
    torch.testing.assert_close(layer(x), fused, atol=1e-5, rtol=1e-5)


def test_mhsa_uses_separate_query_key_value():
    layer = MHSA(dim=16, num_heads=2)
    layer.record = {}
    layer(torch.randn(1, 4, 16))
    r = layer.record
    assert not torch.allclose(r["q"], r["k"]) and not torch.allclose(r["k"], r["v"])


def test_ista_block_is_one_proximal_step():
    layer = ISTA(dim=10, step_size=0.1, lambd=0.1).double()
    D = layer.weight.detach()
    z = torch.randn(4, 6, 10, dtype=torch.float64)
    expected = torch.stack([
        torch.stack([F.relu(zi + 0.1 * D.T @ (zi - D @ zi) - 0.1 * 0.1) for zi in zb]) for zb in z
    ])
    torch.testing.assert_close(layer(z), expected)


def test_ista_relu_is_nonnegative_and_soft_threshold_is_not():
    torch.manual_seed(0)  # the check needs entries inside the threshold: independent of test order
    x = torch.randn(2, 8, 16)
    relu = ISTA(16)
    sth = ISTA(16, nonnegative=False)
    sth.load_state_dict(relu.state_dict())
    assert (relu(x) >= 0).all()
    out = sth(x)
    assert (out < 0).any()
    # soft-thresholding and ReLU agree wherever the ReLU output is positive
    pos = relu(x) > 0
    torch.testing.assert_close(out[pos], relu(x)[pos])
    # everything inside the threshold eta * lambda is exactly zero, everything outside is not
    D = sth.weight.detach()
    v = x + 0.1 * (x - x @ D.T) @ D
    inside = v.abs() <= 0.1 * 0.1
    assert inside.any() and (out[inside] == 0).all() and (out[~inside] != 0).all()


def test_ista_step_size_and_lambda_are_configurable():
    x = torch.randn(1, 3, 8)
    a, b = ISTA(8, step_size=0.1, lambd=0.1), ISTA(8, step_size=0.5, lambd=0.3)
    b.load_state_dict(a.state_dict())
    assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("from_norm", [False, True])
def test_block_wiring(from_norm):
    dim = 12
    block = Block(dim, MSSA(dim, 3), ISTA(dim), residual_from_norm=from_norm).double()
    x = torch.randn(2, 5, dim, dtype=torch.float64)
    h = block.norm1(x)
    half = block.attn(h) + (h if from_norm else x)  # eq. (8), Z_{l+1/2}
    torch.testing.assert_close(block(x), block.mlp(block.norm2(half)))  # no residual around ISTA


def test_mlp_block_keeps_its_residual():
    dim = 12
    block = Block(dim, MHSA(dim, 3), MLP(dim, 48)).double()
    x = torch.randn(2, 5, dim, dtype=torch.float64)
    half = block.attn(block.norm1(x)) + x
    torch.testing.assert_close(block(x), half + block.mlp(block.norm2(half)))


def test_ista_layer_is_the_derivations_ista_step():
    from cratelib.unrolling import ista_block_reference

    for nonneg in (True, False):
        layer = ISTA(16, step_size=0.2, lambd=0.05, nonnegative=nonneg).double()
        z = torch.randn(2, 5, 16, dtype=torch.float64)
        torch.testing.assert_close(layer(z), ista_block_reference(z, layer.weight.detach(), 0.2, 0.05, nonneg))


def test_mssa_layer_is_eq5_up_to_its_constant():
    """With proj = [U_1 .. U_K] (no bias), the layer computes MSSA(Z|U) / c, c = p/((N+1) eps^2)."""
    from cratelib.unrolling import mssa_operator

    K, p, d, T, eps = 3, 4, 12, 6, 0.5
    layer = MSSA(d, K).double()
    with torch.no_grad():
        layer.proj.weight.copy_(layer.qkv.weight.T)
        layer.proj.bias.zero_()
    U = layer.qkv.weight.detach().reshape(K, p, d).mT  # (K, d, p)
    z = torch.randn(2, T, d, dtype=torch.float64)
    c = p / (T * eps**2)
    torch.testing.assert_close(layer(z), mssa_operator(z, U, eps, scale=p**-0.5) / c)
