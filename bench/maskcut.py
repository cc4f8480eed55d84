"""MaskCut per-image cost: dense vs iterative normalized-cut solvers.

The problem has the size of the paper's setting: a 480 px image at patch 8
is a 60 x 60 grid, N = 3600 patches, with 384-d features (ViT-S / CRATE-T
width).  Features are planted (``tests/planted.py``, a test fixture): three
objects on a background, so the right masks are known.  Every solver runs the
full Algorithm 4 (n = 3 cuts) in a fresh subprocess, so its peak resident
memory (``ru_maxrss``) can be measured and compared with the same process
doing everything except the cut (baseline).  ``tracemalloc`` adds the peak of
Python/numpy allocations (torch's CPU allocator is not traced by it).  On
CUDA the torch solver's ``torch.cuda.max_memory_allocated`` is reported.

    python bench/maskcut.py                    # CPU: dense, sparse, sparse-cold
    python bench/maskcut.py --solvers dense,sparse,torch --images 3
    python bench/maskcut.py --device cuda      # adds the torch solver on the GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from cratelib.eval.maskcut import maskcut
from cratelib.eval.metrics import iou

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the planted features
from planted import planted_patch_features  # noqa: E402

SOLVERS = {  # name -> (solver, warm start)
    "dense": ("dense", False),
    "sparse": ("sparse", True),
    "sparse-cold": ("sparse", False),
    "torch": ("torch", False),
}


def objects(grid: int) -> tuple[tuple[int, int, int, int], ...]:
    """Three planted rectangles scaled to the grid (fractions of a 60-patch side)."""
    f = grid / 60
    boxes = ((8, 28, 10, 34), (34, 54, 4, 22), (36, 56, 34, 54))
    return tuple(tuple(int(round(v * f)) for v in box) for box in boxes)


def worker(args: argparse.Namespace) -> dict:
    """Run one solver on ``args.images`` images in this process; return timings and masks."""
    grid = (args.grid, args.grid)
    solver, warm = SOLVERS[args.solver] if args.solver != "baseline" else ("", False)
    times, masks = [], []
    tracemalloc.start()
    for seed in range(args.images):
        feats, labels = planted_patch_features(grid, args.dim, objects(args.grid), args.sigma, seed)
        feats = feats.to(args.device)
        if args.solver == "baseline":
            continue
        if args.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = maskcut(feats, grid, num_objects=3, solver=solver, warm_start=warm)
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        masks.append(result.masks.tolist())
    _, traced_peak = tracemalloc.get_traced_memory()
    out = {
        "times_s": times,
        "traced_peak_mb": traced_peak / 2**20,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "masks": masks,
    }
    if args.device == "cuda" and args.solver != "baseline":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_in_subprocess(solver: str, args: argparse.Namespace, device: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--solver", solver, "--images", str(args.images),
           "--grid", str(args.grid), "--dim", str(args.dim), "--sigma", str(args.sigma),
           "--device", device]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def truth_masks(args: argparse.Namespace) -> list[list[np.ndarray]]:
    out = []
    for seed in range(args.images):
        _, labels = planted_patch_features((args.grid, args.grid), 8, objects(args.grid), 0.0, seed)
        out.append([labels.numpy() == i for i in (1, 2, 3)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2, help="planted images (seeds) per solver")
    parser.add_argument("--grid", type=int, default=60, help="patch grid side (480 px / patch 8 = 60)")
    parser.add_argument("--dim", type=int, default=384, help="feature width")
    parser.add_argument("--sigma", type=float, default=0.6, help="noise of the planted features")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--solvers", default="dense,sparse,sparse-cold",
                        help="CPU solvers to time (torch = full eigh: slow on CPU)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--solver", default="dense", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    runs = [(s, "cpu") for s in args.solvers.split(",")]
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("--device cuda: no CUDA device is available")
        runs.append(("torch", "cuda"))
    print(f"MaskCut, n = 3 cuts, grid {args.grid}x{args.grid} (N = {args.grid ** 2}), "
          f"features {args.dim}-d, {args.images} image(s), torch threads {torch.get_num_threads()}")
    base = run_in_subprocess("baseline", args, "cpu")
    truth = truth_masks(args)
    results = {}
    for solver, device in runs:
        results[(solver, device)] = r = run_in_subprocess(solver, args, device)
        r["rss_over_baseline_mb"] = r["maxrss_mb"] - base["maxrss_mb"]
        ious = [max(iou(np.array(m), t) for t in truth[j]) for j, ms in enumerate(r["masks"]) for m in ms]
        r["mean_best_iou_vs_planted"] = float(np.mean(ious))
    ref = results.get(("dense", "cpu"))
    header = f"{'solver':<12}{'device':<7}{'s/image':>9}{'peak RSS+':>11}{'traced':>9}{'cuda':>9}"
    print(header + f"{'masks = dense':>15}{'IoU planted':>13}")
    for (solver, device), r in results.items():
        agree = "-"
        if ref is not None:
            same = [np.array_equal(np.array(a), np.array(b)) for a, b in zip(r["masks"], ref["masks"])]
            agree = f"{sum(same)}/{len(same)}"
        cuda = f"{r['cuda_peak_mb']:.0f}MB" if "cuda_peak_mb" in r else "-"
        print(f"{solver:<12}{device:<7}{np.mean(r['times_s']):>9.2f}"
              f"{r['rss_over_baseline_mb']:>9.0f}MB{r['traced_peak_mb']:>7.0f}MB{cuda:>9}"
              f"{agree:>15}{r['mean_best_iou_vs_planted']:>13.3f}")
    if ref is not None:
        for (solver, device), r in results.items():
            if (solver, device) == ("dense", "cpu"):
                continue
            print(f"dense / {solver} ({device}): time x{np.mean(ref['times_s']) / np.mean(r['times_s']):.1f}, "
                  f"peak RSS x{ref['rss_over_baseline_mb'] / max(r['rss_over_baseline_mb'], 1):.1f}")


if __name__ == "__main__":
    main()
