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
    python book/sync_repo_url.py --url https://github.com/OWNER/REPO   # point the book at a fork

``--url`` first writes the URL into ``_config.yml`` (the book workflow does this with the
repository being built, so that a fork's book, its launch buttons and its set-up cells use the
fork).

``tests/test_book.py`` runs the same checks.
"""
from __future__ import annotations

import argparse
import os
import re
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


GITHUB_URL = re.compile(r"https://github\.com/[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")


def set_repository_url(url: str, root: Path = ROOT) -> bool:
    """Write ``url`` as ``repository.url`` into ``root/_config.yml``, changing only that line
    (comments and layout stay); True if the file changed."""
    url = url.rstrip("/")
    if not GITHUB_URL.fullmatch(url):
        raise ValueError(f"expected a repository URL https://github.com/OWNER/REPO, got {url!r}")
    config = root / "_config.yml"
    lines = config.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "repository:"), None)
    if start is None:
        raise ValueError(f"{config} has no top-level 'repository:' section")
    for i in range(start + 1, len(lines)):
        if lines[i].strip() and not lines[i][0].isspace():
            break  # the next top-level key: the section has no url
        key, _, value = lines[i].partition(":")
        if key.strip() == "url":
            new = f"{key}: {url}\n"
            if lines[i] == new:
                return False
            lines[i] = new
            tmp = config.with_name(config.name + ".tmp")
            tmp.write_text("".join(lines))
            os.replace(tmp, config)  # atomic: a reader sees the old or the new file
            return True
    raise ValueError(f"{config}: the 'repository:' section has no 'url:'")


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


def _name(path: Path) -> str:
    """``book/<file>``: how messages name a chapter's files."""
    return f"{path.parent.name}/{path.name}"


def pair_problems(md: Path) -> list[str]:
    """What is wrong with the pair ``md`` / ``md.with_suffix('.ipynb')`` (empty if nothing)."""
    ipynb = md.with_suffix(".ipynb")
    if not ipynb.exists():
        return [f"{_name(ipynb)} is missing"]
    problems = []
    text_nb, json_nb = jupytext.read(md), jupytext.read(ipynb)
    if cells_of(text_nb) != cells_of(json_nb):
        problems.append(f"{_name(ipynb)} differs from {_name(md)} (cells)")
    for cell in json_nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"{_name(ipynb)} has outputs; commit it without them")
            break
    return problems


def setup_problems(md: Path, url: str) -> list[str]:
    """Problems with the chapter's first code cell (empty if it is the standard set-up cell)."""
    cell = first_code_cell(jupytext.read(md))
    if cell is None:
        return [f"{_name(md)} has no code cell"]
    if cell.source != setup_cell_source(url):
        return [f"{_name(md)}: the first code cell is not the standard set-up cell for {url}"]
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
    parser.add_argument("--url", help="first set _config.yml's repository.url to this GitHub URL")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this script's)")
    args = parser.parse_args(argv)
    if args.url and args.check:
        parser.error("--url changes files; it cannot be combined with --check")
    if args.url and set_repository_url(args.url, args.root):
        print(f"_config.yml: repository.url = {args.url}")
    url = repository_url(args.root)
    problems = []
    for md in chapters(args.root / "book"):
        if args.check:
            problems += setup_problems(md, url) + pair_problems(md)
        elif fix(md, url):
            print(f"updated {_name(md)} / .ipynb")
        problems += [] if args.check else setup_problems(md, url)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
