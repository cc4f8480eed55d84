"""What a run optimises: the model a config builds and the held-out measure of its objective.

``TrainConfig.objective`` picks one of two objectives; :func:`cratelib.train.train` runs both with
the same data, schedule, checkpoints and exact resume:

* ``classify`` - the cross-entropy of eq. (9) on the labels (optionally label-smoothed); held out:
  loss and top-1 accuracy (:func:`evaluate`, ``val_loss``/``val_acc`` in ``metrics.jsonl``);
* ``mae`` - masked autoencoding (CRATE-MAE, :mod:`cratelib.models.crate_mae`): the squared error
  of the masked patches, each batch with fresh random masks from torch's generator (seeded per
  epoch by the loop, so a resumed run draws the same masks). No label is ever read: the data
  sources still yield ``(images, labels)`` pairs, and this objective drops the labels unread.
  Held out: :func:`reconstruction_error` (``val_recon``), with the same masks every epoch. Under
  ``torchrun`` each process draws the masks of its share of a batch from its own seed, so a
  multi-process run is the one-process run in distribution, not bit for bit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cratelib.checkpoint import load_checkpoint, load_official_checkpoint
from cratelib.checkpoint_mae import load_official_mae_checkpoint
from cratelib.models import CRATE, CRATEMAE, create_model
from cratelib.train.config import TrainConfig
from cratelib.train.distributed import sum_over_processes

__all__ = ["build_model", "evaluate", "reconstruction_error", "held_out"]

HELD_OUT_MASK_SEED = 0  # the held-out masks: one generator, seeded afresh for every evaluation


def build_model(config: TrainConfig) -> CRATE | CRATEMAE:
    """The config's model: a registered name, optionally initialised from a checkpoint
    (``official:<path>``: released weights; a CRATE-MAE's through :func:`load_official_mae_checkpoint`)."""
    if config.objective == "mae":
        if config.init_from is None:
            return create_model(config.model, img_size=config.img_size, **config.model_args)
        path = config.init_from.removeprefix("official:")
        official = config.init_from.startswith("official:")
        return (load_official_mae_checkpoint if official else load_checkpoint)(path, img_size=config.img_size)
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


@torch.no_grad()
def evaluate(model: nn.Module, source, device: torch.device | str = "cpu", batch_size: int = 256) -> dict:
    """Mean cross-entropy and top-1 accuracy of ``model`` on every image of ``source`` (under
    ``torchrun``, on the union of the processes' shards of it)."""
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
    loss_sum, correct, n = sum_over_processes([loss_sum, correct, n], device)  # a sharded source under torchrun
    return {"loss": loss_sum / n, "acc": correct / n}


@torch.no_grad()
def reconstruction_error(model: CRATEMAE, source, device: torch.device | str = "cpu", batch_size: int = 256,
                         seed: int = HELD_OUT_MASK_SEED) -> dict:
    """The held-out reconstruction error of a masked autoencoder: its loss (mean squared error of
    the masked patches, in normalised pixel units, or of standardised patches with
    ``norm_pix_loss``) averaged over every image of ``source``, each batch masked at the model's
    ratio by one CPU generator seeded with ``seed`` (the same masks at every epoch). Labels are not
    read. Returns ``{"recon": error}``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    masks = torch.Generator().manual_seed(seed)
    total, n = 0.0, 0
    for x, _ in source.batches(batch_size, device, generator=None, augment=False):
        total += model(x, model.random_mask(x, masks)).loss.item() * len(x)
        n += len(x)
    model.train(was_training)
    total, n = sum_over_processes([total, n], device)
    return {"recon": total / n}


def held_out(config: TrainConfig, model: nn.Module, source, device: torch.device) -> dict:
    """The epoch record's held-out entries: ``val_loss``/``val_acc`` or ``val_recon``."""
    if config.objective == "mae":
        return {"val_recon": reconstruction_error(model, source, device)["recon"]}
    val = evaluate(model, source, device)
    return {"val_loss": val["loss"], "val_acc": val["acc"]}
