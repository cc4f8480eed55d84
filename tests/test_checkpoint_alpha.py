"""Released CRATE-alpha weights: the exact key layout of torch_inference/model/crate_alpha.py."""
import pytest
import torch
import torch.nn.functional as F

from cratelib import load_crate_alpha_checkpoint, load_official_checkpoint
from cratelib.checkpoint_alpha import convert_crate_alpha_state_dict
from test_checkpoint import official_state_dict


def alpha_shapes(dim=24, depth=2, patch=4, grid=4, classes=5, heads_dim=24, ratio=4, chans=3):
    """Key -> shape of a CRATE-alpha state dict, as the official PyTorch model names them."""
    shapes = {"conv1.weight": (dim, chans, patch, patch), "conv1.bias": (dim,),
              "pos_embedding": (1, grid * grid + 1, dim), "cls_token": (1, 1, dim),
              "mlp_head.0.weight": (dim,), "mlp_head.0.bias": (dim,),
              "mlp_head.1.weight": (classes, dim), "mlp_head.1.bias": (classes,)}
    for i in range(depth):
        p = f"transformer.layers.{i}."
        shapes |= {p + "0.norm.weight": (dim,), p + "0.norm.bias": (dim,), p + "0.fn.qkv.weight": (heads_dim, dim),
                   p + "0.fn.to_out.0.weight": (dim, heads_dim), p + "1.norm.weight": (dim,),
                   p + "1.norm.bias": (dim,), p + "1.fn.D": (dim, ratio * dim), p + "1.fn.D1": (dim, ratio * dim)}
    return shapes


def alpha_state_dict(seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*s, generator=g) * 0.2 + (1.0 if "norm.weight" in k or k == "mlp_head.0.weight" else 0.0)
            for k, s in alpha_shapes(**kw).items()}


def alpha_forward(sd, img, heads, depth, eta=0.1, lam=0.1):
    """The official crate_alpha.py forward written out from the raw tensors."""
    x = F.conv2d(img, sd["conv1.weight"], sd["conv1.bias"], stride=sd["conv1.weight"].shape[-1])
    x = x.flatten(2).transpose(1, 2)
    b, n, _ = x.shape
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), x], 1) + sd["pos_embedding"][:, : n + 1]
    for i in range(depth):
        p = f"transformer.layers.{i}."
        h = F.layer_norm(x, x.shape[-1:], sd[p + "0.norm.weight"], sd[p + "0.norm.bias"], eps=1e-6)
        w = F.linear(h, sd[p + "0.fn.qkv.weight"])
        w = w.reshape(b, n + 1, heads, -1).transpose(1, 2)
        a = torch.softmax(w @ w.transpose(-1, -2) * w.shape[-1] ** -0.5, -1) @ w
        x = F.linear(a.transpose(1, 2).reshape(b, n + 1, -1), sd[p + "0.fn.to_out.0.weight"]) + x
        h = F.layer_norm(x, x.shape[-1:], sd[p + "1.norm.weight"], sd[p + "1.norm.bias"], eps=1e-6)
        D, D1 = sd[p + "1.fn.D"], sd[p + "1.fn.D1"]
        z1 = F.relu(eta * torch.einsum("pd,nlp->nld", D, h) - eta * lam)
        grad = torch.einsum("pd,nlp->nld", D, torch.einsum("dp,nlp->nld", D, z1) - h)
        z2 = F.relu(z1 - eta * grad - eta * lam)
        x = torch.einsum("dp,nlp->nld", D1, z2) + x
    cls = F.layer_norm(x[:, 0], x.shape[-1:], sd["mlp_head.0.weight"], sd["mlp_head.0.bias"])
    return F.linear(cls, sd["mlp_head.1.weight"], sd["mlp_head.1.bias"])


def test_released_layout_reproduces_the_official_forward(tmp_path):
    sd = alpha_state_dict()
    path = tmp_path / "crate_alpha_tiny.pth"
    torch.save(sd, path)
    model = load_crate_alpha_checkpoint(path, num_heads=3).eval()
    c = model.config
    assert (c.dim, c.depth, c.patch_size, c.img_size, c.num_classes, c.num_heads, c.odl_ratio) == (24, 2, 4, 16, 5, 3, 4)
    assert (c.attn, c.mlp, c.patch_norm, c.proj_bias, c.norm_eps) == ("mssa", "odl", False, False, 1e-6)
    img = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(img), alpha_forward(sd, img, heads=3, depth=2), atol=1e-5, rtol=1e-4)


def test_every_tensor_lands_in_its_parameter():
    sd = alpha_state_dict(depth=3)
    model = load_crate_alpha_checkpoint(sd, num_heads=3)
    for i, blk in enumerate(model.blocks):
        p = f"transformer.layers.{i}."
        pairs = [(blk.norm1.weight, "0.norm.weight"), (blk.norm1.bias, "0.norm.bias"),
                 (blk.attn.qkv.weight, "0.fn.qkv.weight"), (blk.attn.proj.weight, "0.fn.to_out.0.weight"),
                 (blk.norm2.weight, "1.norm.weight"), (blk.norm2.bias, "1.norm.bias"),
                 (blk.mlp.D, "1.fn.D"), (blk.mlp.D1, "1.fn.D1")]
        for param, key in pairs:
            assert torch.equal(param, sd[p + key]), p + key
    for param, key in [(model.cls_token, "cls_token"), (model.pos_embed, "pos_embedding"),
                       (model.patch_embed.proj.bias, "conv1.bias"), (model.norm.weight, "mlp_head.0.weight"),
                       (model.norm.bias, "mlp_head.0.bias"), (model.head.weight, "mlp_head.1.weight"),
                       (model.head.bias, "mlp_head.1.bias")]:
        assert torch.equal(param, sd[key]), key
    # the convolution is the linear projection over (p1 p2 c)-ordered pixels
    conv = sd["conv1.weight"]
    assert torch.equal(model.patch_embed.proj.weight.reshape(24, 4, 4, 3), conv.permute(0, 2, 3, 1))


def test_official_sizes_are_recognised_by_width():
    # heads come from the official table; a 192-wide file is CRATE-alpha-T (3 heads), not nano
    model = load_crate_alpha_checkpoint(alpha_state_dict(dim=192, heads_dim=192, depth=1, patch=16, grid=2))
    assert (model.config.num_heads, model.config.patch_size) == (3, 16)
    with pytest.raises(ValueError, match="not an official CRATE-alpha size .*pass num_heads"):
        load_crate_alpha_checkpoint(alpha_state_dict())


def test_an_official_crate_file_is_refused_with_what_was_read():
    with pytest.raises(KeyError) as err:
        load_crate_alpha_checkpoint(official_state_dict())
    msg = str(err.value)
    assert "not a CRATE-alpha state dict" in msg and "to_patch_embedding.1.weight" in msg
    assert "conv1.weight" in msg and "load_official_checkpoint" in msg
    # and the other way round
    with pytest.raises(KeyError, match="load_crate_alpha_checkpoint"):
        load_official_checkpoint(alpha_state_dict(), num_heads=3)


def test_damaged_files_name_the_keys(tmp_path):
    sd = alpha_state_dict(depth=3)
    del sd["transformer.layers.1.1.fn.D1"]
    sd["transformer.layers.0.0.fn.to_out.0.bias"] = torch.zeros(24)
    with pytest.raises(KeyError) as err:
        convert_crate_alpha_state_dict(sd)
    assert "transformer.layers.1.1.fn.D1" in str(err.value) and "to_out.0.bias" in str(err.value)
    with pytest.raises(ValueError, match=r"D must be \(d, r d\)"):
        load_crate_alpha_checkpoint(alpha_state_dict() | {f"transformer.layers.{i}.1.fn.{n}": torch.zeros(24, 50)
                                                            for i in range(2) for n in ("D", "D1")}, num_heads=3)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        load_crate_alpha_checkpoint(tmp_path / "list.pth")


def test_fields_the_weights_determine_cannot_be_overridden():
    sd = alpha_state_dict()
    with pytest.raises(ValueError, match=r"load_crate_alpha_checkpoint reads these fields .*num_classes=9 "
                                         r"\(the weights have num_classes=5\)"):
        load_crate_alpha_checkpoint(sd, num_heads=3, num_classes=9)
    with pytest.raises(ValueError, match=r"mlp='ista' \(the weights have mlp='odl'\)"):
        load_crate_alpha_checkpoint(sd, num_heads=3, mlp="ista")
    model = load_crate_alpha_checkpoint(sd, num_heads=3, img_size=32, step_size=0.2, patch_size=4)
    assert model.config.img_size == 32 and model.pos_embed.shape == (1, 65, 24) and model.config.step_size == 0.2
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_released_sizes_build_the_registered_models():
    """B/16 and L/14 in the released layout have the parameter count of the registered names."""
    from cratelib import create_model

    for name, kw in [("crate_alpha_base_patch16", dict(dim=768, depth=12, patch=16, grid=14, heads_dim=768)),
                     ("crate_alpha_large_patch14", dict(dim=1024, depth=24, patch=14, grid=16, heads_dim=1024))]:
        shapes = alpha_shapes(classes=1000, **kw)
        with torch.device("meta"):
            model = create_model(name)
        official = sum(torch.Size(s).numel() for s in shapes.values())
        assert model.num_params() == official == model.config.num_params()
        state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
        converted = convert_crate_alpha_state_dict(state)
        assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_a_model_written_back_in_the_released_layout_is_the_file_it_was_read_from():
    from cratelib.checkpoint_alpha import crate_alpha_state_dict

    sd = alpha_state_dict(depth=3)
    back = crate_alpha_state_dict(load_crate_alpha_checkpoint(sd, num_heads=3))
    assert back.keys() == sd.keys()
    for key, value in sd.items():
        assert torch.equal(back[key], value), key  # the convolution (d, C, P, P) included
    with pytest.raises(ValueError, match="expected a crate_alpha model"):
        crate_alpha_state_dict(load_official_checkpoint(official_state_dict(), num_heads=4))
