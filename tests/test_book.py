"""Static checks of the Jupyter Book (fast: nothing is executed).

* every file the table of contents names exists, and every chapter in ``book/`` is in it;
* every chapter (MyST notebook) has its paired ``.ipynb`` with the same cells and no outputs;
* every chapter starts with the standard set-up cell, whose URL is ``_config.yml``'s
  ``repository.url``.

Fix failures with ``python book/sync_repo_url.py`` (then commit the .md and the .ipynb).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("sync_repo_url", ROOT / "book" / "sync_repo_url.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

CHAPTERS = sync.chapters()


def _toc_files(node) -> list[str]:
    """Every ``file:`` (and the root) named anywhere in the toc."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                found.append(value)
            else:
                found += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found += _toc_files(item)
    return found


TOC_FILES = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))


def _resolve(entry: str) -> Path | None:
    for suffix in ("", ".md", ".ipynb"):
        path = ROOT / f"{entry}{suffix}"
        if path.is_file():
            return path
    return None


def test_there_are_chapters():
    assert CHAPTERS, "no MyST notebooks found in book/"


@pytest.mark.parametrize("entry", TOC_FILES)
def test_toc_entry_exists(entry):
    assert _resolve(entry) is not None, f"_toc.yml names {entry!r}, but no {entry}.md or .ipynb exists"


def test_every_page_is_in_the_toc():
    listed = {_resolve(e) for e in TOC_FILES}
    missing = [p.name for p in sorted((ROOT / "book").glob("*.md")) if p not in listed]
    assert not missing, f"pages in book/ that _toc.yml does not list (they would not be built): {missing}"


def test_no_orphan_notebooks():
    orphans = [p.name for p in (ROOT / "book").glob("*.ipynb") if not p.with_suffix(".md").exists()]
    assert not orphans, f".ipynb without a paired .md: {orphans}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_pair_in_sync(md):
    assert sync.pair_problems(md) == []


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_jupytext_pairing_metadata(md):
    nb = jupytext.read(md)
    assert nb.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_repository_url_is_one_setting():
    url = sync.repository_url()
    assert url.startswith("https://github.com/"), url
    assert url.count("/") == 4, f"expected https://github.com/OWNER/REPO, got {url}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_is_the_setup_cell(md):
    assert sync.setup_problems(md, sync.repository_url()) == []


def test_setup_cell_does_not_reinstall_torch():
    source = sync.setup_cell_source(sync.repository_url())
    assert "torch" not in source.split("%pip", 1)[1].splitlines()[0]
    assert "--upgrade" not in source and "-U " not in source


def _words_of_development(path: Path) -> list[str]:
    """Lines of ``path`` that speak of how the book was made (work sessions) rather than of runs,
    data and machines."""
    return [f"{path.relative_to(ROOT)}:{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
            if "session" in line.lower()]


def test_book_and_package_speak_of_runs_not_of_sessions():
    pages = [*(ROOT / "book").glob("*.md"), *(ROOT / "cratelib").rglob("*.py"), *(ROOT / "cratelib").rglob("*.yaml")]
    found = [hit for page in sorted(pages) for hit in _words_of_development(page)]
    assert not found, "the book speaks of runs, data and machines:\n" + "\n".join(found)


HIDDEN = ("remove-cell", "remove-input", "hide-input", "hide-cell")


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_no_hidden_cell_defines_a_function(md):
    """Hidden cells hold exercise solutions and glue calls; a function a chapter needs is either
    taught in a visible cell or lives in the library."""
    nb = jupytext.read(md)
    hidden = [c for c in nb.cells if c.cell_type == "code" and set(c.metadata.get("tags", [])) & set(HIDDEN)]
    defining = [c.source.splitlines()[0] for c in hidden
                if any(line.lstrip().startswith("def ") for line in c.source.splitlines())]
    assert not defining, f"hidden cells defining functions in {md.name}: {defining}"
