"""Keep every chapter consistent with ``_config.yml`` and with its paired ``.ipynb``.

The repository URL is set once, in ``_config.yml`` (``repository.url``). Every chapter's first
code cell is the standard set-up cell (:func:`setup_cell_source`), which on Colab clones
that repository (library and shipped data) and installs ``cratelib`` from the clone. This script

1. rewrites the set-up cell of every chapter (``book/*.md`` MyST notebooks) with the URL, and
2. regenerates each chapter's paired ``.ipynb`` from the ``.md`` (no outputs), which is what the
   Colab launch button opens.

Usage (from the repository root)::

    python book/sync_repo_url.py           # fix what is out of date
    python book/sync_repo_url.py --check   # list what is out of date; exit status 1 if anything

``tests/test_book.py`` runs the same checks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

SETUP_CELL = '''\
# Set-up, the same first cell in every chapter. On Colab it fetches the book's repository (the
# library and the checkpoints shipped in data/) and installs the library, keeping Colab's torch;
# then it seeds, picks the device and the CPU or GPU scale.
import sys

if "google.colab" in sys.modules:
    !test -d /content/crate-book || git clone -q --depth 1 {url} /content/crate-book
    %pip install -q -e /content/crate-book
    sys.path.insert(0, "/content/crate-book")
    %cd /content/crate-book/book

import cratelib.notebook

device, scale = cratelib.notebook.setup()'''


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` from ``_config.yml``, without a trailing slash."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def setup_cell_source(url: str) -> str:
    """The exact source of the standard first code cell for repository ``url``."""
    return SETUP_CELL.format(url=url)


def is_notebook(md: Path) -> bool:
    """True for a MyST Markdown notebook (front matter with a kernelspec), False for a page."""
    text = md.read_text()
    if not text.startswith("---"):
        return False
    front = yaml.safe_load(text.split("---", 2)[1]) or {}
    return "kernelspec" in front


def chapters(book: Path = BOOK) -> list[Path]:
    """The MyST notebooks in ``book/`` (sorted)."""
    return sorted(p for p in book.glob("*.md") if is_notebook(p))


def cells_of(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell: what must agree between the two files of a pair."""
    return [(c.cell_type, c.source) for c in nb.cells]


def first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def pair_problems(md: Path) -> list[str]:
    """What is wrong with the pair ``md`` / ``md.with_suffix('.ipynb')`` (empty if nothing)."""
    ipynb = md.with_suffix(".ipynb")
    if not ipynb.exists():
        return [f"{ipynb.relative_to(ROOT)} is missing"]
    problems = []
    text_nb, json_nb = jupytext.read(md), jupytext.read(ipynb)
    if cells_of(text_nb) != cells_of(json_nb):
        problems.append(f"{ipynb.relative_to(ROOT)} differs from {md.relative_to(ROOT)} (cells)")
    for cell in json_nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"{ipynb.relative_to(ROOT)} has outputs; commit it without them")
            break
    return problems


def setup_problems(md: Path, url: str) -> list[str]:
    """Problems with the chapter's first code cell (empty if it is the standard set-up cell)."""
    cell = first_code_cell(jupytext.read(md))
    if cell is None:
        return [f"{md.relative_to(ROOT)} has no code cell"]
    if cell.source != setup_cell_source(url):
        return [f"{md.relative_to(ROOT)}: the first code cell is not the standard set-up cell for {url}"]
    return []


def fix(md: Path, url: str) -> bool:
    """Rewrite the set-up cell (if it differs) and regenerate the .ipynb; True if a file changed."""
    changed = False
    nb = jupytext.read(md)
    cell = first_code_cell(nb)
    wanted = setup_cell_source(url)
    if cell is not None and cell.source != wanted and "cratelib.notebook" in cell.source:
        text = md.read_text()
        if cell.source not in text:
            raise RuntimeError(f"cannot locate the set-up cell of {md} in its text")
        md.write_text(text.replace(cell.source, wanted, 1))
        nb = jupytext.read(md)
        changed = True
    ipynb = md.with_suffix(".ipynb")
    if pair_problems(md):
        jupytext.write(nb, ipynb, fmt="ipynb")
        changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report problems, change nothing")
    args = parser.parse_args(argv)
    url = repository_url()
    problems = []
    for md in chapters():
        if args.check:
            problems += setup_problems(md, url) + pair_problems(md)
        elif fix(md, url):
            print(f"updated {md.relative_to(ROOT)} / .ipynb")
        problems += [] if args.check else setup_problems(md, url)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
