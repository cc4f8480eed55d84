"""What every figure module of the book shares: the figure style, a decorator that applies it,
mask outlines, and a context manager for the many tiny computations of the evaluations.

* :data:`STYLE` / :data:`COLORS` and :func:`styled` - figures sized for the book's text column,
  drawn without changing the caller's matplotlib settings;
* :func:`contour` - the outline of a boolean mask on an axis;
* :func:`no_ticks`, :func:`finish` - image panels without ticks; the title and layout of a figure;
* :func:`single_thread` - run small torch (and BLAS) work on one thread.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["STYLE", "COLORS", "styled", "contour", "no_ticks", "finish", "single_thread"]

# Figures are sized for the book's text column (about 9-10 inches wide at 110 dpi).
STYLE = {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7.5, "figure.dpi": 110}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

F = TypeVar("F", bound=Callable)


def styled(plot: F) -> F:
    """Draw ``plot`` under :data:`STYLE` without changing the caller's matplotlib settings."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def contour(ax, mask: np.ndarray, color: str, lw: float = 1.0) -> None:
    """Outline the ``(H, W)`` boolean ``mask`` on ``ax`` (nothing if it is empty or full)."""
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=color, linewidths=lw)


def no_ticks(axes) -> None:
    """Remove the ticks of every axis in ``axes`` (one axis, a list or an array of them)."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def finish(fig, axes, title: str = "", **tight_layout):
    """The common end of a panel figure: no ticks on ``axes``, ``title`` as the figure's title
    (if any), then ``fig.tight_layout(**tight_layout)``. Returns ``fig``."""
    no_ticks(axes)
    if title:
        fig.suptitle(title)
    fig.tight_layout(**tight_layout)
    return fig


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the enclosed torch CPU work on one intra-op thread, then restore the setting.

    The book's evaluations solve many tiny problems (a 64 x 64 affinity per cut at 64 px, PCA of a
    few hundred patches); splitting each over threads only adds synchronisation, and on a busy
    machine a thread barrier can cost a thousand times the work (measured: 70 ms instead of
    0.07 ms per affinity with two threads under load).
    """
    before = torch.get_num_threads()
    with contextlib.ExitStack() as stack:
        try:  # numpy / scipy's BLAS and LAPACK too, where threadpoolctl is installed (optional)
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(1))
        except ImportError:
            pass
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
