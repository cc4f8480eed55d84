"""``book/sync_repo_url.py --url``: a fork's book points at the fork (run on a temporary copy)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("sync_repo_url", ROOT / "book" / "sync_repo_url.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

FORK = "https://github.com/someone-else/crate-book-fork"


@pytest.fixture()
def copy(tmp_path):
    """_config.yml and two chapters (both files of each pair) in a scratch repository layout."""
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    for stem in ("02_coding_rate", "14_full_scale"):
        for suffix in (".md", ".ipynb"):
            shutil.copy(ROOT / "book" / f"{stem}{suffix}", tmp_path / "book" / f"{stem}{suffix}")
    return tmp_path


def test_url_goes_into_config_cells_and_notebooks(copy, capsys):
    before = (copy / "_config.yml").read_text()
    upstream = sync.repository_url(copy)
    assert sync.main(["--root", str(copy), "--url", FORK + "/"]) == 0
    after = (copy / "_config.yml").read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [(f"  url: {upstream}", f"  url: {FORK}")]  # one line; comments and layout kept
    assert sync.repository_url(copy) == FORK
    for md in sync.chapters(copy / "book"):
        for path in (md, md.with_suffix(".ipynb")):
            first = sync.first_code_cell(jupytext.read(path)).source
            assert f"git clone -q --depth 1 {FORK} /content/crate-book" in first and upstream not in first
    assert sync.main(["--root", str(copy), "--check"]) == 0
    capsys.readouterr()
    assert sync.main(["--root", str(copy), "--url", FORK]) == 0  # already there: nothing to do
    assert capsys.readouterr().out == ""
    assert sync.repository_url() == upstream  # the real repository is untouched


def test_a_stale_chapter_fails_the_check(copy, capsys):
    sync.set_repository_url(FORK, copy)  # the config moves, the chapters do not
    assert sync.main(["--root", str(copy), "--check"]) == 1
    assert "not the standard set-up cell for " + FORK in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["http://github.com/a/b", "https://gitlab.com/a/b", "https://github.com/a",
                                 "https://github.com/a/b/c"])
def test_bad_urls_are_refused(copy, bad):
    with pytest.raises(ValueError, match="https://github.com/OWNER/REPO"):
        sync.set_repository_url(bad, copy)
