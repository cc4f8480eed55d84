"""``train(config)``: the one training code path behind ``python -m cratelib train``.

Supervised classification with the cross-entropy of eq. (9), or (``objective: mae``) masked
autoencoding, which reads no label (:mod:`cratelib.train.objectives`). Per run directory
(``out_dir/name``): ``config.yaml``, ``metrics.jsonl`` (loss lines every ``log_every`` steps and one
line per epoch), ``last.pt`` (written atomically after every epoch: model, optimizer, scaler,
epoch, history) and ``epoch_<e>.pt`` snapshots. ``resume=True`` continues exactly where the last
epoch ended: data order, augmentation and dropout are drawn from generators seeded by
``(seed, epoch)``, so an interrupted and resumed run ends with the same weights as one that was not,
also when it was killed mid-epoch or mid-write (the log keeps only the checkpointed epochs).
``snapshot_at_val_acc=a`` also writes ``val_acc_<a>.pt`` after the first epoch whose validation
accuracy reaches ``a`` (the equal-accuracy comparison of the emergence study).

Launched by ``torchrun --nproc_per_node=W -m cratelib train ...``, the same function trains with
DistributedDataParallel: each process takes its share of every global batch
(:mod:`cratelib.train.distributed`), metrics are summed over the processes, and rank 0 alone
writes the run directory.
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from cratelib.checkpoint import save_checkpoint
from cratelib.data import (IMAGENET_MEAN, IMAGENET_STD, SyntheticConfig, build_dataset, eval_transform,
                           train_transform)
from cratelib.data.factory import synthetic_config
from cratelib.data.synthetic_store import epoch_images
from cratelib.io import atomic_write
from cratelib.models import CRATE, CRATEMAE
from cratelib.train.config import TrainConfig
from cratelib.train.distributed import (Launch, Shard, check_batch, check_tail, detect_launch,
                                        init_process_group, sum_over_processes)
from cratelib.train.objectives import build_model, evaluate, held_out

__all__ = ["train", "evaluate", "run_file", "cosine_lr", "TrainResult", "TrainingDiverged", "build_model", "data_source"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    model: CRATE | CRATEMAE
    run_dir: Path
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    train_time_s: float = 0.0


def cosine_lr(step: int, total: int, warmup: int, base: float, minimum: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to ``minimum``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * min(t, 1.0)))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class _TensorSource:
    """An in-memory data set (the synthetic one) as uint8 tensors: batches are cut, flipped and
    normalised on the device, with no per-image Python work. ``batches`` yields this process's
    :class:`Shard` of each global batch of ``batch_size`` images."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shard: Shard = Shard()) -> None:
        self.images, self.labels = images, labels  # (n, 3, H, W) uint8, (n,) int64
        self.shard = shard
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        flips = torch.rand(n, generator=generator) < 0.5 if augment else None
        for part in self.shard.positions(n, batch_size):
            idx = order[part]
            x = self.images[idx].float().div_(255)
            if flips is not None:
                f = flips[part]
                x[f] = x[f].flip(-1)
            x = (x - self.mean) / self.std
            yield x.to(device, non_blocking=True), self.labels[idx].to(device, non_blocking=True)


class _FreshSource(_TensorSource):
    """Synthetic training images drawn anew for every epoch (``config.fresh_data``): image ``i`` of
    epoch ``e`` comes from ``(seed, e, i)`` (:func:`cratelib.data.synthetic.generate`), so a resumed
    run sees exactly the images the uninterrupted one saw. Call :meth:`set_epoch` before
    :meth:`batches`. Each epoch is cached on disk (:func:`~cratelib.data.synthetic_store.epoch_images`),
    so runs that share the data config (the models and seeds of a study) generate it once."""

    def __init__(self, config: SyntheticConfig, cache_dir: str | None, shard: Shard = Shard()) -> None:
        super().__init__(torch.empty(0, 3, config.image_size, config.image_size, dtype=torch.uint8),
                         torch.empty(0, dtype=torch.long), shard)
        self.config, self.cache_dir, self.epoch = config, cache_dir, None

    def __len__(self) -> int:
        return self.config.num_images

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            images, labels = epoch_images(self.config, epoch, self.cache_dir)
            self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
            self.labels = torch.from_numpy(labels).long()
            self.epoch = epoch


def _source(config: TrainConfig, split: str, train: bool, shard: Shard = Shard()):
    """A :class:`_TensorSource` for the synthetic data (:class:`_FreshSource` for training with
    ``fresh_data``), a DataLoader-backed source otherwise."""
    if config.data == "synthetic":
        fields = dict(image_size=config.img_size, num_classes=config.num_classes, **config.data_args)
        if train and config.fresh_data:
            return _FreshSource(synthetic_config(split, **fields), config.data_root, shard)
        ds = build_dataset("synthetic", root=config.data_root, split=split, **fields)
        images = torch.from_numpy(ds.data.images).permute(0, 3, 1, 2).contiguous()
        return _TensorSource(images, torch.from_numpy(ds.data.labels).long(), shard)
    tf = (train_transform(config.img_size, crop=config.crop) if train else eval_transform(config.img_size))
    return _LoaderSource(build_dataset(config.data, root=config.data_root, split=split, transform=tf), config, shard)


class _ShardBatches(torch.utils.data.Sampler[list[int]]):
    """Batch sampler: this process's share of each global batch of one epoch's order.

    The order is ``torch.randperm(n, generator)`` (``arange(n)`` without a generator), drawn when
    iteration starts, as DataLoader's own ``shuffle=True`` draws it; in one process the batches
    are exactly DataLoader's ``batch_size``/``shuffle`` ones.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None, shard: Shard) -> None:
        self.n, self.batch_size, self.generator, self.shard = n, batch_size, generator, shard

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=self.generator) if self.generator is not None else torch.arange(self.n)
        for part in self.shard.positions(self.n, self.batch_size):
            yield order[part].tolist()


def _reseed_worker(rank: int, worker_id: int) -> None:
    """Different augmentation draws in the loader workers of different processes."""
    torch.manual_seed(torch.initial_seed() + 1_000_003 * rank)


class _LoaderSource:
    """A real data set read through a DataLoader; the order is seeded by the epoch's generator."""

    def __init__(self, dataset, config: TrainConfig, shard: Shard = Shard()) -> None:
        self.dataset, self.num_workers, self.shard = dataset, config.num_workers, shard

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        sampler = _ShardBatches(len(self.dataset), batch_size, generator, self.shard)
        init = partial(_reseed_worker, self.shard.rank) if self.shard.rank and self.num_workers else None
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, generator=generator,
                                             num_workers=self.num_workers, worker_init_fn=init,
                                             pin_memory=device.type == "cuda")
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def data_source(config: TrainConfig, split: str) -> _TensorSource | _LoaderSource:
    """Evaluation batches of a split of the config's data set (used for held-out accuracy)."""
    return _source(config, split, train=False)


def _autocast(config: TrainConfig, device: torch.device):
    if config.amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _log(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, epochs: int) -> None:
    """Keep the lines of ``path`` (``metrics.jsonl``) of the first ``epochs`` epochs: a run killed
    later left lines of an epoch its checkpoint does not hold, perhaps a torn last line."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["epoch"] <= epochs:
                keep.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write(path, lambda f: f.write("".join(keep).encode()))


def run_file(epoch: int | None = None, val_acc: float | None = None) -> str:
    """A checkpoint's file name in a run folder: ``last.pt`` (the latest epoch, resumable),
    ``epoch_<e>.pt`` (the snapshot after ``epoch``) or ``val_acc_<a>.pt`` (the first epoch whose
    validation accuracy reached ``val_acc``)."""
    if val_acc is not None:
        return f"val_acc_{val_acc:g}.pt"
    return "last.pt" if epoch is None else f"epoch_{epoch}.pt"


def _snapshot(model: CRATE, run_dir: Path, epoch: int, name: str | None = None) -> None:
    save_checkpoint(run_dir / (name or run_file(epoch)), model, epoch=epoch)


def train(config: TrainConfig, resume: bool = False,
          on_epoch_end: Callable[[dict], bool | None] | None = None, progress: bool = True) -> TrainResult:
    """Train ``config``'s model; returns the model and its per-epoch history.

    Under ``torchrun`` (the variables of :func:`~cratelib.train.distributed.detect_launch` are
    set) every process runs this function: it joins the process group, trains its shard of every
    global batch in :class:`~torch.nn.parallel.DistributedDataParallel`, and rank 0 alone writes
    the run directory. ``config.batch_size`` stays the batch of one forward pass over all
    processes, so the weights match those of one process with the same config (to float
    rounding, with the synthetic data).

    Args:
        config: a validated :class:`TrainConfig` (see :func:`cratelib.train.load_config`).
        resume: continue from ``run_dir/last.pt`` if it exists (the config must be the same);
            under ``torchrun`` every process restores it.
        on_epoch_end: called with each epoch's record (in every process); returning True stops
            the run (the checkpoint of that epoch is already written, so ``resume=True`` continues it).
        progress: show tqdm progress bars (rank 0).

    Raises:
        TrainingDiverged: if the loss becomes NaN/inf (``last.pt`` still holds the last good epoch).
        ValueError: a launch that cannot run the config (half-set launch variables, a batch the
            processes cannot share), before any step.
    """
    launch = detect_launch()
    check_batch(config.batch_size, config.accum_steps, launch.world_size)
    device = _device(config.device)
    if launch.distributed and device.type == "cuda":
        device = torch.device("cuda", launch.local_rank)  # one GPU per process
        torch.cuda.set_device(device)
    owns_group = init_process_group(launch, device) if launch.distributed else False
    try:
        return _train(config, launch, device, resume, on_epoch_end, progress)
    finally:
        if owns_group:
            dist.destroy_process_group()


@contextmanager
def _main_first(launch: Launch) -> Iterator[None]:
    """Rank 0 runs the block first (it may generate and cache the data), then the other ranks."""
    if launch.distributed and not launch.is_main:
        dist.barrier()
    yield
    if launch.distributed and launch.is_main:
        dist.barrier()


def _train(config: TrainConfig, launch: Launch, device: torch.device, resume: bool,
           on_epoch_end: Callable[[dict], bool | None] | None, progress: bool) -> TrainResult:
    run_dir = config.run_dir
    if launch.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    with _main_first(launch):
        train_src = _source(config, config.train_split, train=True, shard=launch.shard)
        val_src = _source(config, config.val_split, train=False, shard=launch.shard) if config.val_split else None
    n = len(train_src)
    check_tail(n, config.batch_size, launch.world_size)

    import timm.optim

    opt = timm.optim.create_optimizer_v2(model, opt=config.optimizer, lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    num_batches = math.ceil(n / config.batch_size)  # global forward batches per epoch
    steps_per_epoch = math.ceil(n / (config.batch_size * config.accum_steps))
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)

    history: list[dict] = []
    start_epoch, train_time = 0, 0.0
    last = run_dir / run_file()
    if resume and last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=False)
        # Where the run lives (name, out_dir) may change: a run folder can be moved and resumed. A key
        # the stored config lacks was added to TrainConfig after the run began: it reads as its default.
        stored = TrainConfig.from_dict(ckpt["train_config"]).to_dict()
        diff = sorted(k for k, v in config.to_dict().items()
                      if k not in ("name", "out_dir") and stored[k] != v)
        if diff:
            raise ValueError(f"cannot resume {last}: the config differs in {diff}")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, history, train_time = ckpt["epoch"], ckpt["history"], ckpt["train_time_s"]
        if launch.is_main:
            _truncate_log(run_dir / "metrics.jsonl", start_epoch)
    elif launch.is_main:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    if launch.is_main:
        config.save(run_dir / "config.yaml")
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if launch.distributed else None
    step_model = ddp if ddp is not None else model
    step_model = torch.compile(step_model) if config.compile else step_model
    if start_epoch == 0 and 0 in config.snapshot_epochs and launch.is_main:
        _snapshot(model, run_dir, 0)  # the initialisation, for the training-epochs study (Fig. 10)
    metrics = run_dir / "metrics.jsonl"
    progress = progress and launch.is_main

    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        torch.manual_seed((config.seed * 100_003 + epoch) * launch.world_size + launch.rank)  # dropout
        gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)  # order and flips, same in every rank
        if hasattr(train_src, "set_epoch"):
            train_src.set_epoch(epoch)
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        it = train_src.batches(config.batch_size, device, gen, augment=True)
        bar = tqdm(total=n, desc=f"epoch {epoch + 1}/{config.epochs}", unit="img",
                   disable=not progress, file=sys.stderr, leave=False)
        step = epoch * steps_per_epoch
        for i, (x, y) in enumerate(it):
            steps_now = (i + 1) % config.accum_steps == 0 or i + 1 == num_batches
            in_batch = min(config.batch_size, n - i * config.batch_size)  # images of this global batch
            share = len(x) * launch.world_size / in_batch  # 1.0 unless the ranks' parts differ in size
            with ddp.no_sync() if ddp is not None and not steps_now else nullcontext():
                with _autocast(config, device):
                    if config.objective == "classify":
                        logits = step_model(x)
                        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
                    else:  # masked autoencoding: fresh random masks; y is never read
                        loss = step_model(x).loss
                if not torch.isfinite(loss):
                    bar.close()
                    raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch + 1}, batch {i}; "
                                           f"the last good checkpoint is {last if last.is_file() else 'none (first epoch)'}")
                # DDP averages the ranks' gradients: weighting by the share makes it the global batch mean
                scaler.scale(loss * share / config.accum_steps).backward()
            loss_sum += loss.item() * len(x)
            correct += (logits.argmax(-1) == y).sum().item() if config.objective == "classify" else 0
            seen += len(x)
            bar.update(len(x) * launch.world_size)
            if steps_now:
                lr = cosine_lr(step, total_steps, warmup_steps, config.lr, config.min_lr)
                for group in opt.param_groups:
                    group["lr"] = lr
                if config.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                if step % config.log_every == 0:
                    value = (sum_over_processes([loss.item() * len(x)], device)[0] / in_batch
                             if launch.distributed else loss.item())
                    if launch.is_main:
                        _log(metrics, {"step": step, "epoch": epoch + 1, "loss": value, "lr": lr})
                step += 1
        bar.close()
        train_time += time.perf_counter() - t0
        if launch.distributed:
            loss_sum, correct, seen = sum_over_processes([loss_sum, correct, seen], device)
        record = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                  "time_s": round(train_time, 2)}
        if config.objective == "mae":
            del record["train_acc"]
        if val_src is not None:
            record |= held_out(config, model, val_src, device)
        history.append(record)
        if launch.is_main:
            _log(metrics, record)
            if progress:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                      file=sys.stderr)
            # Snapshots before last.pt: a run stopped in between redoes this epoch and rewrites them.
            if epoch + 1 in config.snapshot_epochs:
                _snapshot(model, run_dir, epoch + 1)
            target = config.snapshot_at_val_acc
            if target is not None and record["val_acc"] >= target and all(h["val_acc"] < target for h in history[:-1]):
                _snapshot(model, run_dir, epoch + 1, name=run_file(val_acc=target))
            save_checkpoint(last, model, optimizer=opt.state_dict(), scaler=scaler.state_dict(), epoch=epoch + 1,
                            history=history, train_time_s=train_time, train_config=config.to_dict())
        if on_epoch_end is not None and on_epoch_end(record):
            break
    return TrainResult(model=model, run_dir=run_dir, history=history, train_time_s=train_time)
