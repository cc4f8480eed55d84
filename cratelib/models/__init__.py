"""CRATE, its ablations, the ViT baseline and CRATE-MAE, with a timm-style registry."""
from cratelib.models.crate import CRATE, CRATEConfig, resample_pos_embed
from cratelib.models.crate_mae import CRATEMAE, CRATEMAEConfig
from cratelib.models.registry import FAMILIES, SIZES, create_model, list_models

__all__ = ["CRATE", "CRATEConfig", "CRATEMAE", "CRATEMAEConfig", "resample_pos_embed", "create_model", "list_models",
           "SIZES", "FAMILIES"]
