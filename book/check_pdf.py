"""Check the PDF of the book as a reader would open it.

* every page renders: ``pdftoppm`` turns each page into a PNG (written to ``--out`` for a human
  to look at) and the number of PNGs is the number of pages;
* every chapter of ``_toc.yml`` is there: its title (the first ``#`` heading of its source) is in
  the PDF's outline and in the text of the page the outline points at;
* every reproduction chapter (the part of ``_toc.yml`` whose caption starts with "Part 2") shows at
  least one figure: an image of at least ``--min-figure`` pixels a side on its pages.

All of it with Debian's poppler-utils: pdfinfo, pdftoppm, pdftotext, pdftohtml (the outline)
and pdfimages (the images on each page).

Usage (from the repository root, after ``jupyter-book build . --builder pdflatex``)::

    python book/check_pdf.py                       # _build/latex/book.pdf, PNGs in _build/pdf-pages
    python book/check_pdf.py book.pdf --dpi 100

Exit status 0 when the PDF passes, 1 when it does not (each problem is printed), 2 when the
check cannot run (no PDF, no poppler-utils).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("pdfinfo", "pdftoppm", "pdftotext", "pdftohtml", "pdfimages")


@dataclass
class Chapter:
    source: str  # toc entry, e.g. "book/06_training"
    title: str
    reproduction: bool
    first_page: int | None = None
    last_page: int | None = None


def normalize(text: str) -> str:
    """Text as compared: ligatures and typographic forms folded (NFKC), hyphenated line breaks
    joined, whitespace collapsed, case folded."""
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


def title_of(source: Path) -> str:
    """The first level-1 heading of a MyST page, outside code fences, without inline markup."""
    text = re.sub(r"^---\n.*?\n---\n", "", source.read_text(), flags=re.S)
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    match = re.search(r"^# (.+)$", text, flags=re.M)
    if match is None:
        raise ValueError(f"{source}: expected a '# Title' heading")
    return re.sub(r"[*_`]", "", match.group(1)).strip()


def chapters(toc_path: Path) -> list[Chapter]:
    """The chapters of the table of contents and the files of their sections, in order, with their titles."""
    toc = yaml.safe_load(toc_path.read_text())
    found = []
    for part in toc.get("parts", []):
        reproduction = str(part.get("caption", "")).startswith("Part 2")
        entries = list(part.get("chapters", []))
        while entries:  # a chapter, then the files of its sections
            entry = entries.pop(0)
            source = toc_path.parent / f"{entry['file']}.md"
            found.append(Chapter(entry["file"], title_of(source), reproduction))
            entries[:0] = entry.get("sections", [])
    if not any(c.reproduction for c in found):
        raise ValueError(f"{toc_path}: no part whose caption starts with 'Part 2' (the reproduction chapters)")
    return found


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def page_count(pdf: Path) -> int:
    return int(re.search(r"^Pages:\s+(\d+)", run("pdfinfo", str(pdf)), flags=re.M).group(1))


def outline(pdf: Path) -> list[tuple[str, int]]:
    """The PDF's bookmarks as (title, page), in document order, all levels."""
    xml = run("pdftohtml", "-xml", "-i", "-q", "-stdout", str(pdf))
    xml = re.sub(r"<!DOCTYPE[^>]*>", "", xml)
    tree = ET.fromstring(xml)
    return [("".join(item.itertext()), int(item.get("page"))) for item in tree.iter("item")
            if item.get("page")]


def images_per_page(pdf: Path, min_side: int) -> dict[int, int]:
    """How many images of at least ``min_side`` pixels a side each page draws (masks excluded)."""
    counts: dict[int, int] = {}
    for line in run("pdfimages", "-list", str(pdf)).splitlines()[2:]:
        cols = line.split()
        page, kind, width, height = int(cols[0]), cols[2], int(cols[3]), int(cols[4])
        if kind == "image" and min(width, height) >= min_side:
            counts[page] = counts.get(page, 0) + 1
    return counts


def render(pdf: Path, out: Path, dpi: int) -> list[Path]:
    """Every page as ``out/page-NNN.png`` (old renders removed first)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("page-*.png"):
        old.unlink()
    run("pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "page"))
    return sorted(out.glob("page-*.png"))


def locate(book: list[Chapter], marks: list[tuple[str, int]], pages: int) -> list[str]:
    """Set each chapter's first and last page from the outline ``marks`` (title, page); return
    the chapters whose title is not in it."""
    problems = []
    for chapter in book:
        wanted = normalize(chapter.title)
        chapter.first_page = next((page for title, page in marks if normalize(title).endswith(wanted)), None)
        if chapter.first_page is None:
            problems.append(f"{chapter.source}: title {chapter.title!r} is not in the PDF's outline")
    starts = sorted(c.first_page for c in book if c.first_page)
    for chapter in book:
        if chapter.first_page:
            later = [p for p in starts if p > chapter.first_page]
            chapter.last_page = (later[0] - 1) if later else pages
    return problems


def missing_figures(book: list[Chapter], figures: dict[int, int]) -> list[str]:
    """The reproduction chapters with no figure on their pages (prints every chapter's count)."""
    problems = []
    for chapter in book:
        if chapter.first_page is None:
            continue
        n = sum(figures.get(p, 0) for p in range(chapter.first_page, chapter.last_page + 1))
        print(f"  pages {chapter.first_page:>3}-{chapter.last_page:<3} {n:>3} figures  {chapter.title}")
        if chapter.reproduction and n == 0:
            problems.append(f"{chapter.source}: no figure on its pages {chapter.first_page}-{chapter.last_page}")
    return problems


def check(pdf: Path, toc: Path, out: Path, dpi: int, min_figure: int) -> list[str]:
    """The problems found (empty when the PDF passes); prints what it measured."""
    problems = []
    pages = page_count(pdf)
    rendered = render(pdf, out, dpi)
    if len(rendered) != pages:
        problems.append(f"pdftoppm rendered {len(rendered)} of {pages} pages")
    print(f"{pdf}: {pages} pages, {pdf.stat().st_size / 2**20:.1f} MiB; PNGs at {dpi} dpi in {out}")

    book = chapters(toc)
    problems += locate(book, outline(pdf), pages)
    for chapter in book:
        if chapter.first_page is None:
            continue
        page = str(chapter.first_page)
        text = run("pdftotext", "-f", page, "-l", page, "-enc", "UTF-8", str(pdf), "-")
        if normalize(chapter.title) not in normalize(text):
            problems.append(f"{chapter.source}: title {chapter.title!r} is not on page {page}, "
                            "where the outline points")
    return problems + missing_figures(book, images_per_page(pdf, min_figure))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pdf", nargs="?", type=Path, default=ROOT / "_build" / "latex" / "book.pdf")
    parser.add_argument("--toc", type=Path, default=ROOT / "_toc.yml")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf-pages",
                        help="folder for the page PNGs (default: _build/pdf-pages)")
    parser.add_argument("--dpi", type=int, default=60, help="resolution of the page PNGs")
    parser.add_argument("--min-figure", type=int, default=100,
                        help="smallest image side in pixels that counts as a figure")
    args = parser.parse_args(argv)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"check_pdf: {', '.join(missing)} not found (Debian: apt-get install poppler-utils)", file=sys.stderr)
        return 2
    if not args.pdf.is_file():
        print(f"check_pdf: expected the PDF at {args.pdf}; build it with book/build_pdf.sh", file=sys.stderr)
        return 2
    problems = check(args.pdf, args.toc, args.out, args.dpi, args.min_figure)
    for problem in problems:
        print(f"FAIL {problem}")
    print("the PDF passes" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
