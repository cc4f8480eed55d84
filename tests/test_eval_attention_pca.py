"""CLS attention maps (eqs. 10-11) and the PCA of patch features (eq. 12)."""

import numpy as np
import pytest
import timm
import torch

from cratelib import create_model, trace
from cratelib.eval.attention import (
    cls_attention,
    cls_attention_from_qk,
    dino_display,
    model_cls_attention,
    upsample_maps,
)
from cratelib.eval.extract import concat_heads, to_model_input
from cratelib.eval.pca import foreground_mask, pca_foreground, pca_grey_rgb


@pytest.fixture(scope="module")
def crate_with_hand_set_u():
    torch.manual_seed(0)
    model = create_model("crate_nano_patch8", img_size=32, num_classes=4).eval()
    blk = model.blocks[2]
    d, kp = blk.attn.qkv.in_features, blk.attn.qkv.out_features
    # U_k: orthonormal bases, stacked as rows of the bias-free qkv map (U^T)
    u = torch.linalg.qr(torch.randn(d, d))[0][:, :kp]  # (d, K p), orthonormal columns
    with torch.no_grad():
        blk.attn.qkv.weight.copy_(3.0 * u.T)
    return model, 3.0 * u


def eq10_direct(z, u_all, num_heads, scale):
    """A_k,i = softmax_i(scale <U_k^T z_i, U_k^T z_CLS>) from tokens z (B, T, d)."""
    p = u_all.shape[1] // num_heads
    maps = []
    for k in range(num_heads):
        uk = u_all[:, k * p : (k + 1) * p]  # (d, p)
        proj = z @ uk  # (B, T, p)
        logits = torch.einsum("bip,bp->bi", proj[:, 1:], proj[:, 0]) * scale
        maps.append(logits.softmax(-1))
    return torch.stack(maps, 1)  # (B, K, N)


def test_crate_eq10_equals_the_direct_computation(crate_with_hand_set_u):
    model, u_all = crate_with_hand_set_u
    x = torch.randn(2, 3, 32, 32)
    tr = trace(model, x, layers=[1, 2])
    z = model.blocks[2].norm1(tr.tokens[1])  # the input of block 2's MSSA
    heads = model.blocks[2].attn.num_heads
    for scale in (None, 1.0):
        s = tr.scale if scale is None else scale
        got = cls_attention(tr, 2, scale=scale)
        assert got.shape == (2, heads, 4, 4)
        torch.testing.assert_close(got.flatten(2), eq10_direct(z, u_all, heads, s))
    # with the model's scale, eq. 10 is the model's CLS row renormalised over patches
    own = model_cls_attention(tr, 2)
    assert (own.flatten(2).sum(-1) < 1).all()  # the CLS token took some attention itself
    torch.testing.assert_close(own / own.sum((-2, -1), keepdim=True), cls_attention(tr, 2))
    # the printed equations (scale 1) give a different, sharper map here
    assert not torch.allclose(cls_attention(tr, 2, scale=1.0), cls_attention(tr, 2))


def test_vit_eq11_uses_keys_and_the_cls_query():
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=3).eval()
    x = torch.randn(1, 3, 32, 32)
    tr = trace(vit, x, layers=[0])
    blk = vit.blocks[0]
    z = blk.norm1(vit._pos_embed(vit.patch_embed(x)))
    w = blk.attn.qkv.weight  # (3 * d, d): rows = [Q; K; V]
    d, heads = w.shape[1], blk.attn.num_heads
    qkv = (z @ w.T + blk.attn.qkv.bias).reshape(1, 17, 3, heads, d // heads)
    q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)  # (B, H, T, p)
    logits = torch.einsum("bhip,bhp->bhi", k[:, :, 1:], q[:, :, 0]) * tr.scale
    torch.testing.assert_close(cls_attention(tr, 0).flatten(2), logits.softmax(-1))


def test_cls_attention_from_qk_checks_shapes():
    q = torch.randn(1, 2, 10, 4)
    with pytest.raises(ValueError, match="9 patches, but the grid"):
        cls_attention_from_qk(q, q, (2, 2))
    with pytest.raises(ValueError, match="same shape"):
        cls_attention_from_qk(q, q[..., :3], (3, 3))


def test_dino_display_and_upsampling():
    maps = torch.tensor([[[0.5, 0.3], [0.1, 0.1]]])  # (1, 2, 2)
    up, masks = dino_display(maps, size=(4, 6), mass=0.6)
    assert up.shape == masks.shape == (1, 4, 6) and masks.dtype == torch.bool
    assert masks[0, :2, :3].all() and masks[0, :2, 3:].all() and not masks[0, 2:].any()
    assert up[0, 0, 0] == 0.5 and up[0, 3, 5] == pytest.approx(0.1)
    smooth = upsample_maps(maps, (4, 4), "bilinear")
    assert 0.1 < smooth[0, 1, 1] < 0.5 and smooth[0, 1, 1] != up[0, 1, 1]
    with pytest.raises(ValueError, match="nearest"):
        upsample_maps(maps, (4, 4), "cubic")


def planted_low_rank(j=3, grid=(8, 8), d=32, seed=0):
    """Background: one direction + noise; foreground (a square): another + 3-d variation."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(d, d, generator=g))[0]
    bg_dir, fg_dir, parts = basis[:, 0], basis[:, 1], basis[:, 2:5]
    n = grid[0] * grid[1]
    fg = torch.zeros(j, *grid, dtype=torch.bool)
    fg[:, 2:5, 3:7] = True
    fg = fg.reshape(j, n)
    feats = 4.0 * bg_dir.expand(j, n, d).clone()
    coeff = torch.randn(j, n, 3, generator=g)
    feats[fg] = 4.0 * fg_dir + (coeff[fg] @ parts.T)
    feats += 0.05 * torch.randn(j, n, d, generator=g)
    return feats, fg


def test_pca_first_component_separates_planted_foreground():
    feats, fg = planted_low_rank()
    for normalise in ("minmax", "maxabs"):
        assert torch.equal(foreground_mask(feats, normalise=normalise), fg)
        # the sign of u0 is arbitrary: negated features give the same foreground
        assert torch.equal(foreground_mask(-feats, normalise=normalise), fg)
    pos = foreground_mask(feats, foreground="positive")
    neg = foreground_mask(feats, foreground="negative")
    assert torch.equal(pos, fg) ^ torch.equal(neg, fg)


def test_pca_foreground_rgb_and_grey_variant():
    feats, fg = planted_low_rank()
    rgb, mask = pca_foreground(feats, (8, 8))
    assert rgb.shape == (3, 8, 8, 3) and torch.equal(mask.reshape(3, -1), fg)
    assert (rgb[~mask] == 0).all() and rgb[mask].amax() == 1.0
    # the colours follow the planted 3-d part variation of the foreground patches
    assert rgb[mask].std(0).min() > 0.1
    grey, rgb4 = pca_grey_rgb(feats, (8, 8))
    assert grey.shape == (3, 8, 8) and rgb4.shape == (3, 8, 8, 3)
    g = grey.reshape(3, -1)
    assert (g[fg].min() > g[~fg].max()) or (g[fg].max() < g[~fg].min())  # PC1 splits fg/bg


def test_concat_heads_order():
    f = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # (B, H, N, p)
    c = concat_heads(f)
    assert c.shape == (2, 4, 15)
    assert torch.equal(c[1, 2, 5:10], f[1, 1, 2])
    with pytest.raises(ValueError, match=r"\(B, H, N, p\)"):
        concat_heads(f[0])


def test_layer_maps_of_a_tost_model_are_its_patch_memberships():
    import cratelib
    from cratelib.eval.extract import layer_maps

    torch.manual_seed(0)
    model = cratelib.create_model("tost_nano_patch8", img_size=32, num_classes=3, dim=32, num_heads=4, depth=2).eval()
    images = [np.random.default_rng(j).integers(0, 255, (32, 32, 3), dtype=np.uint8) for j in range(2)]
    maps = layer_maps(model, images)  # (L, J, K, h, w)
    assert maps.shape == (2, 2, 4, 4, 4)
    torch.testing.assert_close(maps.sum(2), torch.ones(2, 2, 4, 4))  # a membership over the heads
    tr = cratelib.trace(model, to_model_input(images, 32), layers=[1])
    torch.testing.assert_close(maps[1], tr.membership_maps(1))
