"""From a model and images to the per-layer tensors every evaluation uses.

One forward pass per batch through :func:`cratelib.trace.trace` gives, for
each requested layer ``l``:

* ``attention[l]``: ``(J, H, h, w)`` CLS attention maps of eqs. 10-11 (for a ToST layer, the
  membership Pi of the patches: :func:`cratelib.eval.attention.layer_map`);
* ``features[l]``: ``(J, N, H p)`` patch features, the heads' projections
  concatenated (CRATE: ``U_k^T z``; ViT: keys), for PCA and MaskCut.

Images are resized to a square input (Lanczos, as MaskCut's 480 px "fixed
size") and normalised with the ImageNet statistics of the paper. The input
size defaults to the model's own training resolution (:func:`model_img_size`,
for cratelib models and timm ViTs alike), so a 64 px model is evaluated on the
8x8 grid it was trained on unless another size is asked for.

:func:`layer_maps` and :func:`layer_features` are the drivers the chapters,
the command line and the tests call; :func:`extract` is the step under them
(with an optional on-disk cache, :mod:`cratelib.eval.cache`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cratelib import create_model, list_models, load_checkpoint
from cratelib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from cratelib.eval.attention import layer_map
from cratelib.eval.cache import cache_key, cached, file_sha256, state_dict_sha256
from cratelib.trace import num_layers, trace

CACHE_VERSION = 1  # bump when extraction changes, so that old cache entries are not reused


@dataclass
class Extracted:
    """Per-layer outputs for J images (CPU tensors, float32).

    Attributes:
        grid: patch grid ``(h, w)``.
        attention: ``l -> (J, H, h, w)`` eq. 10/11 maps.
        features: ``l -> (J, N, H p)`` concatenated head features.
        cache_hit: whether the tensors were read from the cache instead of computed.
    """

    grid: tuple[int, int]
    attention: dict[int, torch.Tensor] = field(default_factory=dict)
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    cache_hit: bool = False


@dataclass
class FeatureCache:
    """Where :func:`extract` keeps its results, and the identity of the model they belong to.

    Attributes:
        folder: the cache folder (entries are ``<folder>/features/<key>.pt``).
        model_id: the model's identity (:func:`load_model` returns one); ``None``: a hash of
            the model's weights, computed when needed.
        hits: one entry per lookup, ``True`` where the result came from the cache.
    """

    folder: Path
    model_id: str | None = None
    hits: list[bool] = field(default_factory=list)


def model_img_size(model: torch.nn.Module) -> int:
    """The square input size a model was built for: ``model.config.img_size`` (cratelib) or
    ``model.patch_embed.img_size`` (timm ViTs). Every evaluation defaults to it."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "img_size"):
        return int(config.img_size)
    size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if size is None:
        raise TypeError(f"cannot tell the input size of a {type(model).__name__}: expected a cratelib model "
                        "(config.img_size) or a timm ViT (patch_embed.img_size); pass img_size")
    if isinstance(size, (tuple, list)):
        if size[0] != size[1]:
            raise ValueError(f"the evaluations use square inputs; this model is built for {tuple(size)}")
        size = size[0]
    return int(size)


def to_model_input(images: Sequence[np.ndarray], img_size: int) -> torch.Tensor:
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


def load_model(spec: str, img_size: int | None = None, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """A model from a checkpoint path or a registered name, and an identity for caches.

    Args:
        spec: path to a cratelib checkpoint (e.g. the shipped
            ``data/checkpoints/crate.pt``), a cratelib model name (random
            weights from ``seed``), a timm model name (random weights; no
            download), or ``timm:<name>`` for timm's pretrained weights
            (downloaded by timm, e.g. ``timm:vit_small_patch8_224.dino``).
        img_size: input resolution; positions are interpolated as needed.
            ``None``: the model's own (a checkpoint's training size, a name's
            default).
        seed: seed of the random initialisation.

    Returns:
        ``(model in eval mode, id)``: ``id`` is the checkpoint's SHA-256 or a
        hash of the initialised weights.
    """
    sized = {} if img_size is None else {"img_size": img_size}
    path = Path(spec)
    if spec.startswith("timm:"):
        import timm

        name = spec.removeprefix("timm:")
        model = timm.create_model(name, pretrained=True, **sized)
        return model.eval(), f"timm-{name}-{model_img_size(model)}"
    if path.is_file():
        return load_checkpoint(path, **sized).float().eval(), f"ckpt-{file_sha256(path)[:16]}"
    torch.manual_seed(seed)
    if spec in list_models():
        model = create_model(spec, **sized)
    else:
        import timm

        if not timm.is_model(spec):
            raise ValueError(
                f"--model {spec!r} is neither a checkpoint file, a cratelib model "
                f"({', '.join(list_models('*_patch8'))}, ...) nor a timm model name"
            )
        model = timm.create_model(spec, pretrained=False, **sized)
    return model.eval(), f"{spec}-init{seed}-{state_dict_sha256(model)[:16]}"


def concat_heads(patch_features: torch.Tensor) -> torch.Tensor:
    """``(B, H, N, p) -> (B, N, H * p)``: the heads' projections side by side (the features of
    eq. 12 and of MaskCut)."""
    if patch_features.dim() != 4:
        raise ValueError(
            f"expected per-head features (B, H, N, p), got shape {tuple(patch_features.shape)}"
        )
    return patch_features.permute(0, 2, 1, 3).flatten(2)


def _layers(model: torch.nn.Module, layers: Sequence[int] | None) -> list[int]:
    return list(range(num_layers(model))) if layers is None else list(layers)


def _images_digest(images: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for img in images:
        digest.update(str(img.shape).encode() + np.ascontiguousarray(img).tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def _forward(model, images, layers, img_size, what, batch_size, device, scale, progress) -> Extracted:
    model = model.to(device)
    depth = num_layers(model)
    out: Extracted | None = None
    parts: dict[str, dict[int, list[torch.Tensor]]] = {w: {l: [] for l in layers} for w in what}
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="forward", disable=not progress):
        x = to_model_input(images[start : start + batch_size], img_size).to(device)
        tr = trace(model, x, layers=[l % depth for l in layers])
        for l in layers:
            if "attention" in parts:
                parts["attention"][l].append(layer_map(tr, l % depth, scale).float().cpu())
            if "features" in parts:
                parts["features"][l].append(concat_heads(tr.patch_features(l % depth)).float().cpu())
        out = out or Extracted(grid=tr.grid)
    if out is None:
        raise ValueError("no images to extract from")
    for name, per_layer in parts.items():
        setattr(out, name, {l: torch.cat(chunks) for l, chunks in per_layer.items()})
    return out


def extract(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    layers: Sequence[int] | None = None,
    img_size: int | None = None,
    what: tuple[str, ...] = ("attention", "features"),
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    scale: float | None = None,
    progress: bool = False,
    cache: FeatureCache | None = None,
) -> Extracted:
    """Run ``model`` over ``images`` and keep ``what`` for each of ``layers``.

    Args:
        model: cratelib model or timm ViT.
        images: ``J`` uint8 ``(H, W, 3)`` arrays (any sizes).
        layers: block indices (negatives allowed; stored under the given index);
            ``None``: every layer.
        img_size: square input size (multiple of the patch size); ``None``: the
            model's own (:func:`model_img_size`).
        what: any of ``"attention"``, ``"features"``.
        batch_size, device: forward-pass batching and device.
        scale: softmax scale of the maps (``None`` = the model's, see
            :mod:`cratelib.eval.attention`).
        progress: show a tqdm bar.
        cache: read the result from, or write it to, this cache; the key is the
            model's identity, the images' pixels and every setting above that
            changes the result.
    """
    unknown = set(what) - {"attention", "features"}
    if unknown:
        raise ValueError(f"what may contain 'attention' and 'features', got {sorted(unknown)}")
    images = list(images)
    layers = _layers(model, layers)
    img_size = img_size or model_img_size(model)

    def compute() -> Extracted:
        return _forward(model, images, layers, img_size, what, batch_size, device, scale, progress)

    if cache is None:
        return compute()
    model_id = cache.model_id or f"weights-{state_dict_sha256(model)[:16]}"
    key = cache_key(version=CACHE_VERSION, model=model_id, data=_images_digest(images), layers=layers,
                    img_size=img_size, what=list(what), scale=scale)
    result, hit = cached(Path(cache.folder) / "features" / f"{key}.pt", compute)
    result.cache_hit = hit
    cache.hits.append(hit)
    return result


def layer_maps(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    layers: Sequence[int] | None = None,
    img_size: int | None = None,
    scale: float | None = None,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    progress: bool = False,
    batch_size: int = 8,
) -> torch.Tensor:
    """Eq. 10 (CRATE) / eq. 11 (ViT) maps of ``layers`` (default: all): ``(L, J, K, h, w)``.

    Args:
        model: a cratelib model or a timm ViT.
        images: J uint8 ``(H, W, 3)`` images (resized to ``img_size``, ImageNet-normalised).
        img_size: input size (default: the model's own).
        scale: softmax scale (``None``: the model's ``p ** -0.5``; ``1.0``: the equations as printed).
        device, cache, progress, batch_size: as in :func:`extract`.
    """
    layers = _layers(model, layers)
    ex = extract(model, images, layers, img_size, what=("attention",), batch_size=batch_size, device=device,
                 scale=scale, progress=progress, cache=cache)
    return torch.stack([ex.attention[l] for l in layers])


def layer_features(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    layers: Sequence[int] | None = None,
    img_size: int | None = None,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    progress: bool = False,
    batch_size: int = 8,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Patch features of ``layers`` (default: all): ``((L, J, N, D), grid)``.

    CRATE: the heads' ``U_k^* z`` concatenated (``D = K p``), so that their inner product is
    the paper's ``M_ij = sum_k <U_k^* z_i, U_k^* z_j>`` (eq. 12, App. B.4); ViT: the keys.
    ``device, cache, progress, batch_size`` as in :func:`extract`.
    """
    layers = _layers(model, layers)
    ex = extract(model, images, layers, img_size, what=("features",), batch_size=batch_size, device=device,
                 progress=progress, cache=cache)
    return torch.stack([ex.features[l] for l in layers]), ex.grid
