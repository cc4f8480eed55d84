"""book/rehearse_colab.py and book/colab_env.py: the pieces that need no Colab environment."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import colab_env  # noqa: E402
import rehearse_colab  # noqa: E402

URL = "https://github.com/white-box-book/crate-book"


def _nb(*sources: str, markdown: str = "see /content/x") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), *(nbformat.v4.new_code_cell(s) for s in sources)]
    return nb


def test_colab_copy_rewrites_url_and_content_in_code_cells_only(tmp_path):
    first = f"!test -d /content/crate-book || git clone -q --depth 1 {URL} /content/crate-book\n%cd /content/crate-book/book"
    nb = _nb(first, 'root = "/content/data"; keep = "/contents", "a/content/b"')
    out = rehearse_colab.colab_copy(nb, URL, "file:///tmp/x.git", tmp_path / "c")
    c = str(tmp_path / "c")
    assert out.cells[1].source == (f"!test -d {c}/crate-book || git clone -q --depth 1 file:///tmp/x.git {c}/crate-book\n"
                                   f"%cd {c}/crate-book/book")
    assert out.cells[2].source == f'root = "{c}/data"; keep = "/contents", "a/content/b"'
    assert out.cells[0].source == "see /content/x" and nb.cells[1].source == first  # markdown and original kept
    with pytest.raises(ValueError, match="does not clone"):
        rehearse_colab.colab_copy(_nb("print(1)"), URL, "file:///tmp/x.git", tmp_path)


def test_gpu_cells_are_found_in_the_chapters():
    found = {md.stem: rehearse_colab.gpu_cells(nbformat.read(md.with_suffix(".ipynb"), as_version=4))
             for md in rehearse_colab.all_chapters()}
    with_gpu = {name for name, cells in found.items() if cells}
    assert {"06_training", "09_coarse_segmentation", "10_maskcut", "13_transfer", "14_full_scale",
            "15_crate_alpha_tost"} <= with_gpu
    assert "02_coding_rate" not in with_gpu
    nb = _nb("if scale.gpu_paths:\n    pass", "x = 1", "if scale.stand_ins or online('hub'):\n    fetch()")
    nb.cells[2].metadata["tags"] = ["gpu-long"]
    assert rehearse_colab.gpu_cells(nb) == [1, 2, 3]


GPU_NAME = re.compile(r"scale\.name\s*[!=]=\s*[\"']gpu[\"']")  # a branch gpu-smoke cannot take


@pytest.mark.parametrize("md", rehearse_colab.all_chapters(), ids=lambda p: p.stem)
def test_every_gpu_branch_is_one_the_smoke_scale_takes(md):
    """A chapter chooses its GPU sizes and cells through ``scale.gpu_paths`` (and the smoke size
    through ``scale.sized``), never by ``scale.name == "gpu"``, which the rehearsal at gpu-smoke
    would pass by; and a GPU cell that has an else branch says it skipped in the words the
    rehearsal looks for, so a GPU branch that does not run is reported, not counted as run."""
    nb = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert not [s for s in code if GPU_NAME.search(s)], f"{md.name} branches on scale.name == 'gpu'"
    for i in rehearse_colab.gpu_cells(nb):
        source = nb.cells[i].source
        if re.search(r"^if scale\.gpu_paths\b.*:$", source, re.M) and re.search(r"^else:$", source, re.M):
            assert rehearse_colab.SKIPPED in source, f"{md.name}, cell {i}: its else branch does not print {rehearse_colab.SKIPPED!r}"


def test_gpu_line_names_the_branch_or_the_long_cell():
    nb = _nb("# a comment\nrows = load()\nn = scale.sized(5000, 64) if scale.gpu_paths else 192\nprint(n)",
             "tiny = {'epochs': 1}\nif scale.gpu_paths:\n    train()")
    nb.cells[2].metadata["tags"] = ["gpu-long"]
    assert rehearse_colab.gpu_line(nb.cells[1]) == "n = scale.sized(5000, 64) if scale.gpu_paths else 192"
    assert rehearse_colab.gpu_line(nb.cells[2]) == "tiny = {'epochs': 1}"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_snapshot_holds_the_working_tree_and_leaves_the_repository_alone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("ignored.txt\n")
    (repo / "a.txt").write_text("committed\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    (repo / "a.txt").write_text("changed, not committed\n")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "ignored.txt").write_text("ignored\n")
    head, status = _git(repo, "rev-parse", "HEAD"), _git(repo, "status", "--porcelain")
    (tmp_path / "dest").mkdir()
    url = rehearse_colab.snapshot(repo, tmp_path / "dest")
    assert url.startswith("file://")
    subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(tmp_path / "clone")], check=True)
    clone = tmp_path / "clone"
    assert (clone / "a.txt").read_text() == "changed, not committed\n"
    assert (clone / "new.txt").read_text() == "untracked\n" and not (clone / "ignored.txt").exists()
    assert (_git(repo, "rev-parse", "HEAD"), _git(repo, "status", "--porcelain")) == (head, status)


def test_package_list_and_its_key(tmp_path):
    reqs = colab_env.requirements()
    names = {r.split("==")[0].lower() for r in reqs}
    assert {"torch", "torchvision", "timm", "numpy", "ipykernel", "ipywidgets", "pycocotools"} <= names
    assert "cratelib" not in names and "pydensecrf2" not in names  # what the set-up cells install
    assert all("==" in r for r in reqs)  # exact versions
    other = tmp_path / "list.txt"
    other.write_text("# a comment\nnumpy==2.1.3  # trailing\n\n")
    assert colab_env.requirements(other) == ["numpy==2.1.3"]
    assert colab_env.env_key(other) != colab_env.env_key()


def test_kernel_spec_imports_the_colab_stub(tmp_path):
    name = colab_env.kernel_dir(tmp_path / "venv", tmp_path / "k", {"A": "1"})
    spec = (tmp_path / "k" / "kernels" / name / "kernel.json").read_text()
    assert str(tmp_path / "venv" / "bin" / "python") in spec and '"A": "1"' in spec
    startup = (tmp_path / "k" / "ipython" / "profile_default" / "startup" / "00-colab.py").read_text()
    assert "import google.colab" in startup
    # the stub on the kernel's path is what the set-up cell looks for
    probe = subprocess.run([sys.executable, "-c", "import google.colab, sys; print('google.colab' in sys.modules)"],
                           env={"PYTHONPATH": str(tmp_path / "k" / "stub")}, capture_output=True, text=True)
    assert probe.stdout.strip() == "True"
