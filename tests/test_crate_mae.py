"""CRATE-MAE: masking, the masked-patch loss, the inverse decoder layer, parameter counts, trace."""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

from cratelib import CRATEMAE, CRATEMAEConfig, create_model, list_models, load_checkpoint, save_checkpoint, trace
from cratelib.models.crate_mae import (DecoderBlock, masked_patch_loss, num_visible, patchify, random_mask,
                                       unpatchify)
from cratelib.models.registry import model_config

TINY = dict(img_size=32, dim=32, num_heads=2, depth=2)


@pytest.fixture(scope="module")
def mae():
    torch.manual_seed(0)
    return create_model("crate_mae_nano_patch8", **TINY).eval()


def hand_patchify(img, p):
    """Patches as the official code cuts them: rows of the grid, then (row, column, channel) in a patch."""
    b, c, H, W = img.shape
    x = img.reshape(b, c, H // p, p, W // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (H // p) * (W // p), p * p * c)


@pytest.mark.parametrize("n,ratio", [(16, 0.75), (64, 0.75), (49, 0.5), (10, 0.9), (196, 0.75), (7, 0.3)])
def test_masking_hides_exactly_the_right_number_of_patches(n, ratio):
    g = torch.Generator().manual_seed(1)
    mask = random_mask(8, n, ratio, generator=g)
    keep = int(round(n * (1 - ratio), 6))  # floor of N (1 - ratio), free of float error
    assert mask.dtype == torch.bool and mask.shape == (8, n)
    assert (mask.sum(1) == n - keep).all()
    assert num_visible(n, ratio) == keep
    assert len({tuple(row.tolist()) for row in mask}) > 1  # each image draws its own mask


def test_every_patch_is_masked_equally_often():
    g = torch.Generator().manual_seed(2)
    freq = random_mask(4000, 16, 0.75, generator=g).float().mean(0)
    assert (freq - 0.75).abs().max() < 0.03  # binomial sd 0.007


def test_patchify_is_the_official_cut_and_unpatchify_inverts_it():
    img = torch.randn(2, 3, 16, 24)
    torch.testing.assert_close(patchify(img, 8), hand_patchify(img, 8), rtol=0, atol=0)
    torch.testing.assert_close(unpatchify(patchify(img, 8), 8, (2, 3)), img, rtol=0, atol=0)


def test_loss_is_the_mean_squared_error_on_masked_patches_only(mae):
    x = torch.randn(3, 3, 32, 32)
    mask = mae.random_mask(x, torch.Generator().manual_seed(0))
    out = mae(x, mask)
    target = hand_patchify(x, 8)
    per_patch = ((out.pred - target) ** 2).mean(-1)
    torch.testing.assert_close(out.loss, per_patch[mask].mean())
    # the visible patches' targets do not enter the loss
    noisy = target + 5 * (~mask).unsqueeze(-1) * torch.randn_like(target)
    torch.testing.assert_close(masked_patch_loss(out.pred, noisy, mask), out.loss)
    # norm_pix_loss: each target patch standardised with its own mean and unbiased variance
    standard = (target - target.mean(-1, keepdim=True)) / torch.sqrt(target.var(-1, keepdim=True) + 1e-6)
    expect = ((out.pred - standard) ** 2).mean(-1)[mask].mean()
    torch.testing.assert_close(masked_patch_loss(out.pred, target, mask, norm_pix=True), expect)


def test_the_encoder_never_sees_masked_pixels(mae):
    x = torch.randn(2, 3, 32, 32)
    mask = mae.random_mask(x, torch.Generator().manual_seed(3))
    pixel_mask = unpatchify(mask.unsqueeze(-1).expand(-1, -1, 192).float(), 8, (4, 4)).bool()
    changed = torch.where(pixel_mask, torch.randn_like(x), x)
    a, b = mae(x, mask), mae(changed, mask)
    torch.testing.assert_close(a.pred, b.pred, rtol=0, atol=0)
    assert not torch.allclose(a.loss, b.loss)  # the targets did change


def test_a_mask_that_hides_nothing_is_refused(mae):
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="masked patches only"):
        mae(x, torch.zeros(1, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, N\) = \(1, 16\)"):
        mae(x, torch.zeros(1, 15, dtype=torch.bool))


def test_decoder_layer_is_a_linear_map_then_x_minus_mssa():
    torch.manual_seed(0)
    block = create_model("crate_mae_nano_patch8", **TINY).decoder.blocks[0]
    assert isinstance(block, DecoderBlock)
    with torch.no_grad():  # non-trivial LayerNorm parameters
        for norm in (block.norm1, block.norm2):
            norm.weight.add_(torch.randn_like(norm.weight) * 0.3)
            norm.bias.add_(torch.randn_like(norm.bias) * 0.3)
    x = torch.randn(2, 5, 32)
    y = F.layer_norm(x, (32,), block.norm1.weight, block.norm1.bias) @ block.weight.T  # D LN(x)
    h = F.layer_norm(y, (32,), block.norm2.weight, block.norm2.bias)
    u = (h @ block.attn.qkv.weight.T).reshape(2, 5, 2, 16).transpose(1, 2)  # U_k^T z, 2 heads
    attn = torch.softmax(u @ u.transpose(-1, -2) / math.sqrt(16), dim=-1)
    mssa = F.linear((attn @ u).transpose(1, 2).reshape(2, 5, 32), block.attn.proj.weight, block.attn.proj.bias)
    torch.testing.assert_close(block(x), y - mssa)


def _crate_mae_count(d, depth, dec_depth, patch_dim):
    norms = 4 * d  # two LayerNorms per layer
    encoder_layer = norms + d * d + (d * d + d) + d * d  # U^T, output projection, ISTA dictionary
    decoder_layer = norms + d * d + d * d + (d * d + d)  # D, U^T, output projection
    ends = (patch_dim * d + d) + 2 * d + 2 * d + 2 * d + (d * patch_dim + patch_dim)  # patches, tokens, norms, pixels
    return ends + depth * encoder_layer + dec_depth * decoder_layer


def _vit_mae_count(d, depth, dec_depth, patch_dim):
    vit_layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    ends = (patch_dim * d + d) + 2 * d + 2 * d + 2 * d + (d * patch_dim + patch_dim)
    return ends + (depth + dec_depth) * vit_layer


def test_parameter_counts_against_a_standard_mae():
    base = model_config("crate_mae_base_patch16")
    assert (base.dim, base.num_heads, base.depth, base.decoder_layers, base.decoder_heads) == (768, 12, 12, 12, 12)
    crate = base.num_params()
    assert crate == _crate_mae_count(768, 12, 12, 768)
    same = CRATEMAEConfig(**{**base.to_dict(), "blocks": "vit"}).num_params()  # ViT blocks, same depths
    assert same == _vit_mae_count(768, 12, 12, 768)
    # the official file's mae_vit_base: decoder of 8 layers with 16 heads
    official = CRATEMAEConfig(**{**base.to_dict(), "blocks": "vit", "decoder_depth": 8, "decoder_num_heads": 16})
    assert official.num_params() == _vit_mae_count(768, 12, 8, 768)
    # measured: 43.75M against 171.29M (25.5 %) and 142.94M (30.6 %, the paper's "about 30 %")
    assert round(crate / same, 3) == 0.255 and round(crate / official.num_params(), 3) == 0.306


def test_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = create_model("crate_mae_nano_patch16", img_size=32, dim=32, num_heads=4, depth=2)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.pred.shape == (4, 4, 768) and out.mask.sum().item() == 4 * 3 and torch.isfinite(out.loss)
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_registry_names_sizes_and_timm():
    names = set(list_models("crate_mae_*"))
    assert {f"crate_mae_{s}_patch{p}" for s in ("nano", "tiny", "small", "base", "large") for p in (8, 16)} == names
    nano = model_config("crate_mae_nano_patch8")
    assert (nano.dim, nano.num_heads, nano.depth, nano.patch_size) == (192, 6, 6, 8)
    with torch.device("meta"):
        m = timm.create_model("crate_mae_base_patch16")
    assert isinstance(m, CRATEMAE) and len(m.encoder.blocks) == len(m.decoder.blocks) == 12


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"mask_ratio must be in \(0, 1\)"):
        CRATEMAEConfig(mask_ratio=1.0)
    with pytest.raises(ValueError, match="decoder_num_heads=5"):
        CRATEMAEConfig(dim=64, num_heads=4, decoder_num_heads=5)
    with pytest.raises(ValueError, match="unknown CRATEMAEConfig keys"):
        create_model("crate_mae_nano_patch8", num_classes=10)


def test_trace_reads_the_encoder_on_the_whole_image(mae):
    x = torch.randn(2, 3, 32, 32)
    tr = trace(mae, x)
    assert tr.layers == [0, 1] and tr.grid == (4, 4) and tr.num_prefix == 1
    torch.testing.assert_close(tr.logits, mae.encoder.forward_features(x)[:, 0])
    torch.testing.assert_close(mae.encoder.norm(tr.tokens[1]), mae.forward_features(x))
    blk = mae.encoder.blocks[1]
    u = blk.attn.qkv(blk.norm1(tr.tokens[0])).reshape(2, 17, 2, 16).transpose(1, 2)
    torch.testing.assert_close(tr.k[1], u)
    assert tr.sparsity(1) > 0  # ISTA codes with exact zeros
    assert all(b.attn.record is None for b in mae.encoder.blocks)


def test_reconstruction_keeps_visible_patches(mae):
    x = torch.randn(2, 3, 32, 32)
    mask = mae.random_mask(x, torch.Generator().manual_seed(4))
    rec = patchify(mae.reconstruct(x, mask), 8)
    torch.testing.assert_close(rec[~mask], patchify(x, 8)[~mask], rtol=0, atol=0)
    torch.testing.assert_close(rec[mask], mae(x, mask).pred[mask])


def test_cratelib_checkpoint_round_trip(tmp_path, mae):
    save_checkpoint(tmp_path / "mae.pt", mae, epoch=3)
    back = load_checkpoint(tmp_path / "mae.pt").eval()
    assert isinstance(back, CRATEMAE) and back.config == mae.config
    x = torch.randn(1, 3, 32, 32)
    mask = mae.random_mask(x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(back(x, mask).pred, mae(x, mask).pred, rtol=0, atol=0)
    assert load_checkpoint(tmp_path / "mae.pt", img_size=64).encoder(torch.randn(1, 3, 64, 64)).shape == (1, 32)
