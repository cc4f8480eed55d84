"""Small file helpers shared by the data modules: atomic writes and clear data set errors."""

from __future__ import annotations

import glob
import os
import re
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["DatasetNotFoundError", "DatasetFormatError", "atomic_write", "require", "find_root"]


class DatasetNotFoundError(FileNotFoundError):
    """A data set, or one of its files, is missing.

    The message says what was expected where and how to obtain it.
    """


class DatasetFormatError(ValueError):
    """A data set file exists but does not have the expected format.

    The message says what was expected where and how to obtain a good copy.
    """


def require(path: Path, what: str, how: str) -> Path:
    """Return ``path`` if it exists, else raise :class:`DatasetNotFoundError`.

    Args:
        path: the file or directory that must exist.
        what: what the path should hold, e.g. ``"CIFAR-10 batch 'data_batch_1'"``.
        how: how to obtain it (download command, URL, helper function).
    """
    if not path.exists():
        raise DatasetNotFoundError(f"Expected {what} at {path}, but it does not exist. {how}")
    return path


def find_root(root: str | Path, subdirs: tuple[str, ...], marker: str, what: str,
              how: str) -> Path:
    """The directory holding a data set: ``root`` itself or ``root/<subdir>`` for the first
    candidate that contains ``marker``.

    Lets a loader accept both the data set folder and the parent that a downloader writes into
    (e.g. ``root`` or ``root/cifar-10-batches-py``).

    Raises:
        DatasetNotFoundError: no candidate contains ``marker``; the message lists the candidates.
    """
    root = Path(root).expanduser()
    candidates = [root] + [root / s for s in subdirs]
    for c in candidates:
        if (c / marker).exists():
            return c
    tried = ", ".join(str(c / marker) for c in candidates)
    raise DatasetNotFoundError(f"Expected {what}: none of {tried} exists. {how}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file so that readers see either the old file or the complete new one.

    ``write`` receives a binary file object of a temporary file in the same directory; the file is
    then renamed over ``path`` with :func:`os.replace`. On any error the temporary file is removed.
    A writer killed outright (SIGKILL, out of memory) cannot remove it: its temporary file,
    ``.<name>.<host>.<pid>.<random>.tmp``, is removed by the next write of the same file once
    that process is gone, so a crash leaves neither a half-written file nor a lasting temporary one.

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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
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
