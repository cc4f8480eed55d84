"""Execute one chapter the way the book build does, and time each cell.

The book build (``jupyter-book build .``) runs every chapter; while writing one chapter it is
quicker to run just that one. This script reads a MyST chapter with jupytext, executes it with
nbclient in ``book/`` (the build's working directory), prints the slowest cells and the total
time, and writes the executed notebook to a scratch file, never next to the chapter (the paired
``.ipynb`` in ``book/`` stays output-free).

Usage (from the repository root)::

    python book/execute_chapter.py book/08_pca.md            # executed copy in /tmp
    python book/execute_chapter.py book/08_pca.md --top 10   # list the 10 slowest cells

Exit status 1 when a cell raises (its traceback is printed).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbclient
from nbclient.exceptions import CellExecutionError

BOOK = Path(__file__).resolve().parent


class TimedClient(nbclient.NotebookClient):
    """A NotebookClient that records the wall time of every code cell."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cell_times: list[tuple[float, int, str]] = []

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        t0 = time.perf_counter()
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            if cell.cell_type == "code":
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                self.cell_times.append((time.perf_counter() - t0, cell_index, first[:70]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", type=Path, help="a MyST chapter, e.g. book/08_pca.md")
    parser.add_argument("--top", type=int, default=5, help="how many of the slowest cells to list")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (the build's)")
    parser.add_argument("--out", type=Path, default=None, help="executed notebook (default: a temp file)")
    args = parser.parse_args(argv)
    if args.chapter.suffix != ".md" or not args.chapter.is_file():
        parser.error(f"expected an existing MyST chapter book/NN_name.md, got {args.chapter}")

    nb = jupytext.read(args.chapter)
    client = TimedClient(nb, timeout=args.timeout, kernel_name="python3",
                         resources={"metadata": {"path": str(BOOK)}})
    t0 = time.perf_counter()
    status = 0
    try:
        client.execute()
    except CellExecutionError as err:
        print(err, file=sys.stderr)
        status = 1
    total = time.perf_counter() - t0
    out = args.out or Path(tempfile.gettempdir()) / f"{args.chapter.stem}.executed.ipynb"
    jupytext.write(nb, out, fmt="ipynb")
    for seconds, index, first in sorted(client.cell_times, reverse=True)[: args.top]:
        print(f"{seconds:8.1f} s  cell {index:3d}  {first}")
    print(f"{args.chapter}: {'FAILED' if status else 'ok'} in {total:.1f} s; executed copy {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
