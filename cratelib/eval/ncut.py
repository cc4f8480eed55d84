"""Normalized cut (Shi & Malik) on MaskCut's patch affinity graph.

Affinity (App. B.4 and the official MaskCut ``get_affinity_matrix``): patch
features ``(N, d)`` are L2-normalised, ``C = F F^T`` is their cosine
similarity, and

    W_ij = 1 (or C_ij if not ``binary``)  if C_ij > tau,   else eps,

with tau = 0.15 (the CRATE paper; official MaskCut's default is 0.2) and
eps = 1e-5.  The cut is the second-smallest generalised eigenvector of
``(D - W) x = lambda D x``, ``D = diag(W 1)``.

Three solvers give the same vector (up to sign and scale):

* ``"dense"``: ``scipy.linalg.eigh(D - W, D)`` on the full ``N x N`` matrix,
  exactly as the official code (``O(N^3)`` time, several ``N^2`` buffers).
* ``"sparse"``: ``W = S + eps (1 1^T - G)`` where ``S`` keeps only the entries
  above tau (stored CSR, built in row chunks: no dense float ``N x N`` matrix)
  and ``G`` is its pattern, so the eps floor is exact, not dropped.  ARPACK Lanczos
  (``scipy.sparse.linalg.eigsh``) finds the largest eigenvector of the
  normalised affinity ``D^{-1/2} W D^{-1/2} = I - L_sym`` after deflating its
  known top eigenvector ``D^{1/2} 1``; a previous eigenvector warm-starts it.
* ``"torch"``: ``torch.linalg.eigh`` of the normalised affinity on the
  features' device (GPU when they are on CUDA), float64.

``y`` solves ``L_sym y = lambda y`` iff ``x = D^{-1/2} y`` solves the
generalised problem, so all three return ``x``.  ``"auto"`` picks
``"torch"`` for CUDA features and ``"sparse"`` otherwise; :func:`solver_for`
picks the fastest for a grid size, and :func:`time_solvers` measures them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn.functional as F

from cratelib.eval.threads import single_thread

Solver = Literal["auto", "dense", "sparse", "torch"]
SOLVERS = ("auto", "dense", "sparse", "torch")


def _as_features(features: torch.Tensor | np.ndarray) -> torch.Tensor:
    feats = torch.as_tensor(features)
    if feats.dim() != 2:
        raise ValueError(f"expected patch features (N, d), got shape {tuple(feats.shape)}")
    return F.normalize(feats.double(), dim=1)  # zero rows stay zero


def _weights(cos: torch.Tensor, tau: float, eps: float, binary: bool) -> torch.Tensor:
    above = cos > tau
    return torch.where(above, torch.ones_like(cos) if binary else cos, torch.full_like(cos, eps))


def dense_affinity(
    features: torch.Tensor | np.ndarray, tau: float = 0.15, eps: float = 1e-5, binary: bool = True
) -> torch.Tensor:
    """Dense affinity ``W`` ``(N, N)`` float64 on the features' device (see module doc)."""
    fn = _as_features(features)
    return _weights(fn @ fn.T, tau, eps, binary)


@dataclass
class CutGraph:
    """The first cut's graph, for display: ``cos`` ``(N, N)`` cosine similarities of the patch
    features, ``affinity`` ``(N, N)`` the thresholded ``W``, ``x`` ``(N,)`` the second generalised
    eigenvector (the relaxed cut), ``eigenvalue`` its ``lambda_2`` and ``positive`` ``(N,)`` the
    bipartition ``x > mean(x)``."""

    cos: np.ndarray
    affinity: np.ndarray
    x: np.ndarray
    eigenvalue: float
    positive: np.ndarray


def cut_graph(features: torch.Tensor | np.ndarray, tau: float = 0.15, eps: float = 1e-5) -> CutGraph:
    """:class:`CutGraph` of ``(N, D)`` patch features (dense solver)."""
    fn = _as_features(features)
    x, lam = second_eigenvector(features, tau, eps, solver="dense")
    return CutGraph((fn @ fn.T).cpu().numpy(), dense_affinity(features, tau, eps).cpu().numpy(), x, lam, x > x.mean())


def sparse_affinity(
    features: torch.Tensor | np.ndarray,
    tau: float = 0.15,
    binary: bool = True,
    chunk: int = 512,
) -> scipy.sparse.csr_matrix:
    """The entries of the affinity above ``tau``: CSR float64 ``(N, N)`` matrix ``S``.

    ``S_ij = w_ij`` (1 if ``binary``, else the cosine) where the cosine exceeds
    ``tau``; every other entry of ``W`` is eps, so ``W = S + eps (1 1^T - G)``
    with ``G`` the pattern (ones where ``S`` has an entry).  Cosines are
    computed ``chunk`` rows at a time into an ``N x N`` bool pattern (1 byte
    per entry), then the CSR arrays are filled in place: peak memory is the
    pattern, the CSR arrays (12 bytes per entry) and one chunk.
    """
    fn = _as_features(features).cpu()
    n = fn.shape[0]
    starts = range(0, n, chunk)
    pattern = np.empty((n, n), dtype=bool)
    for start in starts:
        pattern[start : start + chunk] = (fn[start : start + chunk] @ fn.T > tau).numpy()
    index_dtype = np.int32 if n * n < 2**31 else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(pattern.sum(1), out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=index_dtype)
    data = np.ones(int(indptr[-1]))
    for start in starts:
        stop = min(start + chunk, n)
        r, c = np.nonzero(pattern[start:stop])
        span = slice(int(indptr[start]), int(indptr[stop]))
        indices[span] = c
        if not binary:
            cos = (fn[start:stop] @ fn.T).numpy()
            data[span] = cos[r, c]
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(n, n))


def _dense_solve(features, tau, eps, binary) -> tuple[np.ndarray, float]:
    w = dense_affinity(features, tau, eps, binary).cpu().numpy()
    d = w.sum(1)
    vals, vecs = scipy.linalg.eigh(np.diag(d) - w, np.diag(d), subset_by_index=[1, 1])
    return vecs[:, 0], float(vals[0])


def _torch_solve(features, tau, eps, binary) -> tuple[np.ndarray, float]:
    w = dense_affinity(features, tau, eps, binary)
    d_isqrt = w.sum(1).rsqrt()
    m = d_isqrt[:, None] * w * d_isqrt[None, :]  # D^-1/2 W D^-1/2, eigenvalues in [-1, 1]
    mu, y = torch.linalg.eigh(m)  # ascending: mu[-1] = 1 is the trivial one
    x = d_isqrt * y[:, -2]
    return x.cpu().numpy(), float(1.0 - mu[-2])


def _sparse_solve(features, tau, eps, binary, x0) -> tuple[np.ndarray, float]:
    s = sparse_affinity(features, tau, binary)
    if binary:  # S = G: W z = (1 - eps) S z + eps sum(z)
        s.data *= 1.0 - eps  # in place: no second copy of the CSR arrays

        def above(z: np.ndarray) -> np.ndarray:
            return s @ z

    else:  # W z = S z - eps G z + eps sum(z)
        g = scipy.sparse.csr_matrix((np.ones_like(s.data), s.indices, s.indptr), s.shape)

        def above(z: np.ndarray) -> np.ndarray:
            return s @ z - eps * (g @ z)

    n = s.shape[0]
    d = above(np.ones(n)) + eps * n
    d_isqrt = 1.0 / np.sqrt(d)
    top = np.sqrt(d) / np.linalg.norm(np.sqrt(d))  # eigenvector of eigenvalue 1

    def matvec(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64).ravel()
        z = d_isqrt * y
        my = d_isqrt * (above(z) + eps * z.sum())  # W z
        return my - 3.0 * top * (top @ y)  # move the trivial eigenvalue 1 to -2

    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = None
    if x0 is not None:
        v0 = np.sqrt(d) * np.asarray(x0, dtype=np.float64).ravel()
        v0 -= top * (top @ v0)
        if not np.isfinite(v0).all() or np.linalg.norm(v0) < 1e-12:
            v0 = None
    mu, y = scipy.sparse.linalg.eigsh(op, k=1, which="LA", v0=v0, tol=1e-10)
    return d_isqrt * y[:, 0], float(1.0 - mu[0])


def second_eigenvector(
    features: torch.Tensor | np.ndarray,
    tau: float = 0.15,
    eps: float = 1e-5,
    binary: bool = True,
    solver: Solver = "auto",
    x0: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Second-smallest generalised eigenvector of ``(D - W) x = lambda D x``.

    Args:
        features: ``(N, d)`` patch features (rows of zeros are "masked out":
            their affinity is eps to every patch, as in MaskCut).
        tau: cosine threshold of the graph (paper: 0.15).
        eps: weight given to the entries at or below tau (MaskCut: 1e-5; the
            paper's "set to 0" would leave masked-out patches with degree 0).
        binary: ``True`` uses 1 above tau (official MaskCut); ``False`` keeps
            the cosine value.
        solver: ``"auto"``, ``"dense"``, ``"sparse"`` or ``"torch"`` (module doc).
        x0: ``(N,)`` warm start for ``"sparse"`` (e.g. the previous cut's
            vector); ignored by the direct solvers.

    Returns:
        ``(x, lambda)``: the eigenvector ``(N,)`` float64 numpy (sign
        arbitrary) and its eigenvalue.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it keeps every degree positive), got {eps}")
    if solver == "auto":
        solver = "torch" if torch.is_tensor(features) and features.is_cuda else "sparse"
    if solver == "dense":
        return _dense_solve(features, tau, eps, binary)
    if solver == "torch":
        return _torch_solve(features, tau, eps, binary)
    if solver == "sparse":
        return _sparse_solve(features, tau, eps, binary, x0)
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")


def solver_for(grid: tuple[int, int], device: str | torch.device = "cpu", dense_up_to: int = 100) -> Solver:
    """The fastest solver for a grid: ``"torch"`` (``eigh``) on a CUDA device, else the official
    dense ``"dense"`` for at most ``dense_up_to`` patches (LAPACK on a 64 x 64 matrix takes well
    under a millisecond, ARPACK's set-up alone far more) and ``"sparse"`` above it. All three
    return the same cut."""
    if torch.device(device).type == "cuda":
        return "torch"
    return "dense" if grid[0] * grid[1] <= dense_up_to else "sparse"


def time_solvers(features: torch.Tensor, solvers: Sequence[str] = ("dense", "sparse"), repeats: int = 5,
                 tau: float = 0.15) -> dict[str, float]:
    """Median wall time (seconds) of one normalized-cut solve of ``(N, D)`` features per solver on
    one thread, after checking that the solvers agree on the cut (the same bipartition up to
    sign on at least 95 % of the patches)."""
    times, cuts = {}, {}
    for solver in solvers:
        runs = []
        with single_thread():
            for _ in range(repeats):
                t0 = time.perf_counter()
                x, _ = second_eigenvector(features, tau, solver=solver)
                runs.append(time.perf_counter() - t0)
        times[solver] = float(np.median(runs))
        cuts[solver] = x > x.mean()
    first = next(iter(cuts.values()))
    for solver, cut in cuts.items():
        agree = max((cut == first).mean(), (cut != first).mean())
        if agree < 0.95:
            raise RuntimeError(f"solver {solver} disagrees with {solvers[0]} on {1 - agree:.0%} of the patches")
    return times
