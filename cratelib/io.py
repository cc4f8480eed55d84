"""Files cratelib writes: atomic writes and the cache folder.

Every file cratelib writes (checkpoints, records, caches, exported data sets, figures) goes
through :func:`atomic_write`: the bytes are written to a temporary file in the target folder,
flushed to disk, given the mode :data:`FILE_MODE` and renamed over the target with
:func:`os.replace`. A reader therefore sees the old file or the complete new one, never half a
file, and a write that fails leaves nothing behind. A writer killed outright (SIGKILL, out of
memory) cannot clean up: its temporary file ``.<name>.<host>.<pid>.<random>.tmp`` is removed by
the next write of the same file once that process is gone.

Everything that can be recomputed (generated data, exported data sets, extracted features) lives
below one folder, :func:`cache_home`: ``$CRATELIB_CACHE`` if set, else ``~/.cache/cratelib``.
"""
from __future__ import annotations

import glob
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = ["FILE_MODE", "CACHE_VARIABLE", "atomic_write", "atomic_write_text", "atomic_write_json", "atomic_torch_save",
           "cache_home"]

FILE_MODE = 0o644  # rw-r--r--: the mode of every file cratelib writes (mkstemp alone gives 0o600)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file so that readers see either the old file or the complete new one.

    ``write`` receives a binary file object of a temporary file in ``path``'s folder (created if
    missing); the file is then flushed to disk (``fsync``), given the mode :data:`FILE_MODE` and
    renamed over ``path`` with :func:`os.replace`. On any error, including one raised by ``write``,
    the temporary file is removed and the error propagates; ``path`` is left as it was. Temporary
    files of ``path`` left by killed writers on this host are removed first.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _remove_orphans(path: Path) -> None:
    """Delete the temporary files of ``path`` left by writers on this host that no longer run."""
    prefix = f".{path.name}.{_HOST}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix):].split(".")[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2, sort_keys: bool = True) -> Path:
    """Write ``obj`` as JSON atomically (serialised before the file is opened, so an object that
    JSON cannot hold raises ``TypeError`` and leaves no file)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys))


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


CACHE_VARIABLE = "CRATELIB_CACHE"  # the environment variable that moves the cache folder


def cache_home(*parts: str) -> Path:
    """The cache folder ``$CRATELIB_CACHE`` (``~/.cache/cratelib`` if unset or empty), joined with
    ``parts``: ``cache_home("eval", "data")`` is ``~/.cache/cratelib/eval/data``. Not created."""
    return Path(os.environ.get(CACHE_VARIABLE) or "~/.cache/cratelib").expanduser().joinpath(*parts)
