"""book/check_pdf.py: chapter titles from the sources, chapters located by the PDF outline, a
figure required in every reproduction chapter; the poppler-utils parts on a PDF made here."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_pdf", ROOT / "book" / "check_pdf.py")
check_pdf = sys.modules["check_pdf"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_pdf)


def test_normalize_folds_ligatures_hyphenation_and_case():
    assert check_pdf.normalize("Emer-\n gence of\ufb01t  Maps") == "emergence offit maps"


def test_title_skips_front_matter_and_code_fences(tmp_path):
    page = tmp_path / "ch.md"
    page.write_text("---\ntitle: x\n---\n(label)=\n```{code-cell}\n# a comment\n```\n# *Real* `title`\n## sub\n")
    assert check_pdf.title_of(page) == "Real title"
    page.write_text("no heading\n")
    with pytest.raises(ValueError, match="expected a '# Title' heading"):
        check_pdf.title_of(page)


def test_reproduction_chapters_are_part_2_of_the_toc():
    book = check_pdf.chapters(ROOT / "_toc.yml")
    assert [c.source for c in book if c.reproduction] == [
        f"book/{name}" for name in ("06_training", "06b_fair_instrument", "07_attention", "08_pca", "09_coarse_segmentation",
                                    "10_maskcut", "11_ablations", "12_depth_heads_epochs_noise",
                                    "13_transfer", "14_full_scale")]
    assert book[1].title == "Coding rate and rate reduction"


def test_chapters_are_located_and_figures_counted(capsys):
    book = [check_pdf.Chapter("a", "Theory", False), check_pdf.Chapter("b", "Training CRATE", True),
            check_pdf.Chapter("c", "Attention maps", True), check_pdf.Chapter("d", "Missing", False)]
    marks = [("Part 1", 3), ("1. Theory", 3), ("Part 2", 9), ("2. Training CRATE", 9), ("3. Attention Maps", 14)]
    assert check_pdf.locate(book, marks, pages=20) == ["d: title 'Missing' is not in the PDF's outline"]
    assert [(c.first_page, c.last_page) for c in book[:3]] == [(3, 8), (9, 13), (14, 20)]
    assert check_pdf.missing_figures(book, {4: 2, 15: 1}) == ["b: no figure on its pages 9-13"]
    assert check_pdf.missing_figures(book, {9: 1, 20: 1}) == []


@pytest.mark.skipif(any(shutil.which(t) is None for t in check_pdf.TOOLS), reason="poppler-utils not installed")
def test_poppler_parts_on_a_real_pdf(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_pdf import PdfPages

    pdf = tmp_path / "two.pdf"
    with PdfPages(pdf) as doc:
        for page, image in ((1, False), (2, True)):
            fig = plt.figure(figsize=(4, 4))
            fig.text(0.1, 0.9, f"Page {page} title")
            if image:
                fig.add_axes([0.1, 0.1, 0.8, 0.7]).imshow(np.random.default_rng(0).random((200, 200)))
            doc.savefig(fig, dpi=100)
            plt.close(fig)
    assert check_pdf.page_count(pdf) == 2
    assert check_pdf.images_per_page(pdf, min_side=100) == {2: 1}
    assert check_pdf.images_per_page(pdf, min_side=500) == {}
    pngs = check_pdf.render(pdf, tmp_path / "pngs", dpi=20)
    assert [p.name for p in pngs] == ["page-1.png", "page-2.png"]
