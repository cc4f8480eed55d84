"""A content-keyed cache for extracted features.

Cache entries are keyed by a hash of everything that determines them (model
weights, data, settings) and written atomically (:mod:`cratelib.io`), so a
crashed or concurrent run never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

from cratelib.io import atomic_torch_save


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (a checkpoint's identity)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(module: torch.nn.Module) -> str:
    """Hex SHA-256 of a module's parameters and buffers (names, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def cache_key(**parts: Any) -> str:
    """A short stable key from JSON-serialisable ``parts`` (order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def cached(path: Path, compute: Callable[[], Any], weights_only: bool = False) -> tuple[Any, bool]:
    """Load ``path`` (``torch.load``) if it exists, else ``compute()`` and save it atomically.
    ``weights_only`` loads with torch's safe unpickler (tensors and plain containers only): for
    entries shipped in the repository rather than written on this machine.

    Returns:
        ``(value, hit)`` where ``hit`` says whether the cache was used.
    """
    path = Path(path)
    if path.exists():
        return torch.load(path, weights_only=weights_only), True
    value = compute()
    atomic_torch_save(path, value)
    return value, False
