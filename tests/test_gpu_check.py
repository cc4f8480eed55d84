"""bench/gpu_check.py in its reduced mode on the CPU (every path at toy sizes), so that it cannot rot."""
import importlib.util
import re
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]

CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
import os
print("scale", os.environ["CRATE_BOOK_SCALE"])
```

```{code-cell} ipython3
:tags: [gpu-long]

raise RuntimeError("the check must skip this cell")
```
"""


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_reduced_gpu_check_prints_every_part(tmp_path, capsys):
    chapter = tmp_path / "99_tiny.md"
    chapter.write_text(CHAPTER)
    out = tmp_path / "report.md"
    assert _gpu_check().main(["--reduced", "--chapters", str(chapter), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text().strip() == text.strip()
    assert "CPU (no GPU)" in text and "REDUCED mode" in text
    for model in ("crate_tiny_patch8", "vit_tiny_patch8"):  # eager and compiled rows, with a rate
        rows = re.findall(rf"^\| {model} \| (no|eager) \| bfloat16 \| 2 \| ([\d.]+) \|", text, re.M)
        assert [r[0] for r in rows] == ["no", "eager"] and all(float(r[1]) > 0 for r in rows)
    assert re.search(r"`colab` preset .*: \*\*[\d.]+ h\*\* = data generation", text)
    assert re.search(r"`paper` preset .*\*\*[\d.]+ h per ImageNet-21k epoch per GPU\*\*", text)
    assert re.search(r"\*\*[\d.]+ s without CRF\*\*, \+ CRF [\d.]+ s \(\d masks?\) = \*\*[\d.]+ s with CRF\*\*", text)
    # the chapter ran at GPU scale, without its gpu-long cell
    assert re.search(r"^\| 99_tiny \| ok \| \d+ \| .* \| `raise RuntimeError\(\"the check must skip this cell\"\)` \|$",
                     text, re.M)


def test_the_long_gpu_cells_of_the_book_are_tagged():
    """The check skips cells tagged gpu-long: the colab training and the data-set downloads (a
    ``fetch`` of a data set at the GPU scale; at gpu-smoke it writes a local stand-in) must carry it."""
    datasets = re.compile(r'fetch\("(voc|coco|cifar10)"')
    long_cells = 0
    for md in sorted((ROOT / "book").glob("[0-9][0-9]_*.md")):
        for cell in jupytext.read(md).cells:
            lines = cell.source.splitlines()
            downloads = [line for i, line in enumerate(lines) if datasets.search(line)
                         and not (i and "gpu-smoke" in lines[i - 1])]  # a stand-in only
            if cell.cell_type == "code" and ("train(colab_config" in cell.source or "download(" in cell.source
                                             or downloads):
                assert "gpu-long" in cell.metadata.get("tags", []), f"{md.name}: {cell.source[:80]}"
                long_cells += 1
    assert long_cells == 3  # chapter 6's colab training, chapter 13's and chapter 14's downloads
