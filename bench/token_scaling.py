"""Attention cost against the number of tokens: TSSA (linear) vs MSSA through SDPA vs explicit softmax.

One attention layer at a fixed width (default 384 wide, 6 heads: CRATE-T), inputs ``(B, N, d)``
with N from 64 to 4,096 tokens; each step is a forward and a backward pass (``mean(out^2)``).

    python bench/token_scaling.py                          # 64 .. 4,096 tokens, CPU (CUDA if there)
    python bench/token_scaling.py --quick                  # 64 .. 1,024 tokens, 2 repeats
    python bench/token_scaling.py --out data/bench/token_scaling.json

Measured per operator and N: the time of a step, the fastest of ``--repeats`` with the operators
taking turns step by step (load from other processes falls on all of them alike); the activation
memory the step keeps for backward (bytes of the distinct tensors autograd saves, an exact count);
and the peak memory of one step above the memory in use before it, in a subprocess per operator
(CUDA: ``max_memory_allocated``; CPU: the rise of the resident size, from the kernel's high-water
mark reset before each step, Linux only). A log-log least-squares fit over N >= ``--fit-from`` gives each
curve's exponent (time ~ N^a); "overtakes" is the N from which TSSA is below the other operator at
every larger N of the sweep, interpolated on the log-log line between the two grid points around
it (None if it never is). An operator whose step takes longer than ``--max-step-s`` stops there.
``--out`` writes everything as JSON, atomically.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's cratelib

OPERATORS = {"tssa": "TSSA (ToST)", "mssa_sdpa": "MSSA, SDPA", "mssa_explicit": "MSSA, explicit softmax"}
FULL_TOKENS = (64, 128, 256, 512, 1024, 2048, 4096)
QUICK_TOKENS = (64, 128, 256, 512, 1024)


def _layer(op: str, dim: int, heads: int):
    from cratelib.blocks import MSSA
    from cratelib.tssa import TSSA

    if op == "tssa":
        return TSSA(dim, heads)
    return MSSA(dim, heads, fused_attn=op == "mssa_sdpa")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (``VmRSS``: resident now, ``VmHWM``: its peak)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _reset_peak_rss() -> int:
    """Reset the kernel's resident-size high-water mark to the current size; return that size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def _saved_bytes(step) -> int:
    """Bytes of the distinct storages autograd saves for backward during ``step()``."""
    import torch

    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values())


def _step(layer, x):
    def step() -> None:
        layer(x).square().mean().backward()

    return step


def time_sweep(tokens: list[int], dim: int, heads: int, batch: int, repeats: int, device: str,
               max_step_s: float) -> dict[str, list[dict]]:
    """Time every operator at every N (ascending), interleaved: at each N the operators take turns
    step by step, so that load from other processes falls on all of them alike; the time of a
    point is the fastest of its ``repeats`` steps. Also counts the bytes saved for backward."""
    import torch

    torch.manual_seed(0)
    layers = {op: _layer(op, dim, heads).to(device) for op in OPERATORS}
    cuda = device.startswith("cuda")
    rows: dict[str, list[dict]] = {op: [] for op in OPERATORS}
    active = list(OPERATORS)
    for n in tokens:
        steps = {op: _step(layers[op], torch.randn(batch, n, dim, device=device, requires_grad=True))
                 for op in active}
        saved = {op: _saved_bytes(steps[op]) for op in active}  # also the warm-up steps
        times: dict[str, list[float]] = {op: [] for op in active}
        for _ in range(repeats):
            for op in active:
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                steps[op]()
                if cuda:
                    torch.cuda.synchronize()
                times[op].append(time.perf_counter() - t0)
        for op in active:
            rows[op].append({"tokens": n, "time_s": min(times[op]), "saved_mib": saved[op] / 2**20})
        active = [op for op in active if min(times[op]) <= max_step_s]  # the next N takes 2-4x longer
    return rows


def peak_sweep(op: str, tokens: list[int], dim: int, heads: int, batch: int, device: str) -> list[float]:
    """Peak memory (MiB) of one step of ``op`` at every N, run in this process alone: on CUDA
    ``max_memory_allocated``; on the CPU how far the resident size rises above its size before
    the step (the kernel's high-water mark, reset before each step; run with glibc's
    ``MALLOC_MMAP_THRESHOLD_`` fixed so that freed blocks go back to the system)."""
    import torch

    torch.manual_seed(0)
    layer = _layer(op, dim, heads).to(device)
    cuda = device.startswith("cuda")
    _step(layer, torch.randn(batch, tokens[0], dim, device=device, requires_grad=True))()  # first-call set-up
    peaks = []
    for n in tokens:
        x = torch.randn(batch, n, dim, device=device, requires_grad=True)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            base = _reset_peak_rss()
        _step(layer, x)()
        peak = torch.cuda.max_memory_allocated() if cuda else _status_bytes("VmHWM")
        peaks.append(max(0, peak - base) / 2**20)
        del x
    return peaks


def fit_exponent(tokens: list[int], values: list[float], fit_from: int) -> float | None:
    """Least-squares slope of log(value) against log(N) over the points with N >= fit_from."""
    pts = [(math.log(n), math.log(v)) for n, v in zip(tokens, values) if n >= fit_from and v > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def overtakes(tokens: list[int], ours: list[float], theirs: list[float]) -> float | None:
    """The N from which ``ours`` stays below ``theirs`` (log-log interpolated), None if never."""
    n = min(len(ours), len(theirs))
    faster = [ours[i] < theirs[i] for i in range(n)]
    if not n or not faster[-1]:
        return None
    i = n - 1
    while i > 0 and faster[i - 1]:
        i -= 1
    if i == 0:
        return float(tokens[0])
    # log-ratio r = log(ours / theirs) goes from >= 0 at i-1 to < 0 at i: where it crosses 0
    r0, r1 = math.log(ours[i - 1] / theirs[i - 1]), math.log(ours[i] / theirs[i])
    t = r0 / (r0 - r1)
    return math.exp(math.log(tokens[i - 1]) + t * (math.log(tokens[i]) - math.log(tokens[i - 1])))


def summarise(results: dict[str, list[dict]], fit_from: int) -> dict:
    """Exponents of every curve and where TSSA overtakes the two others (time and memory)."""
    out: dict = {"exponents": {}, "tssa_overtakes": {}}
    for op, rows in results.items():
        ns = [r["tokens"] for r in rows]
        out["exponents"][op] = {key: fit_exponent(ns, [r[key] for r in rows], fit_from)
                                for key in ("time_s", "saved_mib", "peak_mib")}
    tssa = results["tssa"]
    for op in ("mssa_sdpa", "mssa_explicit"):
        ns = [r["tokens"] for r in tssa]
        out["tssa_overtakes"][op] = {key: overtakes(ns, [r[key] for r in tssa], [r[key] for r in results[op]])
                                     for key in ("time_s", "saved_mib")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"tokens {QUICK_TOKENS}, 2 repeats")
    ap.add_argument("--tokens", type=int, nargs="+", help=f"token counts (default {FULL_TOKENS})")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=None, help="timed steps per point (default 3, quick 2)")
    ap.add_argument("--fit-from", type=int, default=512, help="smallest N of the log-log fits")
    ap.add_argument("--max-step-s", type=float, default=30.0, help="stop an operator's sweep after a slower step")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--out", default=None, help="write the results to this JSON file (atomically)")
    ap.add_argument("--peak-worker", choices=list(OPERATORS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tokens = sorted(args.tokens or (QUICK_TOKENS if args.quick else FULL_TOKENS))
    repeats = args.repeats or (2 if args.quick else 3)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.peak_worker:
        print(json.dumps(peak_sweep(args.peak_worker, tokens, args.dim, args.heads, args.batch, device)))
        return 0
    load = os.getloadavg()[0]  # other processes on the machine: why the steps are interleaved
    started = time.perf_counter()
    results = time_sweep(tokens, args.dim, args.heads, args.batch, repeats, device, args.max_step_s)
    for op, rows in results.items():
        cmd = [sys.executable, __file__, "--peak-worker", op, "--tokens", *(str(r["tokens"]) for r in rows),
               "--dim", str(args.dim), "--heads", str(args.heads), "--batch", str(args.batch), "--device", device]
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # large blocks are returned when freed
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if res.returncode:
            raise SystemExit(f"{op} failed:\n{res.stderr}")
        for row, peak in zip(rows, json.loads(res.stdout.strip().splitlines()[-1])):
            row["peak_mib"] = peak
        print(f"{OPERATORS[op]:<24}" + "  ".join(f"N={r['tokens']}: {r['time_s'] * 1e3:.1f} ms, "
                                                  f"{r['saved_mib']:.1f} MiB saved" for r in rows), flush=True)
    summary = summarise(results, args.fit_from)
    print(f"\nlog-log exponents over N >= {args.fit_from} (time ~ N^a):")
    for op, ex in summary["exponents"].items():
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"  {OPERATORS[op]:<24} time {fmt(ex['time_s'])}   saved memory {fmt(ex['saved_mib'])}   "
              f"peak memory {fmt(ex['peak_mib'])}")
    for op, where in summary["tssa_overtakes"].items():
        t = where["time_s"]
        print(f"TSSA is faster than {OPERATORS[op]} from N ~ {t:.0f} on" if t else
              f"TSSA is not faster than {OPERATORS[op]} at the largest N measured")
    record = {
        "benchmark": "bench/token_scaling.py", "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else _cpu_name(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "load_average_at_start": load, "dim": args.dim, "heads": args.heads,
        "batch": args.batch, "repeats": repeats, "tokens": tokens, "fit_from": args.fit_from,
        "operators": OPERATORS, "results": results, **summary,
        "wall_s": time.perf_counter() - started,
    }
    if args.out:
        from cratelib.io import atomic_write_json

        print(f"wrote {atomic_write_json(args.out, record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
