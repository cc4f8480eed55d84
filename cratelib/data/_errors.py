"""Data set errors that say what was expected where and how to obtain it, and the lookups that raise them."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DatasetNotFoundError", "DatasetFormatError", "require", "find_root"]


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
