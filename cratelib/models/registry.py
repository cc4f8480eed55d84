"""Model registry: ``create_model(name, **overrides)``, ``list_models()``, and timm registration.

Names follow timm: ``<family>_<size>_patch<P>``.

========== ========================================= =====================
family     blocks                                    paper
========== ========================================= =====================
crate      MSSA + ISTA                               Sec. 2, eq. (8)
vit        MHSA + MLP (supervised ViT baseline)      Table 1, 2
crate_mlp  MSSA + MLP (ISTA replaced by an MLP)      Table 2 "CRATE-MLP"
crate_mhsa MHSA + ISTA (MSSA replaced by MHSA)       Table 2 "CRATE-MHSA"
crate_sth  MSSA + soft-threshold ISTA (no ReLU)      Fig. 13 "CRATE-sth"
========== ========================================= =====================

Sizes (d / K heads / L layers) are the official CRATE ones - tiny 384/6/12, small 576/12/12,
base 768/12/12, large 1024/16/24 - plus ``nano`` 192/6/6 for CPU-scale experiments.
After ``import cratelib`` every name also works in ``timm.create_model``.
"""
from __future__ import annotations

from typing import Callable

from cratelib.models.crate import CRATE, CRATEConfig

__all__ = ["create_model", "list_models", "register_model", "SIZES", "FAMILIES"]

SIZES: dict[str, dict] = {
    "nano": dict(dim=192, num_heads=6, depth=6),
    "tiny": dict(dim=384, num_heads=6, depth=12),
    "small": dict(dim=576, num_heads=12, depth=12),
    "base": dict(dim=768, num_heads=12, depth=12),
    "large": dict(dim=1024, num_heads=16, depth=24),
}
FAMILIES: dict[str, dict] = {
    "crate": dict(attn="mssa", mlp="ista"),
    "vit": dict(attn="mhsa", mlp="mlp", patch_norm=False),
    "crate_mlp": dict(attn="mssa", mlp="mlp"),
    "crate_mhsa": dict(attn="mhsa", mlp="ista"),
    "crate_sth": dict(attn="mssa", mlp="ista_sth"),
}
PATCH_SIZES = (8, 16)

_REGISTRY: dict[str, Callable[..., CRATE]] = {}
# Arguments timm.create_model passes to every entry point; they carry no architecture.
_TIMM_ARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def register_model(name: str, config: dict) -> Callable[..., CRATE]:
    """Register an entry point ``name(pretrained=False, **overrides) -> CRATE`` built from ``config``."""

    def entry(pretrained: bool = False, **overrides) -> CRATE:
        if pretrained:
            raise ValueError(
                f"{name}: no weights can be downloaded by name; load released CRATE weights with "
                "cratelib.load_official_checkpoint(path) or a cratelib checkpoint with cratelib.load_checkpoint(path)"
            )
        for key in _TIMM_ARGS:
            overrides.pop(key, None)
        return CRATE(CRATEConfig.from_dict({**config, **overrides}))

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    entry.__doc__ = f"{name}: {config}"
    _REGISTRY[name] = entry
    return entry


for _family, _blocks in FAMILIES.items():
    for _size, _dims in SIZES.items():
        for _patch in PATCH_SIZES:
            register_model(f"{_family}_{_size}_patch{_patch}", {**_blocks, **_dims, "patch_size": _patch})


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern`` (e.g. ``"crate_*_patch8"``)."""
    from fnmatch import fnmatch

    return sorted(n for n in _REGISTRY if fnmatch(n, pattern))


def create_model(name: str, **overrides) -> CRATE:
    """Build a registered model; ``overrides`` replace any :class:`CRATEConfig` field.

    Example: ``create_model("crate_small_patch8", img_size=480, num_classes=21843)``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name](**overrides)


def _register_with_timm() -> None:
    """Make every name available to ``timm.create_model`` (no-op if timm is absent)."""
    try:
        from timm.models import register_model as timm_register
    except ImportError:  # pragma: no cover - timm is a dependency, but the core needs only torch
        return
    from timm.models import is_model

    public = list(__all__)
    for name, fn in _REGISTRY.items():
        if not is_model(name):
            timm_register(fn)
    __all__[:] = public  # timm appends every registered name to this module's __all__


_register_with_timm()
