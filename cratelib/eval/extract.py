"""From a model and images to the per-layer tensors the evaluations use.

One forward pass per batch through :func:`cratelib.trace.trace` gives, for
each requested layer ``l``:

* ``attention[l]``: ``(J, H, h, w)`` CLS attention maps of eqs. 10-11
  (:func:`cratelib.eval.attention.cls_attention`);
* ``features[l]``: ``(J, N, H p)`` patch features, the heads' projections
  concatenated (CRATE: ``U_k^T z``; ViT: keys), for PCA and MaskCut.

Images are resized to a square ``img_size`` (Lanczos, as MaskCut's 480 px
"fixed size") and normalised with the ImageNet statistics of the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cratelib import create_model, list_models, load_checkpoint
from cratelib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cratelib.eval.attention import cls_attention
from cratelib.eval.cache import file_sha256, state_dict_sha256
from cratelib.eval.pca import concat_heads
from cratelib.trace import trace


@dataclass
class Extracted:
    """Per-layer outputs for J images (CPU tensors, float32).

    Attributes:
        grid: patch grid ``(h, w)``.
        attention: ``l -> (J, H, h, w)`` eq. 10/11 maps.
        features: ``l -> (J, N, H p)`` concatenated head features.
    """

    grid: tuple[int, int]
    attention: dict[int, torch.Tensor] = field(default_factory=dict)
    features: dict[int, torch.Tensor] = field(default_factory=dict)


def to_model_input(images: list[np.ndarray], img_size: int) -> torch.Tensor:
    """``J`` uint8 ``(H, W, 3)`` images -> ``(J, 3, img_size, img_size)`` normalised float32."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = []
    for img in images:
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 images, got {img.dtype} {img.shape}")
        pil = Image.fromarray(img).resize((img_size, img_size), Image.LANCZOS)
        x = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float() / 255
        out.append((x - mean) / std)
    return torch.stack(out)


def load_model(spec: str, img_size: int, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """A model from a checkpoint path or a registered name, and an identity for caches.

    Args:
        spec: path to a cratelib checkpoint (e.g. the shipped
            ``data/checkpoints/crate.pt``), a cratelib model name (random
            weights from ``seed``), a timm
            model name (random weights; no download), or ``timm:<name>`` for
            timm's pretrained weights (downloaded by timm, e.g.
            ``timm:vit_small_patch8_224.dino``).
        img_size: input resolution; positions are interpolated as needed.
        seed: seed of the random initialisation.

    Returns:
        ``(model in eval mode, id)``: ``id`` is the checkpoint's SHA-256 or a
        hash of the initialised weights.
    """
    path = Path(spec)
    if spec.startswith("timm:"):
        import timm

        name = spec.removeprefix("timm:")
        model = timm.create_model(name, pretrained=True, img_size=img_size)
        return model.eval(), f"timm-{name}-{img_size}"
    if path.is_file():
        return load_checkpoint(path, img_size=img_size).float().eval(), f"ckpt-{file_sha256(path)[:16]}"
    torch.manual_seed(seed)
    if spec in list_models():
        model = create_model(spec, img_size=img_size)
    else:
        import timm

        if not timm.is_model(spec):
            raise ValueError(
                f"--model {spec!r} is neither a checkpoint file, a cratelib model "
                f"({', '.join(list_models('*_patch8'))}, ...) nor a timm model name"
            )
        model = timm.create_model(spec, pretrained=False, img_size=img_size)
    return model.eval(), f"{spec}-init{seed}-{state_dict_sha256(model)[:16]}"


@torch.no_grad()
def extract(
    model: torch.nn.Module,
    images: list[np.ndarray],
    layers: list[int],
    img_size: int,
    what: tuple[str, ...] = ("attention", "features"),
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    scale: float | None = None,
    progress: bool = False,
) -> Extracted:
    """Run ``model`` over ``images`` and keep ``what`` for each of ``layers``.

    Args:
        model: cratelib model or timm ViT.
        images: ``J`` uint8 ``(H, W, 3)`` arrays (any sizes).
        layers: block indices (negatives allowed; stored under the given index).
        img_size: square input size (multiple of the patch size).
        what: any of ``"attention"``, ``"features"``.
        batch_size, device: forward-pass batching and device.
        scale: softmax scale of the maps (``None`` = the model's, see
            :mod:`cratelib.eval.attention`).
        progress: show a tqdm bar.
    """
    unknown = set(what) - {"attention", "features"}
    if unknown:
        raise ValueError(f"what may contain 'attention' and 'features', got {sorted(unknown)}")
    model = model.to(device)
    depth = len(model.blocks)
    out: Extracted | None = None
    parts: dict[str, dict[int, list[torch.Tensor]]] = {w: {l: [] for l in layers} for w in what}
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="forward", disable=not progress):
        x = to_model_input(images[start : start + batch_size], img_size).to(device)
        tr = trace(model, x, layers=[l % depth for l in layers])
        for l in layers:
            if "attention" in parts:
                parts["attention"][l].append(cls_attention(tr, l % depth, scale).float().cpu())
            if "features" in parts:
                parts["features"][l].append(concat_heads(tr.patch_features(l % depth)).float().cpu())
        out = out or Extracted(grid=tr.grid)
    if out is None:
        raise ValueError("no images to extract from")
    for name, per_layer in parts.items():
        setattr(out, name, {l: torch.cat(chunks) for l, chunks in per_layer.items()})
    return out
