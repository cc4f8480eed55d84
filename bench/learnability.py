"""Go/no-go check of a synthetic data variant: can a small CNN learn it within minutes of CPU?

A variant that a 4-layer CNN cannot learn to ~90 % in about 10 CPU minutes is not worth hours of
transformer training (issue 12). Prints the cue audit of the variant's test images beside the
CNN's held-out accuracy, one JSON line per run (append them to a file to build the frontier).

    python bench/learnability.py --set fill=flat --minutes 10                  # version 4, shape only
    python bench/learnability.py --set texture_correlation=0.8                 # textures, rho = 0.8
    python bench/learnability.py --set version=3                               # the first generator

``--record data/study/frontier.jsonl`` also appends the JSON line to that file (the frontier of
cue AUC against learnability that the book reads).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cratelib.data import SyntheticConfig, load_or_generate
from cratelib.eval.cues import audit
from cratelib.io import atomic_write_text


def small_cnn(num_classes: int) -> nn.Module:
    """Four 3x3 conv blocks (32-64-128-128 channels, BN, ReLU, 2x2 max-pool), global pool, linear."""
    layers, c_in = [], 3
    for c_out in (32, 64, 128, 128):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


def _tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    return (x - 0.45) / 0.25


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(x[i:i + 500]).argmax(-1) == y[i:i + 500]).sum().item()
                  for i in range(0, len(y), 500))
    model.train()
    return correct / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="SyntheticConfig field, e.g. --set fill=flat (repeatable; default: the default data)")
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="budget in CPU minutes of this process (one thread), not wall time")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patch", type=int, default=8, help="patch grid of the cue audit")
    parser.add_argument("--record", help="append the result line to this JSON-lines file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    fields = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    train = load_or_generate(SyntheticConfig(args.train_images, split="train", **fields))
    val = load_or_generate(SyntheticConfig(2000, split="test", seed=10007, **fields))
    cues = audit(load_or_generate(SyntheticConfig(400, split="test", seed=10007, **fields)),
                 args.patch)
    x, y = _tensor(train.images), torch.from_numpy(train.labels)
    xv, yv = _tensor(val.images), torch.from_numpy(val.labels)
    model = small_cnn(train.config.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    start, step, curve = time.process_time(), 0, []
    while time.process_time() - start < args.minutes * 60:
        order = torch.randperm(len(y))
        for i in range(0, len(y) - args.batch_size + 1, args.batch_size):
            idx = order[i:i + args.batch_size]
            xb = x[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(-1)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if time.process_time() - start > args.minutes * 60:
                break
        curve.append((step, round(accuracy(model, xv, yv), 4), round(time.process_time() - start)))
        print(f"step {step}: held-out {curve[-1][1]:.3f} ({curve[-1][2]} CPU s)", flush=True)
    line = json.dumps({"data": json.loads(train.config.to_json()) | {"num_images": args.train_images},
                       "cnn_held_out": curve[-1][1], "steps": step, "batch": args.batch_size,
                       "cpu_seconds": curve[-1][2], "curve": curve,
                       "cues": {k: round(v["mean"], 3) for k, v in cues.items()}})
    print(line)
    if args.record:
        path = Path(args.record)
        old = path.read_text() if path.is_file() else ""
        atomic_write_text(path, old + line + "\n")


if __name__ == "__main__":
    main()
