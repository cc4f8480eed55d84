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
