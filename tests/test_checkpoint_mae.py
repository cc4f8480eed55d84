"""The released CRATE-MAE weights: the official key layout, the official forward, refusals."""
import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cratelib import load_official_checkpoint, load_official_mae_checkpoint
from cratelib.models.crate_mae import sincos_pos_embed


def official_sincos(dim, grid):
    """The official 2-D table (MAE's pos_embed.py), written out in numpy: meshgrid(w, h), the first
    half of the features from the first grid array (the column), [sin, cos] per axis, a zero [CLS] row."""
    gw, gh = np.meshgrid(np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32))

    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float32) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    table = np.concatenate([one(dim // 2, gw), one(dim // 2, gh)], axis=1)
    return torch.from_numpy(np.concatenate([np.zeros((1, dim)), table])).float().unsqueeze(0)


def official_mae_state_dict(dim=32, depth=2, dec_depth=2, patch=8, grid=4, seed=0):
    """Random tensors in the official MaskedAutoencoderViT layout (CRATE blocks), fixed positions."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.2  # noqa: E731
    pd = 3 * patch * patch
    pos = official_sincos(dim, grid)
    sd = {"cls_token": r(1, 1, dim), "mask_token": r(1, 1, dim), "pos_embed": pos.clone(), "decoder_pos_embed": pos.clone(),
          "patch_embed.proj.weight": r(dim, 3, patch, patch), "patch_embed.proj.bias": r(dim),
          "norm.weight": 1 + r(dim), "norm.bias": r(dim), "decoder_embed.weight": r(dim, dim), "decoder_embed.bias": r(dim),
          "decoder_norm.weight": 1 + r(dim), "decoder_norm.bias": r(dim),
          "decoder_pred.weight": r(pd, dim), "decoder_pred.bias": r(pd)}
    for i in range(depth):
        p = f"blocks.{i}.layers.0."
        sd |= {p + "0.norm.weight": 1 + r(dim), p + "0.norm.bias": r(dim), p + "0.fn.qkv.weight": r(dim, dim),
               p + "0.fn.to_out.0.weight": r(dim, dim), p + "0.fn.to_out.0.bias": r(dim),
               p + "1.norm.weight": 1 + r(dim), p + "1.norm.bias": r(dim), p + "1.fn.weight": r(dim, dim)}
    for i in range(dec_depth):
        p = f"decoder_blocks.{i}.layers.0."
        sd |= {p + "0.norm.weight": 1 + r(dim), p + "0.norm.bias": r(dim), p + "0.fn.weight": r(dim, dim),
               p + "1.norm.weight": 1 + r(dim), p + "1.norm.bias": r(dim), p + "1.fn.qkv.weight": r(dim, dim),
               p + "1.fn.to_out.0.weight": r(dim, dim), p + "1.fn.to_out.0.bias": r(dim)}
    return sd


def _mssa(sd, key, h, heads):
    w = F.linear(h, sd[key + ".qkv.weight"])
    b, n, inner = w.shape
    w = w.reshape(b, n, heads, inner // heads).transpose(1, 2)
    a = torch.softmax(w @ w.transpose(-1, -2) * (inner // heads) ** -0.5, -1) @ w
    return F.linear(a.transpose(1, 2).reshape(b, n, inner), sd[key + ".to_out.0.weight"], sd[key + ".to_out.0.bias"])


def official_mae_forward(sd, imgs, heads, patch, depth, dec_depth, mask_ratio=0.75, eta=0.1, lam=0.5):
    """crate_ae.py's forward written out from the state dict: shuffle-and-gather masking from
    torch.rand noise, mask tokens inserted, decoder_pos_embed added, encoder, decoder, loss."""
    ln = lambda t, k, eps=1e-5: F.layer_norm(t, t.shape[-1:], sd[k + ".weight"], sd[k + ".bias"], eps)  # noqa: E731
    x = F.conv2d(imgs, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=patch).flatten(2).transpose(1, 2)
    b, n, d = x.shape
    keep = int(n * (1 - mask_ratio))
    shuffle = torch.rand(b, n).argsort(1)
    restore = shuffle.argsort(1)
    kept = torch.gather(x, 1, shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, n)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, restore)
    x = torch.cat([kept, sd["mask_token"].expand(b, n - keep, d)], 1)
    x = torch.gather(x, 1, restore[..., None].expand(-1, -1, d))
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), x], 1) + sd["decoder_pos_embed"]
    for i in range(depth):
        p = f"blocks.{i}.layers.0."
        x = _mssa(sd, p + "0.fn", ln(x, p + "0.norm"), heads) + x
        h, D = ln(x, p + "1.norm"), sd[p + "1.fn.weight"]
        x = F.relu(h + eta * (F.linear(h, D.t()) - F.linear(F.linear(h, D), D.t())) - eta * lam)
    x = ln(x, "norm", 1e-6)
    for i in range(dec_depth):
        p = f"decoder_blocks.{i}.layers.0."
        y = F.linear(ln(x, p + "0.norm"), sd[p + "0.fn.weight"])
        x = y - _mssa(sd, p + "1.fn", ln(y, p + "1.norm"), heads)
    pred = F.linear(ln(x, "decoder_norm", 1e-6), sd["decoder_pred.weight"], sd["decoder_pred.bias"])[:, 1:]
    g = imgs.shape[-1] // patch
    target = torch.einsum("nchpwq->nhwpqc", imgs.reshape(b, 3, g, patch, g, patch)).reshape(b, n, -1)
    loss = ((pred - target) ** 2).mean(-1)
    return (loss * mask).sum() / mask.sum(), pred, mask.bool()


def test_our_positions_are_the_official_table():
    for dim, grid in ((32, 4), (768, 14)):
        torch.testing.assert_close(sincos_pos_embed(dim, (grid, grid)), official_sincos(dim, grid), atol=2e-6, rtol=0)


def test_released_layout_reproduces_the_official_forward(tmp_path):
    sd = official_mae_state_dict()
    path = tmp_path / "crate-mae.pth"
    # as Meta's MAE code saves it: wrapped, with the run's argparse.Namespace beside the weights
    torch.save({"model": sd, "args": argparse.Namespace(mask_ratio=0.75, norm_pix_loss=False), "epoch": 3}, path)
    model = load_official_mae_checkpoint(path, num_heads=2).eval()
    c = model.config
    assert (c.dim, c.depth, c.decoder_layers, c.patch_size, c.img_size, c.num_heads, c.lambd) == (32, 2, 2, 8, 32, 2, 0.5)
    imgs = torch.randn(3, 3, 32, 32)
    torch.manual_seed(7)
    loss, pred, mask = official_mae_forward(sd, imgs, heads=2, patch=8, depth=2, dec_depth=2)
    torch.manual_seed(7)
    out = model(imgs)  # draws its mask from the same global generator
    assert torch.equal(out.mask, mask)
    torch.testing.assert_close(out.pred, pred, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.loss, loss, atol=1e-5, rtol=1e-4)


def test_ddp_prefixes_and_a_bare_dict_load():
    sd = official_mae_state_dict(dec_depth=3)
    model = load_official_mae_checkpoint({"module." + k: v for k, v in sd.items()}, num_heads=4, img_size=64)
    assert model.config.decoder_layers == 3 and model.config.img_size == 64
    assert model.encoder(torch.randn(1, 3, 64, 64)).shape == (1, 32)


def test_official_widths_give_the_heads():
    sd = official_mae_state_dict(dim=384, depth=1, dec_depth=1)
    assert load_official_mae_checkpoint(sd).config.num_heads == 6
    with pytest.raises(ValueError, match="not an official CRATE-MAE size .* pass num_heads"):
        load_official_mae_checkpoint(official_mae_state_dict(dim=40, depth=1, dec_depth=1))


def test_other_files_are_refused_naming_what_was_read(tmp_path):
    crate = {"cls_token": torch.zeros(1, 1, 32), "pos_embedding": torch.zeros(1, 17, 32),
             "to_patch_embedding.2.weight": torch.zeros(32, 192), "transformer.layers.0.0.fn.qkv.weight": torch.zeros(32, 32)}
    with pytest.raises(ValueError, match="not an official CRATE-MAE checkpoint.*load_official_checkpoint"):
        load_official_mae_checkpoint(crate)  # a CRATE classifier
    vit = {k.replace("layers.0.0.fn.qkv", "attn.qkv"): v for k, v in official_mae_state_dict().items()}
    with pytest.raises(ValueError, match=r"unexpected keys \['blocks.0.attn.qkv.weight'.*ViT-MAE"):
        load_official_mae_checkpoint(vit)
    sd = official_mae_state_dict()
    del sd["decoder_embed.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['decoder_embed.bias'\]"):
        load_official_mae_checkpoint(sd, num_heads=2)
    sd = official_mae_state_dict()
    sd["decoder_pos_embed"] = torch.randn_like(sd["decoder_pos_embed"])  # learned, not the fixed table
    with pytest.raises(ValueError, match="decoder_pos_embed is not the fixed 2-D sine-cosine table"):
        load_official_mae_checkpoint(sd, num_heads=2)
    with pytest.raises(ValueError, match=r"cannot change them: depth=3 \(the weights have depth=2\)"):
        load_official_mae_checkpoint(official_mae_state_dict(), num_heads=2, depth=3)
    with pytest.raises(KeyError, match="CRATE-MAE weights: load them with cratelib.load_official_mae_checkpoint"):
        load_official_checkpoint(official_mae_state_dict())
    torch.save(torch.randn(3), tmp_path / "t.pth")
    with pytest.raises(ValueError, match="holds a Tensor, not a state dict"):
        load_official_mae_checkpoint(tmp_path / "t.pth")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_official_mae_checkpoint(tmp_path / "missing.pth")
