"""Atomic writes and a content-keyed cache for extracted features.

Every file is written to a temporary file in the target directory and moved
into place with ``os.replace`` (:func:`cratelib.data._io.atomic_write`), so a
crashed or concurrent run never leaves a half-written file behind.  Cache entries are keyed by a hash of everything
that determines them (model weights, data, settings).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

from cratelib.data._io import atomic_write


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def atomic_torch_save(path: Path, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


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


def cached(path: Path, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """Load ``path`` (``torch.load``) if it exists, else ``compute()`` and save it atomically.

    Returns:
        ``(value, hit)`` where ``hit`` says whether the cache was used.
    """
    path = Path(path)
    if path.exists():
        return torch.load(path, weights_only=False), True
    value = compute()
    atomic_torch_save(path, value)
    return value, False
