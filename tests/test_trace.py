"""trace(): per-layer internals of cratelib models and timm ViTs without user hooks."""
import pytest
import timm
import torch

from cratelib import create_model, trace

SMALL = dict(img_size=32, num_classes=5)


@pytest.fixture(scope="module")
def crate():
    torch.manual_seed(0)
    return create_model("crate_nano_patch8", **SMALL).eval()


def test_trace_matches_forward_and_leaves_model_clean(crate):
    x = torch.randn(2, 3, 32, 32)
    tr = trace(crate, x)
    torch.testing.assert_close(tr.logits, crate(x))
    assert tr.layers == list(range(6)) and tr.grid == (4, 4) and tr.num_prefix == 1
    assert all(b.attn.record is None and b.mlp.record is None for b in crate.blocks)
    # last traced tokens are the model's features
    torch.testing.assert_close(tr.tokens[5], crate.forward_features(x))


def test_trace_internals_are_consistent(crate):
    x = torch.randn(2, 3, 32, 32)
    tr = trace(crate, x, layers=[1, -1])
    assert tr.layers == [1, 5]
    blk = crate.blocks[1]
    # tokens[0] -> block 1 input: recompute block 1's MSSA features from tokens of block 0
    tr0 = trace(crate, x, layers=0)
    h = blk.norm1(tr0.tokens[0])
    u = blk.attn.qkv(h).reshape(2, 17, 6, 32).transpose(1, 2)
    torch.testing.assert_close(tr.q[1], u)
    torch.testing.assert_close(tr.k[1], tr.v[1])
    attn = (u @ u.transpose(-1, -2) * tr.scale).softmax(-1)
    torch.testing.assert_close(tr.attn[1], attn)
    assert tr.cls_attention(1).shape == (2, 6, 4, 4)
    torch.testing.assert_close(tr.cls_attention(1).flatten(2), attn[:, :, 0, 1:])
    assert tr.patch_features(1).shape == (2, 6, 16, 32)
    # ISTA codes are the block output and are non-negative with exact zeros
    torch.testing.assert_close(tr.codes[5], tr.tokens[5])
    assert (tr.codes[5] >= 0).all() and 0 < tr.sparsity(5) < 1


def test_trace_rejects_bad_layers(crate):
    with pytest.raises(ValueError, match="out of range"):
        trace(crate, torch.randn(1, 3, 32, 32), layers=[6])


def test_trace_timm_vit_matches_manual_attention():
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=5, depth=3).eval()
    x = torch.randn(2, 3, 32, 32)
    tr = trace(vit, x, layers=[-1])
    torch.testing.assert_close(tr.logits, vit(x))
    blk = vit.blocks[2]
    prev = trace(vit, x, layers=[1]).tokens[1]
    h = blk.norm1(prev)
    qkv = blk.attn.qkv(h).reshape(2, 17, 3, 3, 64).permute(2, 0, 3, 1, 4)
    attn = (qkv[0] @ qkv[1].transpose(-1, -2) * 64**-0.5).softmax(-1)
    torch.testing.assert_close(tr.attn[2], attn)
    torch.testing.assert_close(tr.patch_features(2), qkv[1][:, :, 1:])
    assert tr.grid == (4, 4) and tr.cls_attention(2).shape == (2, 3, 4, 4)


def test_trace_rejects_non_transformers():
    with pytest.raises(TypeError, match="CRATE model or a timm VisionTransformer"):
        trace(torch.nn.Linear(3, 3), torch.randn(1, 3, 8, 8))


def test_trace_tost_records_membership_maps_of_the_patches():
    torch.manual_seed(0)
    tost = create_model("tost_nano_patch8", depth=2, **SMALL).eval()
    x = torch.randn(2, 3, 32, 32)
    tr = trace(tost, x)
    torch.testing.assert_close(tr.logits, tost(x))
    assert tr.layers == [0, 1] and sorted(tr.membership) == [0, 1] and not tr.attn and not tr.q
    # recompute layer 1's Pi from the traced tokens of layer 0, independently of the layer's code
    blk = tost.blocks[1]
    w = blk.attn.qkv(blk.norm1(tr.tokens[0])).reshape(2, 17, 6, 32).transpose(1, 2)  # (B, K, T, p)
    score = (w / w.norm(dim=2, keepdim=True)).square().sum(-1)
    pi = torch.softmax(score * blk.attn.temp.reshape(1, 6, 1), dim=1)
    torch.testing.assert_close(tr.membership[1], pi)
    torch.testing.assert_close(tr.patch_features(1), w[:, :, 1:])
    maps = tr.membership_maps(1)
    assert maps.shape == (2, 6, 4, 4)
    torch.testing.assert_close(maps[:, :, 2, 3], pi[:, :, 1 + 2 * 4 + 3])  # row-major patch grid
    torch.testing.assert_close(maps.sum(1), torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match="membership_maps"):
        tr.cls_attention(1)


def test_membership_maps_need_a_tssa_layer(crate):
    tr = trace(crate, torch.randn(1, 3, 32, 32), layers=[0])
    with pytest.raises(ValueError, match="no TSSA layer traced"):
        tr.membership_maps(0)
    assert tr.cls_attention(0).shape == (1, 6, 4, 4)  # the other families keep their CLS attention


def test_trace_crate_alpha_records_overcomplete_sparse_codes():
    torch.manual_seed(0)
    model = create_model("crate_alpha_nano_patch8", depth=2, **SMALL).eval()
    x = torch.randn(1, 3, 32, 32)
    tr = trace(model, x)
    blk = model.blocks[1]
    half = tr.tokens[0] + blk.attn(blk.norm1(tr.tokens[0]))
    torch.testing.assert_close(tr.codes[1], blk.mlp.codes(blk.norm2(half)))
    assert tr.codes[1].shape == (1, 17, 4 * 192) and 0 < tr.sparsity(1) < 1
    assert tr.cls_attention(1).shape == (1, 6, 4, 4)
