"""cratelib: white-box transformers (CRATE) - coding-rate math, models, training and evaluations.

Companion library of the book reproducing "Emergence of Segmentation with Minimalistic White-Box
Transformers" (Yu et al., arXiv 2308.16271), with the white-box masked autoencoder CRATE-MAE
(Pai et al., arXiv 2404.02446). Importing it registers every model name with timm.
"""
from cratelib.checkpoint import load_checkpoint, load_official_checkpoint, save_checkpoint
from cratelib.checkpoint_alpha import load_crate_alpha_checkpoint
from cratelib.checkpoint_mae import load_official_mae_checkpoint
from cratelib.coding_rate import (
    coding_rate,
    compression_gradient,
    compression_rate,
    l0_norm,
    l1_norm,
    rate_reduction,
    sparse_rate_reduction,
    sparsity_ratio,
)
from cratelib.models import CRATE, CRATEMAE, CRATEConfig, CRATEMAEConfig, create_model, list_models
from cratelib.trace import Trace, trace

__version__ = "0.1.0"
__all__ = [
    "CRATE",
    "CRATEConfig",
    "CRATEMAE",
    "CRATEMAEConfig",
    "create_model",
    "list_models",
    "trace",
    "Trace",
    "save_checkpoint",
    "load_checkpoint",
    "load_official_checkpoint",
    "load_crate_alpha_checkpoint",
    "load_official_mae_checkpoint",
    "coding_rate",
    "compression_rate",
    "compression_gradient",
    "rate_reduction",
    "sparse_rate_reduction",
    "l0_norm",
    "l1_norm",
    "sparsity_ratio",
]
