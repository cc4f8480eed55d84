"""The registry, the model family, resolution changes and input validation."""
import math
import subprocess
import sys

import pytest
import timm
import torch

import cratelib
from cratelib import create_model, list_models
from cratelib.models.crate import resample_pos_embed
from cratelib.models.registry import (CRATE_ALPHA_SIZES, CRATE_SIZES, EXTRA_PATCHES, FAMILIES, MAE_FAMILY, SIZES,
                                      TOST_SIZES, VIT_SIZES, model_config)

SMALL = dict(img_size=32, num_classes=7, depth=2)


def test_registry_has_every_family_size_and_patch():
    names = set(list_models())
    for family in FAMILIES:
        sizes = ("tiny", "small", "medium", "large") if family == "tost" else ("tiny", "small", "base", "large")
        for size in ("nano",) + sizes:
            for patch in (8, 16):
                assert f"{family}_{size}_patch{patch}" in names
    assert "crate_alpha_large_patch14" in names  # the released CRATE-alpha-L/14
    assert "tost_base_patch16" not in names and "crate_base_patch14" not in names


@pytest.mark.parametrize("family,size,dims", [
    ("crate", "tiny", (384, 6, 12)), ("crate", "small", (576, 12, 12)),
    ("crate", "base", (768, 12, 12)), ("crate", "large", (1024, 16, 24)),
    # the official code's model/vit.py (the paper's baselines), as in timm and DeiT
    ("vit", "tiny", (192, 3, 12)), ("vit", "small", (384, 6, 12)),
    ("vit", "base", (768, 12, 12)), ("vit", "large", (1024, 16, 24)),
    # UCSC-VLAA/CRATE-alpha models/crate.py decode_variant (Ti, S, B, L)
    ("crate_alpha", "tiny", (192, 3, 12)), ("crate_alpha", "small", (576, 12, 12)),
    ("crate_alpha", "base", (768, 12, 12)), ("crate_alpha", "large", (1024, 16, 24)),
    # RobinWu218/ToST tost_vision/tost.py tost_cab_{tiny_12, small_12, medium_24, large_24}
    ("tost", "tiny", (192, 4, 12)), ("tost", "small", (384, 8, 12)),
    ("tost", "medium", (512, 8, 24)), ("tost", "large", (768, 16, 24)),
])
def test_official_sizes(family, size, dims):
    with torch.device("meta"):
        m = create_model(f"{family}_{size}_patch16")
    assert (m.config.dim, m.config.num_heads, m.config.depth) == dims
    assert m.blocks[0].attn.head_dim == dims[0] // dims[1]
    if family == "vit":
        assert m.blocks[0].mlp.fc1.out_features == 4 * dims[0]


def test_every_family_uses_its_own_size_table():
    assert SIZES["vit"] is VIT_SIZES and VIT_SIZES["small"] != CRATE_SIZES["small"]
    assert SIZES["crate_alpha"] is CRATE_ALPHA_SIZES and SIZES["tost"] is TOST_SIZES
    assert all(SIZES[f] is CRATE_SIZES for f in FAMILIES if f not in ("vit", "crate_alpha", "tost"))
    for table in (VIT_SIZES, CRATE_ALPHA_SIZES, TOST_SIZES):  # the book's CPU size is the same for all
        assert table["nano"] == CRATE_SIZES["nano"]
    for family in FAMILIES:
        for size, dims in SIZES[family].items():
            c = model_config(f"{family}_{size}_patch8")
            assert {k: getattr(c, k) for k in dims} == dims


@pytest.mark.parametrize("size,patch", [("tiny", 16), ("tiny", 8), ("small", 8), ("small", 16), ("base", 8),
                                        ("base", 16), ("large", 16), ("large", 8)])
def test_vit_is_timms_vit_of_the_same_name(size, patch):
    """cratelib's vit_<size>_patch<P> has timm's vit_<size>_patch<P>_224 shape and parameter count."""
    timm_name = f"vit_{size}_patch{patch}_224"
    extra = {}
    if timm_name not in timm.list_models():  # timm registers no tiny/8 or large/8: change the patch only
        timm_name, extra = f"vit_{size}_patch16_224", {"patch_size": patch}
    with torch.device("meta"):
        ours = create_model(f"vit_{size}_patch{patch}", num_classes=1000)
        theirs = timm.create_model(timm_name, num_classes=1000, **extra)
    assert theirs.patch_embed.proj.kernel_size == (patch, patch)
    assert (ours.config.dim, ours.config.num_heads, ours.config.depth) == (
        theirs.embed_dim, theirs.blocks[0].attn.num_heads, len(theirs.blocks))
    assert ours.blocks[0].mlp.fc1.out_features == theirs.blocks[0].mlp.fc1.out_features
    assert (ours.blocks[0].attn.qkv.bias is None) == (theirs.blocks[0].attn.qkv.bias is None)
    assert ours.pos_embed.shape == theirs.pos_embed.shape
    # same count: timm's Conv2d patch projection holds as many weights as cratelib's Linear
    assert ours.num_params() == sum(p.numel() for p in theirs.parameters())


def test_closed_form_count_equals_the_built_model_for_every_registered_name():
    names = [n for n in list_models() if not n.startswith(f"{MAE_FAMILY}_")]  # the classifiers (MAE: test_crate_mae)
    extra = sum(len(p) for p in EXTRA_PATCHES.values())
    assert len(names) == len(FAMILIES) * 5 * 2 + extra and len(list_models()) == (len(FAMILIES) + 1) * 5 * 2 + extra
    variants = [dict(num_classes=0), dict(num_classes=21843, img_size=480), dict(head_dim=40),
                dict(qkv_bias=False, mlp_ratio=3.0, in_chans=1, patch_norm=True, img_size=96),
                dict(proj_bias=False, odl_ratio=2, qkv_bias=True)]
    cases = [(name, {}) for name in names] + [(f"{f}_nano_patch8", v) for f in FAMILIES for v in variants]
    for name, overrides in cases:
        with torch.device("meta"):
            model = create_model(name, **overrides)
        config = model_config(name, **overrides)
        assert config == model.config
        for include_head in (True, False):
            assert config.num_params(include_head) == model.num_params(include_head), (name, overrides)


def test_parameter_counts_match_official_crate():
    # the white-box paper (2306.01129, Table 1) lists CRATE-T/S/B/L at 6.09M/13.12M/22.80M/77.64M
    # on ImageNet-1k at patch 16; the same code must give the same counts.
    from cratelib.info import count_params

    for size, millions in [("tiny", 6.09), ("small", 13.12), ("base", 22.80), ("large", 77.64)]:
        assert round(count_params(f"crate_{size}_patch16") / 1e6, 2) == millions


@pytest.mark.parametrize("name", [f"{f}_{s}" for f in FAMILIES for s in ("nano_patch8", "tiny_patch16")])
def test_forward_backward_every_family(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_ablation_blocks():
    kinds = {}
    for family in FAMILIES:
        m = create_model(f"{family}_nano_patch8", **SMALL)
        b = m.blocks[0]
        kinds[family] = (type(b.attn).__name__, type(b.mlp).__name__, getattr(b.mlp, "nonnegative", None))
    assert kinds == {
        "crate": ("MSSA", "ISTA", True),
        "vit": ("MHSA", "MLP", None),
        "crate_mlp": ("MSSA", "MLP", None),
        "crate_mhsa": ("MHSA", "ISTA", True),
        "crate_sth": ("MSSA", "ISTA", False),
        "crate_alpha": ("MSSA", "ODL", None),
        "tost": ("TSSA", "ISTA", True),
    }


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="crate_tiny_patch16") as err:
        create_model("crate_tiny_patch32")
    assert "unknown model 'crate_tiny_patch32'" in str(err.value)


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match="embed_dim"):
        create_model("crate_nano_patch8", embed_dim=3)


def test_import_cratelib_registers_with_timm_when_timm_is_imported():
    """`import cratelib` leaves timm (and torchvision) unimported; importing timm later registers."""
    code = ("import sys, cratelib\n"
            "assert 'timm' not in sys.modules and 'torchvision' not in sys.modules, 'imported too early'\n"
            "import timm\n"
            "m = timm.create_model('crate_mhsa_nano_patch8', img_size=32, num_classes=3, depth=1)\n"
            "assert isinstance(m, cratelib.CRATE) and m.config.attn == 'mhsa'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_timm_create_model_knows_the_names():
    m = timm.create_model("crate_mhsa_nano_patch8", pretrained=False, **SMALL)
    assert isinstance(m, cratelib.CRATE) and m.config.attn == "mhsa"
    with pytest.raises(ValueError, match="load_official_checkpoint"):
        timm.create_model("crate_nano_patch8", pretrained=True)


def test_any_image_and_patch_size_and_classes():
    m = create_model("crate_tiny_patch16", img_size=48, patch_size=12, num_classes=3, depth=1)
    assert m(torch.randn(1, 3, 48, 48)).shape == (1, 3)
    assert m(torch.randn(1, 3, 96, 60)).shape == (1, 3)  # non-square, interpolated positions


def test_positions_are_interpolated_not_truncated():
    pos = torch.randn(1, 1 + 16, 5)
    same = resample_pos_embed(pos, (4, 4))
    assert same is pos
    big = resample_pos_embed(pos, (8, 8))
    assert big.shape == (1, 65, 5)
    torch.testing.assert_close(big[:, :1], pos[:, :1])  # CLS position unchanged
    # a constant field stays constant under bicubic interpolation
    const = torch.ones(1, 17, 5)
    torch.testing.assert_close(resample_pos_embed(const, (6, 6)), torch.ones(1, 37, 5))
    # upsampling and downsampling back recovers a smooth field closely
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 4), torch.linspace(0, 1, 4), indexing="ij")
    smooth = torch.cat([torch.zeros(1, 1, 1), (yy + xx).reshape(1, 16, 1)], dim=1)
    back = resample_pos_embed(resample_pos_embed(smooth, (8, 8)), (4, 4))
    assert (back - smooth).abs().max() < 0.1 and not math.isclose((back - smooth).abs().max().item(), 0)


@pytest.mark.parametrize("images,error,match", [
    (torch.randn(1, 3, 30, 32), ValueError, "not a multiple of the patch size 8"),
    (torch.randn(1, 1, 32, 32), ValueError, "expected 3 channels"),
    (torch.randn(3, 32, 32), ValueError, r"expected images of shape \(B, 3, H, W\)"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, "floating-point"),
    (torch.full((1, 3, 32, 32), float("nan")), ValueError, "NaN"),
])
def test_bad_inputs_get_clear_errors(images, error, match):
    m = create_model("crate_nano_patch8", **SMALL)
    with pytest.raises(error, match=match):
        m(images)


def test_bad_configs_get_clear_errors():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        create_model("crate_nano_patch8", img_size=30)
    with pytest.raises(ValueError, match="attn must be one of"):
        create_model("crate_nano_patch8", attn="linear")
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        create_model("crate_nano_patch8", dim=100, num_heads=6)


def test_residual_variant_changes_the_function():
    torch.manual_seed(0)
    a = create_model("crate_nano_patch8", **SMALL).eval()
    b = create_model("crate_nano_patch8", residual_from_norm=True, **SMALL).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(a(x), b(x))


def test_reset_classifier():
    m = create_model("crate_nano_patch8", **SMALL)
    m.reset_classifier(11)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 11) and m.config.num_classes == 11
