"""Rehearse the Colab path: run chapters as the Colab button opens them, in Colab's environment.

What a reader meets on Colab, as closely as this machine allows:

1. **Colab's packages.** A virtual environment holding exactly ``book/colab_packages.txt``
   (Colab's preinstalled versions; no cratelib, no extras), cached and reset before each chapter
   (``colab_env.py``). The differences this machine imposes are listed in that file and printed.
2. **The repository.** The first cell clones ``_config.yml``'s repository URL. The rehearsal makes
   a one-commit git repository of this working tree (tracked and untracked files that git does not
   ignore, uncommitted changes included) and puts its ``file://`` URL in place of the GitHub URL,
   so the cell's ``git clone --depth 1`` and ``%pip install -e`` run for real on what is here.
3. **/content.** Every chapter gets a fresh runtime: its own empty folder standing for
   ``/content``; every ``/content`` in the executed copy's code cells is rewritten to it (no root
   needed, nothing is created at ``/``). The kernel starts there, as Colab's does, with empty
   caches (cratelib's, Hugging Face's, a temporary folder of its own).
4. **The kernel.** The environment's ipykernel, with a stub ``google.colab`` imported at start-up,
   so the set-up cell takes its Colab branch. ``CRATE_BOOK_SCALE`` is unset (Colab's CPU runtime
   picks ``cpu``) unless ``--scale`` sets it; ``--scale gpu-smoke`` runs the GPU cells tiny on the
   CPU (``cratelib.notebook``), and the rehearsal then lists the GPU cells it ran.
5. **The notebook.** ``book/<chapter>.ipynb`` (the paired file the button opens) executed top to
   bottom with nbclient. The first failing cell stops the rehearsal, naming chapter and cell.

Usage (from the repository root)::

    python book/rehearse_colab.py 02_coding_rate 10        # chapters by name or number prefix
    python book/rehearse_colab.py --all                    # every chapter
    python book/rehearse_colab.py --gpu-chapters --scale gpu-smoke   # the chapters with GPU cells

The first run builds the environment (about 4 minutes, 6 GB in ``~/.cache/cratelib/colab-rehearsal``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient.exceptions import CellExecutionError

import colab_env
from execute_chapter import TimedClient
from sync_repo_url import chapters as all_chapters
from sync_repo_url import repository_url

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
CONTENT = re.compile(r"(?<![\w.])/content(?=[/\"'\s]|$)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # IPython's colours in a traceback
GPU_CELL = re.compile(r"scale\.(gpu_paths|stand_ins)\b")  # a GPU branch, or a download that gpu-smoke stands in for
SKIPPED = "Skipped on scale"  # what a GPU cell's else branch prints (tests/test_rehearse_colab.py holds the chapters to it)
# The host's variables a fresh Colab kernel would not have (ours would leak into the rehearsal).
DROP_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CRATE_BOOK_SCALE", "CRATELIB_CACHE", "HF_HOME",
            "HF_HUB_CACHE", "HF_HUB_OFFLINE", "IPYTHONDIR", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR", "MPLBACKEND",
            "JPY_PARENT_PID")


def snapshot(repo: Path, dest: Path) -> str:
    """A one-commit bare repository in ``dest`` holding ``repo``'s working tree as it is (every
    file git does not ignore); returns its ``file://`` URL. ``repo``'s own index and refs are not
    touched (a temporary index, an unreferenced commit)."""
    index = dest / "index"
    real_index = subprocess.run(["git", "-C", str(repo), "rev-parse", "--path-format=absolute", "--git-path", "index"],
                                check=True, capture_output=True, text=True).stdout.strip()
    if Path(real_index).is_file():
        shutil.copy(real_index, index)  # only files changed since are hashed again
    env = {**os.environ, "GIT_INDEX_FILE": str(index), "GIT_AUTHOR_NAME": "rehearsal", "GIT_AUTHOR_EMAIL": "-",
           "GIT_COMMITTER_NAME": "rehearsal", "GIT_COMMITTER_EMAIL": "-"}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("add", "-A")
    commit = git("commit-tree", git("write-tree"), "-m", "working tree, for the Colab rehearsal")
    bare = dest / "crate-book.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    git("push", "-q", str(bare), f"{commit}:refs/heads/main")
    return f"file://{bare}"


def colab_copy(nb: nbformat.NotebookNode, url: str, clone_url: str, content: Path) -> nbformat.NotebookNode:
    """The notebook as the rehearsal runs it: ``url`` -> ``clone_url`` and ``/content`` ->
    ``content`` in the code cells. Raises if the first code cell does not clone ``url``."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or url not in code[0].source:
        raise ValueError(f"the first code cell does not clone {url} (run python book/sync_repo_url.py)")
    for cell in code:
        cell.source = CONTENT.sub(str(content), cell.source).replace(url, clone_url)
    return nb


def gpu_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells with a GPU branch (``scale.gpu_paths``), a download that the smoke scale
    stands in for (``scale.stand_ins``) or the tag ``gpu-long``."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and (GPU_CELL.search(c.source) or "gpu-long" in c.get("metadata", {}).get("tags", []))]


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if out.get("output_type") == "stream" else
                     str(out.get("data", {}).get("text/plain", "")) + " ".join(out.get("traceback", [])))
    return "".join(parts)


def gpu_line(cell) -> str:
    """What names a GPU cell in the rehearsal's list: a ``gpu-long`` cell's first line of code,
    else the line that branches on ``scale.gpu_paths`` or ``scale.stand_ins``."""
    lines = [line.strip() for line in cell.source.splitlines() if line.strip() and not line.startswith("#")]
    if "gpu-long" not in cell.get("metadata", {}).get("tags", []):
        lines = [line for line in lines if GPU_CELL.search(line)] or lines
    return next(iter(lines), "")[:90]


def _cpu_seconds(pid: int | None) -> float:
    """CPU time of a process and its finished children (Linux ``/proc``; NaN elsewhere): what a
    chapter costs independently of how busy the machine was."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def resolve(names: list[str]) -> list[Path]:
    """Chapters (``book/*.md`` notebooks) from names, file names or number prefixes."""
    known = all_chapters()
    found = []
    for name in names:
        stem = Path(name).stem
        match = [c for c in known if c.stem == stem] or [c for c in known if c.stem.startswith(stem)]
        if len(match) != 1:
            raise SystemExit(f"'{name}' names {len(match)} chapters; chapters: {', '.join(c.stem for c in known)}")
        found += match
    return found


def rehearse(chapter: Path, venv: Path, clone_url: str, work: Path, scale: str | None, timeout: int) -> dict:
    """Run one chapter's ``.ipynb`` in a fresh Colab-like runtime below ``work``; returns times,
    the GPU cells and the stand-ins it used. Raises ``CellExecutionError`` on a failing cell."""
    colab_env.reset(venv)
    runtime = work / chapter.stem
    content, tmp = runtime / "content", runtime / "tmp"
    content.mkdir(parents=True)
    tmp.mkdir()
    nb = colab_copy(nbformat.read(chapter.with_suffix(".ipynb"), as_version=4), repository_url(), clone_url, content)
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env |= {"CRATELIB_CACHE": str(runtime / "cache" / "cratelib"), "HF_HOME": str(runtime / "cache" / "huggingface"),
            "TMPDIR": str(tmp), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    if scale:
        env["CRATE_BOOK_SCALE"] = scale
    kernels = runtime / "kernel"
    name = colab_env.kernel_dir(venv, kernels, {})
    km = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels / "kernels")]))
    client = TimedClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(content)}})
    t0 = time.perf_counter()
    try:
        client.execute(env=env)
    finally:
        seconds = time.perf_counter() - t0
        times = {index: t for t, index, _ in client.cell_times}
        cpu = _cpu_seconds(getattr(km.provisioner, "pid", None))
        if km.has_kernel:  # a client given its kernel manager leaves the kernel running
            km.shutdown_kernel(now=True)
        nbformat.write(nb, runtime / "executed.ipynb")  # with its outputs (kept with --keep)
    standins = [json.loads(line) for log in tmp.glob("crate-gpu-smoke-*/stand-ins.jsonl")
                for line in log.read_text().splitlines()]
    gpu = [{"cell": i, "line": gpu_line(nb.cells[i]), "seconds": times.get(i, float("nan")),
            "skipped": SKIPPED in _text(nb.cells[i])} for i in gpu_cells(nb)]
    return {"chapter": chapter.stem, "seconds": seconds, "cpu_seconds": cpu, "setup_seconds": times[min(times)] if times else 0.0,
            "gpu_cells": gpu, "stand_ins": standins}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter names or number prefixes (e.g. 02_coding_rate, 10)")
    parser.add_argument("--all", action="store_true", help="every chapter")
    parser.add_argument("--gpu-chapters", action="store_true", help="the chapters with GPU cells (scale.gpu_paths, scale.stand_ins, gpu-long)")
    parser.add_argument("--scale", choices=("cpu", "gpu", "gpu-smoke"),
                        help="CRATE_BOOK_SCALE for the kernels (default: unset, as on Colab)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--keep", action="store_true", help="keep the runtimes' folders (printed)")
    args = parser.parse_args(argv)
    chosen = all_chapters() if args.all else resolve(args.chapters)
    if args.gpu_chapters:
        chosen += [c for c in all_chapters() if c not in chosen
                   and gpu_cells(nbformat.read(c.with_suffix(".ipynb"), as_version=4))]
    if not chosen:
        parser.error("name chapters, or pass --all or --gpu-chapters")
    t_all = time.perf_counter()
    venv = colab_env.colab_venv()
    print(f"Colab environment: {venv} ({colab_env.PACKAGES.name}); differences from Colab: Python "
          f"{sys.version_info.major}.{sys.version_info.minor} (Colab 3.13), torch and torchvision from this machine's disk")
    work = Path(tempfile.mkdtemp(prefix="colab-rehearsal-"))
    results, status = [], 0
    try:
        clone_url = snapshot(ROOT, work)
        print(f"repository: {repository_url()} -> {clone_url} (this working tree)")
        for chapter in chosen:
            try:
                r = rehearse(chapter, venv, clone_url, work, args.scale, args.timeout)
            except CellExecutionError as err:
                print(f"FAILED: chapter {chapter.stem}, {ANSI.sub('', str(err))}", file=sys.stderr)
                status = 1
                break
            results.append(r)
            print(f"{r['chapter']}: ok in {r['seconds']:.0f} s, {r['cpu_seconds']:.0f} s of kernel CPU time "
                  f"(set-up cell: clone, install, import: {r['setup_seconds']:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"runtimes kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.scale == "gpu-smoke" and results:
        print("\nGPU cells run at gpu-smoke:")
        for r in results:
            for c in r["gpu_cells"]:
                state = "SKIPPED its GPU branch" if c["skipped"] else f"{c['seconds']:.1f} s"
                print(f"  {r['chapter']}, cell {c['cell']}: {c['line']}  [{state}]")
            for s in r["stand_ins"]:
                print(f"  {r['chapter']}: stand-in {s['kind']}: {s['what']}")
        if any(c["skipped"] for r in results for c in r["gpu_cells"]):
            status = 1
    done = len(results)
    print(f"\n{done} of {len(chosen)} chapters rehearsed in {(time.perf_counter() - t_all) / 60:.1f} min"
          + ("" if status == 0 else " - FAILED"))
    return status


if __name__ == "__main__":
    sys.exit(main())
