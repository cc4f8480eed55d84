"""``train(config)``: the one training code path behind ``python -m cratelib train``.

Supervised classification with the cross-entropy of eq. (9). Per run directory
(``out_dir/name``): ``config.yaml``, ``metrics.jsonl`` (loss lines every ``log_every`` steps and one
line per epoch), ``last.pt`` (written atomically after every epoch: model, optimizer, scaler,
epoch, history) and ``epoch_<e>.pt`` snapshots. ``resume=True`` continues exactly where the last
epoch ended: data order, augmentation and dropout are drawn from generators seeded by
``(seed, epoch)``, so an interrupted and resumed run ends with the same weights as one that was not.
``snapshot_at_val_acc=a`` also writes ``val_acc_<a>.pt`` after the first epoch whose validation
accuracy reaches ``a`` (the equal-accuracy comparison of the emergence study).
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from cratelib.checkpoint import load_checkpoint, load_official_checkpoint, save_checkpoint
from cratelib.data import (IMAGENET_MEAN, IMAGENET_STD, SyntheticConfig, build_dataset, eval_transform,
                           train_transform)
from cratelib.data.factory import synthetic_config
from cratelib.data.synthetic import load_or_generate
from cratelib.io import atomic_write_text
from cratelib.models import CRATE, create_model
from cratelib.train.config import TrainConfig

__all__ = ["train", "evaluate", "cosine_lr", "TrainResult", "TrainingDiverged", "build_model", "data_source"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    model: CRATE
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


def build_model(config: TrainConfig) -> CRATE:
    """The config's model: a registered name, optionally initialised from a checkpoint."""
    args = dict(img_size=config.img_size, num_classes=config.num_classes, **config.model_args)
    if config.init_from is None:
        return create_model(config.model, **args)
    if config.init_from.startswith("official:"):
        model = load_official_checkpoint(config.init_from.removeprefix("official:"), img_size=config.img_size)
    else:
        model = load_checkpoint(config.init_from, img_size=config.img_size)
    if model.num_classes != config.num_classes:
        model.reset_classifier(config.num_classes)
    return model


class _TensorSource:
    """An in-memory data set (the synthetic one) as uint8 tensors: batches are cut, flipped and
    normalised on the device, with no per-image Python work."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels  # (n, 3, H, W) uint8, (n,) int64
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        flips = torch.rand(n, generator=generator) < 0.5 if augment else None
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            x = self.images[idx].float().div_(255)
            if flips is not None:
                f = flips[i:i + batch_size]
                x[f] = x[f].flip(-1)
            x = (x - self.mean) / self.std
            yield x.to(device, non_blocking=True), self.labels[idx].to(device, non_blocking=True)


class _FreshSource(_TensorSource):
    """Synthetic training images drawn anew for every epoch (``config.fresh_data``): image ``i`` of
    epoch ``e`` comes from ``(seed, e, i)`` (:func:`cratelib.data.synthetic.generate`), so a resumed
    run sees exactly the images the uninterrupted one saw. Call :meth:`set_epoch` before
    :meth:`batches`."""

    def __init__(self, config: SyntheticConfig, cache_dir: str | None) -> None:
        super().__init__(torch.empty(0, 3, config.image_size, config.image_size, dtype=torch.uint8),
                         torch.empty(0, dtype=torch.long))
        self.config, self.cache_dir, self.epoch = config, cache_dir, None

    def __len__(self) -> int:
        return self.config.num_images

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            data = load_or_generate(self.config, self.cache_dir, epoch=epoch)  # shared by runs
            self.images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
            self.labels = torch.from_numpy(data.labels).long()
            self.epoch = epoch


def _source(config: TrainConfig, split: str, train: bool):
    """A :class:`_TensorSource` for the synthetic data (:class:`_FreshSource` for training with
    ``fresh_data``), a DataLoader-backed source otherwise."""
    if config.data == "synthetic":
        fields = dict(image_size=config.img_size, num_classes=config.num_classes, **config.data_args)
        if train and config.fresh_data:
            return _FreshSource(synthetic_config(split, **fields), config.data_root)
        ds = build_dataset("synthetic", root=config.data_root, split=split, **fields)
        images = torch.from_numpy(ds.data.images).permute(0, 3, 1, 2).contiguous()
        return _TensorSource(images, torch.from_numpy(ds.data.labels).long())
    tf = (train_transform(config.img_size, crop=config.crop) if train else eval_transform(config.img_size))
    return _LoaderSource(build_dataset(config.data, root=config.data_root, split=split, transform=tf), config)


class _LoaderSource:
    """A real data set read through a DataLoader with a seeded sampler."""

    def __init__(self, dataset, config: TrainConfig) -> None:
        self.dataset, self.num_workers = dataset, config.num_workers

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=batch_size, shuffle=generator is not None,
                                             generator=generator, num_workers=self.num_workers,
                                             pin_memory=device.type == "cuda")
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def data_source(config: TrainConfig, split: str) -> _TensorSource | _LoaderSource:
    """Evaluation batches of a split of the config's data set (used for held-out accuracy)."""
    return _source(config, split, train=False)


@torch.no_grad()
def evaluate(model: nn.Module, source, device: torch.device | str = "cpu", batch_size: int = 256) -> dict:
    """Mean cross-entropy and top-1 accuracy of ``model`` on every image of ``source``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in source.batches(batch_size, device, generator=None, augment=False):
        logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
        n += len(y)
    model.train(was_training)
    return {"loss": loss_sum / n, "acc": correct / n}


def _autocast(config: TrainConfig, device: torch.device):
    if config.amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _log(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _snapshot(model: CRATE, run_dir: Path, epoch: int, name: str | None = None) -> None:
    save_checkpoint(run_dir / (name or f"epoch_{epoch}.pt"), model, epoch=epoch)


def train(config: TrainConfig, resume: bool = False,
          on_epoch_end: Callable[[dict], bool | None] | None = None, progress: bool = True) -> TrainResult:
    """Train ``config``'s model; returns the model and its per-epoch history.

    Args:
        config: a validated :class:`TrainConfig` (see :func:`cratelib.train.load_config`).
        resume: continue from ``run_dir/last.pt`` if it exists (the config must be the same).
        on_epoch_end: called with each epoch's record; returning True stops the run (the
            checkpoint of that epoch is already written, so ``resume=True`` continues it).
        progress: show tqdm progress bars.

    Raises:
        TrainingDiverged: if the loss becomes NaN/inf (``last.pt`` still holds the last good epoch).
    """
    device = _device(config.device)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    train_src = _source(config, config.train_split, train=True)
    val_src = _source(config, config.val_split, train=False) if config.val_split else None

    import timm.optim

    opt = timm.optim.create_optimizer_v2(model, opt=config.optimizer, lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    steps_per_epoch = math.ceil(len(train_src) / (config.batch_size * config.accum_steps))
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)

    history: list[dict] = []
    start_epoch, train_time = 0, 0.0
    last = run_dir / "last.pt"
    if resume and last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=False)
        if ckpt["train_config"] != config.to_dict():
            diff = sorted(k for k, v in config.to_dict().items() if ckpt["train_config"].get(k) != v)
            raise ValueError(f"cannot resume {last}: the config differs in {diff}")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, history, train_time = ckpt["epoch"], ckpt["history"], ckpt["train_time_s"]
    else:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    step_model = torch.compile(model) if config.compile else model
    if start_epoch == 0 and 0 in config.snapshot_epochs:
        _snapshot(model, run_dir, 0)  # the initialisation, for the training-epochs study (Fig. 10)
    metrics = run_dir / "metrics.jsonl"

    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(config.seed * 100_003 + epoch)  # dropout of this epoch
        gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)  # order and flips
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        if hasattr(train_src, "set_epoch"):
            train_src.set_epoch(epoch)
        it = train_src.batches(config.batch_size, device, gen, augment=True)
        bar = tqdm(total=len(train_src), desc=f"epoch {epoch + 1}/{config.epochs}", unit="img",
                   disable=not progress, file=sys.stderr, leave=False)
        step = epoch * steps_per_epoch
        for i, (x, y) in enumerate(it):
            with _autocast(config, device):
                logits = step_model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            if not torch.isfinite(loss):
                bar.close()
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch + 1}, batch {i}; "
                                       f"the last good checkpoint is {last if last.is_file() else 'none (first epoch)'}")
            scaler.scale(loss / config.accum_steps).backward()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(-1) == y).sum().item()
            seen += len(y)
            bar.update(len(y))
            if (i + 1) % config.accum_steps == 0 or seen == len(train_src):
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
                    _log(metrics, {"step": step, "epoch": epoch + 1, "loss": loss.item(), "lr": lr})
                step += 1
        bar.close()
        train_time += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                  "time_s": round(train_time, 2)}
        if val_src is not None:
            val = evaluate(model, val_src, device)
            record |= {"val_loss": val["loss"], "val_acc": val["acc"]}
        history.append(record)
        _log(metrics, record)
        if progress:
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                  file=sys.stderr)
        # Snapshots before last.pt: a run stopped in between redoes this epoch and rewrites them.
        if epoch + 1 in config.snapshot_epochs:
            _snapshot(model, run_dir, epoch + 1)
        target = config.snapshot_at_val_acc
        if target is not None and record["val_acc"] >= target and not any(h["val_acc"] >= target for h in history[:-1]):
            _snapshot(model, run_dir, epoch + 1, name=f"val_acc_{target:g}.pt")
        save_checkpoint(last, model, optimizer=opt.state_dict(), scaler=scaler.state_dict(), epoch=epoch + 1,
                        history=history, train_time_s=train_time, train_config=config.to_dict())
        if on_epoch_end is not None and on_epoch_end(record):
            break
    return TrainResult(model=model, run_dir=run_dir, history=history, train_time_s=train_time)
