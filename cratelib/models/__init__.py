"""CRATE, its ablations and the ViT baseline, with a timm-style registry."""
from cratelib.models.crate import CRATE, CRATEConfig, resample_pos_embed
from cratelib.models.registry import FAMILIES, SIZES, create_model, list_models

__all__ = ["CRATE", "CRATEConfig", "resample_pos_embed", "create_model", "list_models", "SIZES", "FAMILIES"]
