"""Model registry: ``create_model(name, **overrides)``, ``list_models()``, and timm registration.

Names follow timm: ``<family>_<size>_patch<P>``.

=========== ============================================ ==========================
family      blocks                                       paper
=========== ============================================ ==========================
crate       MSSA + ISTA                                  Sec. 2, eq. (8)
vit         MHSA + MLP (supervised ViT baseline)         Table 1, 2
crate_mlp   MSSA + MLP (ISTA replaced by an MLP)         Table 2 "CRATE-MLP"
crate_mhsa  MHSA + ISTA (MSSA replaced by MHSA)          Table 2 "CRATE-MHSA"
crate_sth   MSSA + soft-threshold ISTA (no ReLU)         Fig. 13 "CRATE-sth"
crate_alpha MSSA + ODL (overcomplete, 2 steps, residual) arXiv 2405.20299 "CRATE-α"
tost        TSSA + ISTA (ToST's attention, CRATE body)   arXiv 2412.17810 "ToST"
=========== ============================================ ==========================

and one masked autoencoder, :class:`~cratelib.models.crate_mae.CRATEMAE` (``crate_mae_<size>_patch<P>``:
a CRATE encoder and a decoder of inverse layers, same width, heads and depth; Pai et al., ICLR
2024), with the CRATE size table; the released weights are ``crate_mae_base_patch16``.

Each family has its size table (d / K heads / L layers; the MLP of a ViT is 4d wide):

=========== ============= ============= ============= ============== ===============
table       nano          tiny          small         base           large
=========== ============= ============= ============= ============== ===============
CRATE       192 / 6 / 6   384 / 6 / 12  576 / 12 / 12 768 / 12 / 12  1024 / 16 / 24
ViT         192 / 6 / 6   192 / 3 / 12  384 / 6 / 12  768 / 12 / 12  1024 / 16 / 24
CRATE-α     192 / 6 / 6   192 / 3 / 12  576 / 12 / 12 768 / 12 / 12  1024 / 16 / 24
ToST        192 / 6 / 6   192 / 4 / 12  384 / 8 / 12  (medium)       768 / 16 / 24
=========== ============= ============= ============= ============== ===============

ToST has a ``medium`` size, 512 / 8 / 24, and no ``base``. Every family has patch sizes 8 and 16;
``crate_alpha_large_patch14`` is also registered, the released CRATE-α-L/14.

The CRATE sizes are the official CRATE ones (``Ma-Lab-Berkeley/CRATE``, ``model/crate.py``) and
hold for the three ablations too; the CRATE-α sizes are the official ``decode_variant`` table
(``UCSC-VLAA/CRATE-alpha``, ``models/crate.py``; B/16 and L/14 are the released PyTorch weights,
``torch_inference/model/crate_alpha.py``), and the family copies that code's details: a linear
patch projection without LayerNorms (its ``Conv2d`` with stride P is the same map), no bias on
the attention's output projection, LayerNorm eps 1e-6 in the blocks. The ToST sizes are the
official ``tost_cab_*`` models (``RobinWu218/ToST``, ``tost_vision/tost.py``: tiny_12, small_12,
medium_24, large_24). The ``tost`` family puts TSSA in place of MSSA in the CRATE body (patch
embedding, CLS token, ISTA, classifier), so that it differs from ``crate`` in the attention alone.
It leaves out the official vision model's convolutional stem, Fourier positions, layer scale, MLP
and two class-attention layers (the CLS token joins only there, after the TSSA layers): they
matter for matching ToST's ImageNet accuracies, which the book does not train for, and not for
what it studies, the operator, its cost and its memberships Pi. In the ``tost`` family the CLS
token is one more token in every layer's statistics. The ViT sizes are the official code's ViT baselines
(``model/vit.py``), which are timm's and DeiT's, so ``vit_small_patch8`` is the same
architecture as timm's ``vit_small_patch8_224``, with the same parameter count (two details do
not change the count: PyTorch's LayerNorm eps 1e-5 where timm uses 1e-6, and a linear patch
projection over ``(p1 p2 c)``-ordered pixels where timm convolves). ``nano`` is no paper size: it
is the book's CPU-scale model, the same in every table. After ``import cratelib`` every name also works in
``timm.create_model``.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Callable

from torch import nn

from cratelib.models.crate import CRATE, CRATEConfig
from cratelib.models.crate_mae import CRATEMAE, CRATEMAEConfig

__all__ = ["create_model", "model_config", "list_models", "register_model", "CRATE_SIZES", "VIT_SIZES",
           "CRATE_ALPHA_SIZES", "TOST_SIZES", "SIZES", "FAMILIES", "EXTRA_PATCHES", "MAE_FAMILY"]

_NANO = dict(dim=192, num_heads=6, depth=6)  # the book's CPU size, not a paper size
CRATE_SIZES: dict[str, dict] = {
    "nano": _NANO,
    "tiny": dict(dim=384, num_heads=6, depth=12),
    "small": dict(dim=576, num_heads=12, depth=12),
    "base": dict(dim=768, num_heads=12, depth=12),
    "large": dict(dim=1024, num_heads=16, depth=24),
}
VIT_SIZES: dict[str, dict] = {
    "nano": _NANO,
    "tiny": dict(dim=192, num_heads=3, depth=12),
    "small": dict(dim=384, num_heads=6, depth=12),
    "base": dict(dim=768, num_heads=12, depth=12),
    "large": dict(dim=1024, num_heads=16, depth=24),
}
CRATE_ALPHA_SIZES: dict[str, dict] = {  # UCSC-VLAA/CRATE-alpha, models/crate.py, decode_variant
    "nano": _NANO,
    "tiny": dict(dim=192, num_heads=3, depth=12),
    "small": dict(dim=576, num_heads=12, depth=12),
    "base": dict(dim=768, num_heads=12, depth=12),
    "large": dict(dim=1024, num_heads=16, depth=24),
}
TOST_SIZES: dict[str, dict] = {  # RobinWu218/ToST, tost_vision/tost.py, tost_cab_*
    "nano": _NANO,
    "tiny": dict(dim=192, num_heads=4, depth=12),
    "small": dict(dim=384, num_heads=8, depth=12),
    "medium": dict(dim=512, num_heads=8, depth=24),
    "large": dict(dim=768, num_heads=16, depth=24),
}
FAMILIES: dict[str, dict] = {
    "crate": dict(attn="mssa", mlp="ista"),
    "vit": dict(attn="mhsa", mlp="mlp", patch_norm=False),
    "crate_mlp": dict(attn="mssa", mlp="mlp"),
    "crate_mhsa": dict(attn="mhsa", mlp="ista"),
    "crate_sth": dict(attn="mssa", mlp="ista_sth"),
    "crate_alpha": dict(attn="mssa", mlp="odl", patch_norm=False, proj_bias=False, norm_eps=1e-6),
    "tost": dict(attn="tssa", mlp="ista"),
}
SIZES: dict[str, dict[str, dict]] = {
    family: {"vit": VIT_SIZES, "crate_alpha": CRATE_ALPHA_SIZES, "tost": TOST_SIZES}.get(family, CRATE_SIZES)
    for family in FAMILIES
}
PATCH_SIZES = (8, 16)
# (family, size) -> further patch sizes of released models: CRATE-alpha-L/14
EXTRA_PATCHES: dict[tuple[str, str], tuple[int, ...]] = {("crate_alpha", "large"): (14,)}
MAE_FAMILY = "crate_mae"  # masked autoencoders (CRATEMAE), not classifiers; the CRATE size table

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_CONFIGS: dict[str, tuple[type, dict]] = {}  # name -> (model class, config fields)
_CONFIG_CLASS = {CRATE: CRATEConfig, CRATEMAE: CRATEMAEConfig}
# Arguments timm.create_model passes to every entry point; they carry no architecture.
_TIMM_ARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def register_model(name: str, config: dict, cls: type = CRATE) -> Callable[..., nn.Module]:
    """Register an entry point ``name(pretrained=False, **overrides) -> cls`` built from ``config``
    (``cls``: :class:`CRATE` or :class:`CRATEMAE`)."""

    def entry(pretrained: bool = False, **overrides) -> nn.Module:
        if pretrained:
            raise ValueError(
                f"{name}: no weights can be downloaded by name; load released CRATE weights with "
                "cratelib.load_official_checkpoint(path), released CRATE-alpha weights with "
                "cratelib.load_crate_alpha_checkpoint(path), CRATE-MAE with cratelib.load_official_mae_checkpoint(path), "
                "or a cratelib checkpoint with cratelib.load_checkpoint(path)"
            )
        for key in _TIMM_ARGS:
            overrides.pop(key, None)
        return cls(model_config(name, **overrides))

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    entry.__doc__ = f"{name}: {config}"
    _REGISTRY[name], _CONFIGS[name] = entry, (cls, dict(config))
    return entry


for _family, _blocks in FAMILIES.items():
    for _size, _dims in SIZES[_family].items():
        for _patch in PATCH_SIZES + EXTRA_PATCHES.get((_family, _size), ()):
            register_model(f"{_family}_{_size}_patch{_patch}", {**_blocks, **_dims, "patch_size": _patch})
for _size, _dims in CRATE_SIZES.items():
    for _patch in PATCH_SIZES:
        register_model(f"{MAE_FAMILY}_{_size}_patch{_patch}", {**_dims, "patch_size": _patch}, CRATEMAE)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern`` (e.g. ``"crate_*_patch8"``)."""
    from fnmatch import fnmatch

    return sorted(n for n in _REGISTRY if fnmatch(n, pattern))


def model_config(name: str, **overrides) -> CRATEConfig | CRATEMAEConfig:
    """The config of a registered model (:class:`CRATEConfig`, or :class:`CRATEMAEConfig` for
    ``crate_mae_*``), with ``overrides``; builds nothing."""
    if name not in _CONFIGS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    cls, config = _CONFIGS[name]
    return _CONFIG_CLASS[cls].from_dict({**config, **overrides})


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; ``overrides`` replace any :class:`CRATEConfig` field.

    Example: ``create_model("crate_small_patch8", img_size=480, num_classes=21843)``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name](**overrides)


def _register_with_timm() -> None:
    """Make every name available to ``timm.create_model``."""
    from timm.models import is_model
    from timm.models import register_model as timm_register

    public = list(__all__)
    for name, fn in _REGISTRY.items():
        if not is_model(name):
            timm_register(fn)
    __all__[:] = public  # timm appends every registered name to this module's __all__


class _RegisterAfterTimmImport(importlib.abc.MetaPathFinder):
    """Import hook: lets timm's first import run, then registers every name with it.

    Importing timm takes seconds (it imports torchvision and ``torch._dynamo``), twice as long as
    torch; this keeps ``import cratelib`` (and ``python -m cratelib info``) free of it, while
    ``import cratelib; import timm; timm.create_model("crate_tiny_patch8")`` still works.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)  # one use; also keeps find_spec below from finding this hook
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:  # timm not installed: the usual ImportError
            return spec
        exec_timm = spec.loader.exec_module

        def exec_then_register(module) -> None:
            exec_timm(module)
            _register_with_timm()

        spec.loader.exec_module = exec_then_register
        return spec


if "timm" in sys.modules:
    _register_with_timm()
else:
    sys.meta_path.insert(0, _RegisterAfterTimmImport())
