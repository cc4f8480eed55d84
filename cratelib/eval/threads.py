"""One intra-op thread for the many tiny computations of the evaluations.

The book's evaluations solve many tiny problems (a 64 x 64 affinity per cut at 64 px, PCA of a
few hundred patches); splitting each over threads only adds synchronisation, and on a busy
machine a thread barrier can cost a thousand times the work (measured: 70 ms instead of
0.07 ms per affinity with two threads under load).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["single_thread"]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the enclosed torch CPU work on one intra-op thread, then restore the setting (numpy /
    scipy's BLAS and LAPACK too, where ``threadpoolctl`` is installed)."""
    before = torch.get_num_threads()
    with contextlib.ExitStack() as stack:
        try:  # optional dependency
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(1))
        except ImportError:
            pass
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
