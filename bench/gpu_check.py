"""The GPU check: one report of what the project's CUDA paths cost on one GPU, in under 8 minutes.

    python bench/gpu_check.py                         # on a machine with one GPU
    python bench/gpu_check.py --out bench/gpu-check-<date>-<gpu>.md   # keep the report
    python bench/gpu_check.py --reduced               # every path at toy sizes: seconds on a CPU

The report has four parts:

1. Training throughput of CRATE-T/8 and ViT-T/8 (registry names ``crate_tiny_patch8`` and
   ``vit_tiny_patch8``, so the sizes are whatever the registry says) at 224 px with AMP (bfloat16
   where the GPU has it, else float16 with a GradScaler), eager and with ``torch.compile``:
   images/s, the time of the first steps (compilation) and peak memory.
2. Projected wall times: the ``colab`` preset (its own training loop run on a subset of its data
   and scaled up, plus data generation and the per-epoch validation), and one ImageNet-21k epoch
   of the ``paper`` preset per GPU (the step throughput of its model at its settings; reading and
   decoding the JPEGs is not included and is often the real limit).
3. MaskCut per image at 480 px (the paper's setting): patch features, the three normalized cuts
   with the torch eigensolver on the GPU, and the dense CRF on the masks.
4. Every chapter executed at GPU scale (``CRATE_BOOK_SCALE=gpu``) as the book build runs it: its
   time and slowest cells. Cells tagged ``gpu-long`` (the hour-long ``colab`` training, the
   downloads of chapters 13 and 14) are skipped and listed; the VOC / COCO / official-weights cells
   of chapters 9 and 10 skip themselves when the data is absent. The chapters get the time the
   other parts leave of a 7.5-minute budget; those past it are reported as not timed.

``--reduced`` shrinks every size (and compiles with the ``eager`` backend) so that the test suite
runs the whole script on a CPU in seconds; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
LONG_TAG = "gpu-long"  # chapter cells the check skips (hour-long training, downloads)


@dataclass(frozen=True)
class Sizes:
    """Everything the check runs; :data:`FULL` on a GPU, :data:`REDUCED` in the test suite."""

    models: tuple[str, ...] = ("crate_tiny_patch8", "vit_tiny_patch8")
    model_args: tuple[tuple[str, int], ...] = ()  # overrides of every model's size (reduced: tiny)
    img: int = 224
    batch: int = 128
    warmup: int = 3  # steps before timing (compilation happens here)
    steps: int = 10
    compile_backend: str = "inductor"
    colab_images: int = 2048  # the colab preset trained on this many images for two epochs
    preset_overrides: tuple[str, ...] = ()  # applied to both presets (reduced: a tiny model)
    paper_batch: int | None = None  # None: the preset's own batch_size (halved on out-of-memory)
    maskcut_model: str = "crate_base_patch8"
    maskcut_img: int = 480
    maskcut_images: int = 3
    chapters: tuple[str, ...] = ()  # () = every book/NN_*.md
    budget_s: float = 450.0  # the chapters get what the other parts leave of it (7.5 min)


FULL = Sizes()
_TOY = (("dim", 32), ("num_heads", 2), ("depth", 1))
REDUCED = Sizes(model_args=_TOY, img=32, batch=2, warmup=1, steps=1, compile_backend="eager", colab_images=16,
                preset_overrides=("img_size=32", f"model_args={dict(_TOY)}"), paper_batch=2, maskcut_img=64,
                maskcut_images=1, budget_s=120.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _amp_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def step_throughput(model_name: str, img: int, batch: int, device: torch.device, warmup: int, steps: int,
                    amp: torch.dtype | None, compile_backend: str | None, num_classes: int = 1000,
                    optimizer: str = "adamw", model_args: dict | None = None) -> dict:
    """Training steps (forward, backward, optimizer) on random images: images/s; the batch is
    halved until it fits in GPU memory."""
    while True:
        try:
            return _measure_steps(model_name, img, batch, device, warmup, steps, amp, compile_backend,
                                  num_classes, optimizer, model_args or {})
        except torch.OutOfMemoryError:
            if batch == 1:
                raise
        batch //= 2  # out of the except block: the failed attempt's tensors are free
        torch.cuda.empty_cache()


def _measure_steps(model_name: str, img: int, batch: int, device: torch.device, warmup: int, steps: int,
                   amp: torch.dtype | None, compile_backend: str | None, num_classes: int, optimizer: str,
                   model_args: dict) -> dict:
    import timm.optim

    import cratelib

    torch._dynamo.reset()
    model = cratelib.create_model(model_name, img_size=img, num_classes=num_classes, check_inputs=False,
                                  **model_args).to(device).train()
    opt = timm.optim.create_optimizer_v2(model, opt=optimizer, lr=1e-4, weight_decay=0.05)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    forward = torch.compile(model, backend=compile_backend) if compile_backend else model
    x = torch.randn(batch, 3, img, img, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(forward(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    first = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"batch": batch, "images_per_s": batch * steps / seconds, "first_steps_s": first,
            "peak_gib": _peak_gib(device), "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def throughput_rows(sizes: Sizes, device: torch.device) -> list[dict]:
    amp = _amp_dtype(device)
    rows = []
    for name in sizes.models:
        for backend in (None, sizes.compile_backend):
            r = step_throughput(name, sizes.img, sizes.batch, device, sizes.warmup, sizes.steps, amp, backend,
                                model_args=dict(sizes.model_args))
            rows.append({"model": name, "compile": backend or "no", "amp": str(amp).removeprefix("torch."), **r})
    return rows


def project_colab(sizes: Sizes, device: torch.device, work: Path) -> dict:
    """The ``colab`` preset's wall time, from two epochs of its own loop on ``sizes.colab_images``
    images (the second epoch timed), its validation and its data generation, scaled linearly."""
    from cratelib.train.cost import training_compute
    from cratelib.train import data_source, evaluate, load_config, train

    preset = load_config("colab", list(sizes.preset_overrides))
    n_full = preset.data_args["num_images"]  # per split: train and val
    n = sizes.colab_images
    config = load_config("colab", [*sizes.preset_overrides, f"out_dir={work}", f"data_root={work / 'data'}",
                                   f"data_args.num_images={n}", "epochs=2", "warmup_epochs=1", "val_split=null",
                                   "snapshot_epochs=[]", f"device={device.type}"])
    t0 = time.perf_counter()
    data_source(config, config.train_split)  # generates and caches the training images
    val = data_source(config, "val")
    generate_s = time.perf_counter() - t0
    ends = []  # each epoch's end on this clock: the history's time_s is rounded to 0.01 s, too coarse here
    result = train(config, progress=False, on_epoch_end=lambda record: ends.append(time.perf_counter()))
    epoch_s = ends[1] - ends[0]  # the second epoch: no first-step warm-up
    t0 = time.perf_counter()
    evaluate(result.model, val, device)
    _sync(device)
    val_s = time.perf_counter() - t0
    scale = n_full / n
    total = generate_s * scale + preset.epochs * (epoch_s + val_s) * scale
    flops = training_compute(preset)["flops"]
    return {"model": preset.model, "img": preset.img_size, "images": n_full, "epochs": preset.epochs,
            "amp": preset.amp, "measured_on": n, "epoch_train_s": epoch_s * scale, "epoch_val_s": val_s * scale,
            "generate_s": generate_s * scale, "total_h": total / 3600, "train_tflops": flops / (preset.epochs * epoch_s * scale) / 1e12}


def project_paper(sizes: Sizes, device: torch.device) -> dict:
    """One ImageNet-21k epoch of the ``paper`` preset on one GPU, from its step throughput."""
    from cratelib.train.cost import IMAGENET21K_IMAGES
    from cratelib.train import load_config

    preset = load_config("paper", list(sizes.preset_overrides))
    amp = {"bf16": _amp_dtype(device), "fp16": torch.float16, "none": None}[preset.amp]
    r = step_throughput(preset.model, preset.img_size, sizes.paper_batch or preset.batch_size, device,
                        sizes.warmup, sizes.steps, amp, sizes.compile_backend if preset.compile else None,
                        num_classes=preset.num_classes, optimizer=preset.optimizer, model_args=preset.model_args)
    epoch_h = IMAGENET21K_IMAGES / r["images_per_s"] / 3600
    return {"model": preset.model, "img": preset.img_size, "optimizer": preset.optimizer,
            "amp": str(amp).removeprefix("torch."), "compile": preset.compile, **r, "epoch_h": epoch_h,
            "run_h_1gpu": epoch_h * preset.epochs, "run_h_8gpu": epoch_h * preset.epochs / 8, "epochs": preset.epochs}


def time_maskcut(sizes: Sizes, device: torch.device) -> dict:
    """Seconds per image of MaskCut (n = 3 cuts) at ``sizes.maskcut_img`` px: features, cuts, CRF."""
    import numpy as np

    import cratelib
    from cratelib.data import load_sample
    from cratelib.eval.extract import layer_features
    from cratelib.eval.maskcut_eval import maskcut_ap
    from cratelib.eval.sources import Sample

    solver = "torch" if device.type == "cuda" else "dense"
    images = list(load_sample("shapes224").images[: sizes.maskcut_images])
    model = cratelib.create_model(sizes.maskcut_model, img_size=sizes.maskcut_img, **dict(sizes.model_args)).eval()
    layer_features(model, images[:1], [-1], sizes.maskcut_img, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    feats, grid = layer_features(model, images, [-1], sizes.maskcut_img, device=device)
    _sync(device)
    features_s = (time.perf_counter() - t0) / len(images)
    samples = [Sample(np.asarray(image), i + 1, f"sample{i}") for i, image in enumerate(images)]
    ap = maskcut_ap(feats[0], grid, samples, None, crf=True, crf_size=sizes.maskcut_img, solver=solver, device=device)
    masks = sum(int(m.any(axis=(1, 2)).sum()) for m in ap.patch_masks)
    return {"model": sizes.maskcut_model, "img": sizes.maskcut_img, "grid": grid, "solver": f"{solver} ({device.type})",
            "images": len(images), "features_s": features_s, "cuts_s": ap.seconds["maskcut"] / len(images),
            "crf_s": ap.seconds["crf"] / len(images), "masks": masks}


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def time_chapters(sizes: Sizes, deadline: float, log: Callable[[str], None] = print) -> list[dict]:
    """Execute each chapter at GPU scale as the book build does; skip the cells tagged ``gpu-long``."""
    import jupytext
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    sys.path.insert(0, str(ROOT / "book"))
    from execute_chapter import TimedClient  # the book's own timed executor

    class DeadlineClient(TimedClient):
        """Each cell may run only until the check's deadline."""

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            self.timeout = int(deadline - time.perf_counter())
            if self.timeout < 1:
                raise CellTimeoutError("the check's time budget is spent")
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    paths = [Path(c) for c in sizes.chapters] or sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
    rows = []
    with _environ(CRATE_BOOK_SCALE="gpu", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))):
        for path in paths:
            left = deadline - time.perf_counter()
            if left < 10:
                rows.append({"chapter": path.stem, "status": "not timed: time budget spent"})
                continue
            nb = jupytext.read(path)
            skipped = []
            for cell in nb.cells:
                if cell.cell_type == "code" and LONG_TAG in cell.metadata.get("tags", []):
                    first = next((line for line in cell.source.splitlines() if line.strip()), "")
                    skipped.append(first[:60])
                    cell.source = f"print('skipped by bench/gpu_check.py (tag {LONG_TAG})')"
            client = DeadlineClient(nb, timeout=int(left), kernel_name="python3",
                                 resources={"metadata": {"path": str(path.parent)}})
            t0 = time.perf_counter()
            try:
                client.execute()
                status = "ok"
            except CellTimeoutError:
                status = "stopped: time budget spent"
            except CellExecutionError as err:
                status = f"FAILED: {str(err).strip().splitlines()[-1][:100]}"
            seconds = time.perf_counter() - t0
            slow = sorted(client.cell_times, reverse=True)[:3]
            rows.append({"chapter": path.stem, "status": status, "seconds": seconds, "skipped": skipped,
                         "slowest": [f"{s:.1f} s cell {i}: `{src}`" for s, i, src in slow]})
            log(f"  {path.stem}: {status} in {seconds:.0f} s")
    return rows


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(device: torch.device, sizes: Sizes, reduced: bool, throughput: list[dict], colab: dict, paper: dict,
           mc: dict, chapters: list[dict], total_s: float) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (no GPU)"
    lines = [f"# GPU check, {datetime.date.today()}: {name}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda or '-'}, python {sys.version.split()[0]}; "
             f"{'REDUCED mode: toy sizes, the numbers mean nothing' if reduced else 'full mode'}; "
             f"the check took {total_s:.0f} s.", "",
             f"## 1. Training throughput, {sizes.img} px, AMP (forward + backward + AdamW, random images)"
             + (f", sizes overridden by {dict(sizes.model_args)}" if sizes.model_args else ""), "",
             "| model | compile | amp | batch | images/s | first steps (s) | peak GiB | params (M) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in throughput:
        lines.append(f"| {r['model']} | {r['compile']} | {r['amp']} | {r['batch']} | {r['images_per_s']:.1f} | "
                     f"{r['first_steps_s']:.1f} | {_fmt(r['peak_gib'], '.2f')} | {r['params_m']:.1f} |")
    lines += ["", "## 2. Projected wall times", "",
              f"* `colab` preset ({colab['model']}, {colab['img']} px, {colab['images']:,} images, {colab['epochs']} "
              f"epochs, {colab['amp']}): **{colab['total_h']:.2f} h** = data generation {colab['generate_s'] / 60:.1f} min "
              f"+ {colab['epochs']} x ({colab['epoch_train_s']:.0f} s training + {colab['epoch_val_s']:.0f} s validation); "
              f"measured on {colab['measured_on']:,} images for two epochs, scaled linearly; "
              f"{colab['train_tflops']:.3g} TFLOP/s sustained by the estimate of `training_compute`.",
              f"* `paper` preset ({paper['model']}, {paper['img']} px, {paper['optimizer']}, {paper['amp']}, compile "
              f"{paper['compile']}), batch {paper['batch']} per GPU: {paper['images_per_s']:.0f} images/s, "
              f"peak {_fmt(paper['peak_gib'], '.1f')} GiB: **{paper['epoch_h']:.1f} h per ImageNet-21k epoch per GPU**; "
              f"{paper['epochs']} epochs: {paper['run_h_1gpu'] / 24:.1f} days on 1 GPU, {paper['run_h_8gpu'] / 24:.1f} days "
              "on 8 (ideal scaling; JPEG reading and decoding not included).", "",
              f"## 3. MaskCut per image ({mc['model']}, {mc['img']} px, grid {mc['grid'][0]}x{mc['grid'][1]}, "
              f"n = 3 cuts, solver {mc['solver']}, {mc['images']} image(s))", "",
              f"features {mc['features_s']:.2f} s + cuts {mc['cuts_s']:.2f} s = "
              f"**{mc['features_s'] + mc['cuts_s']:.2f} s without CRF**, + CRF {mc['crf_s']:.2f} s "
              f"({mc['masks']} mask{'' if mc['masks'] == 1 else 's'}) = **{mc['features_s'] + mc['cuts_s'] + mc['crf_s']:.2f} s with CRF**.", "",
              "## 4. Chapters at GPU scale (CRATE_BOOK_SCALE=gpu)", "",
              "| chapter | status | seconds | slowest cells | skipped (gpu-long) |", "|---|---|---|---|---|"]
    for c in chapters:
        cells = [f"{'; '.join(c.get('slowest', []))}", f"{'; '.join(f'`{x}`' for x in c.get('skipped', [])) or '-'}"]
        cells = [x.replace("|", "\\|") for x in cells]
        lines.append(f"| {c['chapter']} | {c['status']} | {_fmt(c.get('seconds'), '.0f')} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def run_check(sizes: Sizes, device: torch.device, reduced: bool, log: Callable[[str], None] = print) -> str:
    start = time.perf_counter()
    log(f"GPU check on {device}: throughput ...")
    throughput = throughput_rows(sizes, device)
    log("projections ...")
    with tempfile.TemporaryDirectory() as work:
        colab = project_colab(sizes, device, Path(work))
    paper = project_paper(sizes, device)
    log("MaskCut ...")
    mc = time_maskcut(sizes, device)
    log("chapters ...")
    chapters = time_chapters(sizes, start + sizes.budget_s, log)
    return report(device, sizes, reduced, throughput, colab, paper, mc, chapters, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="toy sizes on any device (the test suite's mode)")
    parser.add_argument("--device", default=None, help="default: cuda; --reduced: cpu")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter files (default: every book/NN_*.md)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole check; chapters past it are not timed (default 450)")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.reduced else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is available; run with --reduced (toy sizes) on a CPU")
    sizes = REDUCED if args.reduced else FULL
    if args.chapters is not None:
        sizes = replace(sizes, chapters=tuple(args.chapters))
    if args.budget is not None:
        sizes = replace(sizes, budget_s=args.budget)
    text = run_check(sizes, device, args.reduced, log=lambda s: print(s, file=sys.stderr))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
