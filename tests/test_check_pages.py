"""book/check_pages.py finds what a reader would see broken, in a real headless Chromium.

The browser tests run where Debian's chromium is installed (CI's page check needs it too) and are
skipped elsewhere; the page with a formula also needs MathJax from npm (a cached copy or npm).
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_pages", ROOT / "book" / "check_pages.py")
check_pages = sys.modules["check_pages"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_pages)

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
HAS_MATHJAX = (ROOT / ".cache" / "page-check" / "node_modules" / "mathjax").is_dir() or shutil.which("npm")

MATHJAX = '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a2d1c8b10000000049454e44ae426082")


def page(body: str, head: str = "") -> str:
    return (f"<html><head>{head}</head><body><main><article class='bd-article' style='width:600px'>"
            f"{body}</article></main></body></html>")


def cell(code: str, output: str) -> str:
    return (f"<div class='cell'><div class='cell_input'><div class='highlight'><pre>{code}</pre></div></div>"
            f"<div class='cell_output'>{output}</div></div>")


WIDGET = "<script type='application/vnd.jupyter.widget-view+json'>{\"model_id\": \"m\"}</script>"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    (html / "_static").mkdir()
    (html / "_static" / "theme.html").write_text("<html>not a page</html>")
    (html / "forward.html").write_text('<meta http-equiv="Refresh" content="0; url=index.html" />')
    (html / "fig.png").write_bytes(PNG)
    (html / "index.html").write_text(page(  # the default figure, then its sliders in a subsection
        "<section><h1>Good</h1><section><h2>A</h2>" + cell("plot()", "<img src='fig.png'>")
        + "<section><h3>Try it</h3>" + cell("x = 1", "<pre>1</pre>") + cell("interact(plot)", WIDGET)
        + "</section></section></section>"))
    (html / "book" / "broken.html").write_text(page(
        "<p>Price of $a+b$ dollars.</p><img src='../missing.png'><p>differs by {glue:text}`x:.0%} here</p>"
        "<p>| model | acc | |&mdash;|&mdash;| | crate | 0.9 |</p>"  # Sphinx's typographic dashes
        "<figure><pre>&lt;Figure size 900x260 with 1 Axes&gt;</pre><figcaption>Maps</figcaption></figure>"
        + "<section><h1>Broken</h1><section><h2>A</h2>" + cell("plot()", "<img src='../fig.png'>")
        + "</section><section><h2>B</h2>" + cell("print(1)", "<pre>1</pre>") + cell("interact(f)", WIDGET)
        + "</section></section>"
        + cell("y = '" + "x" * 150 + "'", "")))
    return html


def test_built_pages_skips_sphinx_folders(book):
    assert [p.relative_to(book).as_posix() for p in check_pages.built_pages(book)] == \
        ["book/broken.html", "index.html"]


def test_mathjax_version_is_read_from_the_pages(book):
    (book / "index.html").write_text(page("", MATHJAX))
    assert check_pages.mathjax_version(check_pages.built_pages(book)) == "3"
    (book / "book" / "broken.html").write_text(page("", MATHJAX.replace("@3/", "@4/")))
    with pytest.raises(check_pages.CheckError, match="different MathJax versions"):
        check_pages.mathjax_version(check_pages.built_pages(book))


def test_missing_book_is_a_clear_error(tmp_path, capsys):
    assert check_pages.main([str(tmp_path), "--no-screenshots"]) == 2
    assert "expected a built book" in capsys.readouterr().err


@needs_chromium
def test_a_good_page_passes_and_a_broken_one_fails(book, tmp_path, capsys):
    shots = tmp_path / "shots"
    assert check_pages.main([str(book), "--out", str(shots), "--chromium", CHROMIUM]) == 1
    out = capsys.readouterr().out
    assert "ok   index.html" in out and "FAIL book/broken.html" in out
    broken = out.split("FAIL book/broken.html")[1]
    assert "image: not loaded: ../missing.png" in broken
    assert "formula: raw TeX in the text: Price of $a+b$ dollars." in broken
    assert "markup: raw MyST role in the text: differs by {glue:text}`x:.0%} here" in broken
    assert "markup: Markdown table left as text: | model | acc | |\u2014|\u2014| | crate | 0.9 |" in broken
    assert "image: figure without an image: <Figure size 900x260 with 1 Axes>Maps" in broken
    assert "widget: no static figure above the widget in its section: interact(f)" in broken
    assert "width: code line 156 characters" in broken
    assert "1 of 2 pages pass" in out
    assert sorted(p.name for p in shots.iterdir()) == ["book__broken.png", "index.png"]
    assert (shots / "index.png").read_bytes()[:8] == PNG[:8]


@needs_chromium
@pytest.mark.skipif(not HAS_MATHJAX, reason="no local MathJax and no npm to install it")
def test_formulas_are_typeset_and_tex_errors_caught(book, capsys):
    (book / "index.html").write_text(page("<p><span class='math'>\\(x^2 + \\mathbb{R}\\)</span></p>", MATHJAX))
    wide = " + ".join(f"x_{{{i}}}^2" for i in range(60))
    (book / "book" / "broken.html").write_text(page(
        f"<div class='math'>\\[\\nosuchmacro{{x}}\\]</div><div class='math'>\\[{wide}\\]</div>", MATHJAX))
    assert check_pages.main([str(book), "--no-screenshots", "--chromium", CHROMIUM]) == 1
    out = capsys.readouterr().out
    assert "ok   index.html  (0 images, 1 formulas" in out
    assert "formula: TeX error in: \\nosuchmacro{x}" in out
    assert "px wider than the column: x_{0}^2 + x_{1}^2" in out
