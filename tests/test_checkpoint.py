"""cratelib checkpoints (atomic, self-describing) and the official CRATE state-dict layout."""
import os

import pytest
import torch
import torch.nn.functional as F

from cratelib import create_model, load_checkpoint, load_official_checkpoint, save_checkpoint
from cratelib.checkpoint import convert_official_state_dict


def official_state_dict(dim=48, depth=2, patch=8, grid=4, classes=5, seed=0):
    """A state dict with the official implementation's key names and shapes (random values)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.2  # noqa: E731
    pd = 3 * patch * patch
    sd = {
        "pos_embedding": r(1, grid * grid + 1, dim), "cls_token": r(1, 1, dim),
        "to_patch_embedding.1.weight": 1 + r(pd), "to_patch_embedding.1.bias": r(pd),
        "to_patch_embedding.2.weight": r(dim, pd), "to_patch_embedding.2.bias": r(dim),
        "to_patch_embedding.3.weight": 1 + r(dim), "to_patch_embedding.3.bias": r(dim),
        "mlp_head.0.weight": 1 + r(dim), "mlp_head.0.bias": r(dim),
        "mlp_head.1.weight": r(classes, dim), "mlp_head.1.bias": r(classes),
    }
    for i in range(depth):
        p = f"transformer.layers.{i}."
        sd |= {p + "0.norm.weight": 1 + r(dim), p + "0.norm.bias": r(dim), p + "0.fn.qkv.weight": r(dim, dim),
               p + "0.fn.to_out.0.weight": r(dim, dim), p + "0.fn.to_out.0.bias": r(dim),
               p + "1.norm.weight": 1 + r(dim), p + "1.norm.bias": r(dim), p + "1.fn.weight": r(dim, dim)}
    return sd


def official_forward(sd, img, heads, patch, depth, eta=0.1, lam=0.1):
    """The official model/crate.py forward, written out functionally from its state dict."""
    b, c, H, W = img.shape
    x = img.reshape(b, c, H // patch, patch, W // patch, patch).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, patch * patch * c)
    ln = lambda t, k: F.layer_norm(t, t.shape[-1:], sd[k + ".weight"], sd[k + ".bias"])  # noqa: E731
    x = ln(F.linear(ln(x, "to_patch_embedding.1"), sd["to_patch_embedding.2.weight"], sd["to_patch_embedding.2.bias"]),
           "to_patch_embedding.3")
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), x], 1) + sd["pos_embedding"][:, : x.shape[1] + 1]
    for i in range(depth):
        p = f"transformer.layers.{i}."
        h = ln(x, p + "0.norm")
        w = F.linear(h, sd[p + "0.fn.qkv.weight"])
        w = w.reshape(b, -1, heads, w.shape[-1] // heads).transpose(1, 2)
        a = torch.softmax(w @ w.transpose(-1, -2) * w.shape[-1] ** -0.5, -1) @ w
        a = a.transpose(1, 2).reshape(b, -1, heads * w.shape[-1])
        x = F.linear(a, sd[p + "0.fn.to_out.0.weight"], sd[p + "0.fn.to_out.0.bias"]) + x
        h = ln(x, p + "1.norm")
        D = sd[p + "1.fn.weight"]
        x = F.relu(h + eta * (F.linear(h, D.t()) - F.linear(F.linear(h, D), D.t())) - eta * lam)
    return F.linear(ln(x[:, 0], "mlp_head.0"), sd["mlp_head.1.weight"], sd["mlp_head.1.bias"])


def test_official_checkpoint_reproduces_official_forward(tmp_path):
    sd = official_state_dict()
    path = tmp_path / "crate.pth"
    torch.save({"model": {"module." + k: v for k, v in sd.items()}}, path)  # a wrapped, DDP-style file
    model = load_official_checkpoint(path, num_heads=4).eval()
    c = model.config
    assert (c.dim, c.depth, c.patch_size, c.img_size, c.num_classes, c.num_heads) == (48, 2, 8, 32, 5, 4)
    img = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(img), official_forward(sd, img, heads=4, patch=8, depth=2), atol=1e-5, rtol=1e-4)


def test_official_checkpoint_at_another_resolution():
    model = load_official_checkpoint(official_state_dict(), num_heads=4, img_size=64)
    assert model.config.img_size == 64 and model.pos_embed.shape == (1, 65, 48)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_official_sizes_infer_heads():
    sd = official_state_dict(dim=384, depth=1, classes=3)
    assert load_official_checkpoint(sd).config.num_heads == 6
    with pytest.raises(ValueError, match="pass num_heads"):
        load_official_checkpoint(official_state_dict(dim=40, depth=1))


def test_official_checkpoint_rejects_fields_the_weights_determine(tmp_path):
    path = tmp_path / "crate.pth"
    torch.save(official_state_dict(), path)  # 48 wide, 2 layers, patch 8, 5 classes
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(path, num_heads=4, num_classes=10)
    msg = str(err.value)
    assert "num_classes=10 (the weights have num_classes=5)" in msg and "model.reset_classifier(num_classes)" in msg
    with pytest.raises(ValueError, match=r"depth=3 \(the weights have depth=2\), dim=64 \(the weights have dim=48\)"):
        load_official_checkpoint(path, num_heads=4, dim=64, depth=3)
    with pytest.raises(ValueError, match=r"attn='mhsa' \(the weights have attn='mssa'\)"):
        load_official_checkpoint(path, num_heads=4, attn="mhsa")
    with pytest.raises(ValueError, match=r"head_dim=6 \(the weights have head_dim=12\)"):
        load_official_checkpoint(path, num_heads=4, head_dim=6)
    with pytest.raises(ValueError, match="num_heads=5 does not divide the 48 rows"):
        load_official_checkpoint(path, num_heads=5)
    # values that agree with the weights pass, fields the weights leave open apply, and the head
    # is replaced after loading
    model = load_official_checkpoint(path, num_heads=4, num_classes=5, patch_size=8, residual_from_norm=True)
    assert model.config.residual_from_norm and model.config.num_classes == 5 and model.config.head_dim is None
    model.reset_classifier(10)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_mismatched_official_keys_are_named():
    sd = official_state_dict()
    del sd["mlp_head.1.bias"]
    sd["transformer.layers.0.2.fn.weight"] = torch.zeros(1)
    with pytest.raises(KeyError) as err:
        convert_official_state_dict(sd)
    assert "transformer.layers.0.2.fn.weight" in str(err.value) and "mlp_head.1.bias" in str(err.value)


def test_cratelib_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("crate_sth_nano_patch8", img_size=32, num_classes=4, depth=2).eval()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, epoch=3)
    assert sorted(os.listdir(path.parent)) == ["m.pt"]  # no temporary file left behind
    again = load_checkpoint(path).eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(again(x), model(x))
    assert again.config == model.config and torch.load(path, weights_only=True)["epoch"] == 3
    bigger = load_checkpoint(path, img_size=64)
    assert bigger(torch.randn(1, 3, 64, 64)).shape == (1, 4)


def test_save_failure_leaves_nothing(tmp_path, monkeypatch):
    model = create_model("crate_nano_patch8", img_size=32, num_classes=4, depth=1)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(tmp_path / "m.pt", model)
    assert os.listdir(tmp_path) == []


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save(official_state_dict(), tmp_path / "official.pth")
    with pytest.raises(ValueError, match="load_official_checkpoint"):
        load_checkpoint(tmp_path / "official.pth")


def test_official_state_dict_inverts_the_converter():
    from cratelib.checkpoint import official_state_dict

    model = create_model("crate_nano_patch8", img_size=32, num_classes=10, depth=2)
    official = official_state_dict(model)
    assert "transformer.layers.1.1.fn.weight" in official and not any(k.startswith("blocks.") for k in official)
    back = convert_official_state_dict({"model": official})
    assert back.keys() == model.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())
