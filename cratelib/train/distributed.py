"""Data-parallel training on PyTorch's own engine: a ``torchrun`` launch, its process group, shards.

``torchrun --nproc_per_node=W -m cratelib train ...`` starts W processes and gives each the
standard variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`detect_launch` reads them (a plain ``python -m cratelib train`` sets none: one process),
:func:`init_process_group` joins the group (NCCL on CUDA, gloo on the CPU), and the training loop
wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel`.

The config's ``batch_size`` is the batch of one forward pass summed over all processes, so a
config means the same optimisation whatever the number of processes: global batch per optimizer
step = ``batch_size`` x ``accum_steps`` = (``batch_size`` / W) per process x W processes x
``accum_steps``. Every process draws the same seeded permutation of the data each epoch and takes
its :class:`Shard` of each global batch: the W processes together see exactly the images one
process would see, batch by batch. (torch's ``DistributedSampler`` is not used: it draws its own
permutation and interleaves and pads it, so one process and W processes would train on different
batches.) The loss of each share is weighted by its size, so that DDP's average of the processes'
gradients is the gradient of the global batch even when the last batch does not split evenly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

__all__ = ["LaunchError", "Launch", "Shard", "detect_launch", "check_batch", "check_tail", "init_process_group", "is_main_process",
           "sum_over_processes"]

_RENDEZVOUS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class LaunchError(ValueError):
    """This launch cannot run the config; raised before any training step."""


@dataclass(frozen=True)
class Launch:
    """Where this process stands in a launch: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the logs, records and checkpoints."""
        return self.rank == 0

    @property
    def shard(self) -> "Shard":
        return Shard(self.rank, self.world_size)


@dataclass(frozen=True)
class Shard:
    """Part ``rank`` of ``world_size`` of every global batch (``Shard()`` is the whole batch)."""

    rank: int = 0
    world_size: int = 1

    def positions(self, n: int, batch_size: int) -> Iterator[slice]:
        """This process's positions in an epoch's order of ``n`` items, one slice per global batch.

        Global batch ``i`` is positions ``[i * batch_size, (i + 1) * batch_size)`` (the last one
        may be shorter); it is cut into ``world_size`` contiguous parts whose sizes differ by at
        most one, and this process takes part ``rank``.
        """
        for start in range(0, n, batch_size):
            q, r = divmod(min(batch_size, n - start), self.world_size)
            lo = start + self.rank * q + min(self.rank, r)
            yield slice(lo, lo + q + (self.rank < r))


def detect_launch(environ: dict[str, str] | None = None) -> Launch:
    """This process's :class:`Launch` from the variables ``torchrun`` sets.

    None of them set: a single process. Raises ValueError, naming the variables, when a launch is
    half described (e.g. ``RANK`` without ``MASTER_PORT``) or the numbers do not fit together
    (:class:`LaunchError`).
    """
    env = os.environ if environ is None else environ
    present = [k for k in _RENDEZVOUS if k in env]
    if not present:
        return Launch()
    missing = [k for k in _RENDEZVOUS if k not in env]
    if missing:
        raise LaunchError(f"a multi-process launch sets {', '.join(_RENDEZVOUS)}; this process has "
                         f"{', '.join(f'{k}={env[k]}' for k in present)} but not {', '.join(missing)}. "
                         "Launch with `torchrun --nproc_per_node=N -m cratelib train ...`, or unset "
                         f"{', '.join(present)} for one process.")
    try:
        launch = Launch(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))
        int(env["MASTER_PORT"])
    except ValueError as err:
        raise LaunchError(f"RANK, WORLD_SIZE, LOCAL_RANK and MASTER_PORT must be integers ({err})") from None
    if not 0 <= launch.rank < launch.world_size or launch.local_rank < 0:
        raise LaunchError(f"RANK={launch.rank} must lie in [0, WORLD_SIZE={launch.world_size}) and "
                         f"LOCAL_RANK={launch.local_rank} must be >= 0")
    return launch


def check_batch(batch_size: int, accum_steps: int, world_size: int) -> None:
    """Raise :class:`LaunchError` unless ``world_size`` processes can share every global batch equally."""
    if batch_size % world_size:
        lower = batch_size - batch_size % world_size
        raise LaunchError(
            f"batch_size={batch_size} is one forward pass summed over all processes (global batch = "
            f"batch_size x accum_steps = {batch_size * accum_steps}); it must be a multiple of the "
            f"{world_size} processes so that each takes the same share. Use batch_size="
            f"{lower or world_size} or {lower + world_size}, or another --nproc_per_node.")


def check_tail(num_items: int, batch_size: int, world_size: int) -> None:
    """Raise :class:`LaunchError` when the last, shorter batch of an epoch would leave a process
    without images."""
    tail = num_items % batch_size
    if 0 < tail < world_size:
        raise LaunchError(f"the last batch of an epoch holds {tail} of the {num_items} images, fewer than "
                         f"the {world_size} processes; change batch_size or the number of images")


def init_process_group(launch: Launch, device: torch.device) -> bool:
    """Join the launch's process group (NCCL for CUDA, gloo for the CPU) through the ``env://``
    rendezvous. Returns True when this call created it (the caller then destroys it)."""
    if dist.is_initialized():
        if dist.get_world_size() != launch.world_size:
            raise RuntimeError(f"a process group of size {dist.get_world_size()} is already initialised, "
                               f"but WORLD_SIZE={launch.world_size}")
        return False
    if device.type == "cuda":
        dist.init_process_group("nccl", rank=launch.rank, world_size=launch.world_size, device_id=device)
    else:
        dist.init_process_group("gloo", rank=launch.rank, world_size=launch.world_size)
    return True


def is_main_process() -> bool:
    """True in a single process and in rank 0 of a launch."""
    return int(os.environ.get("RANK", "0")) == 0


def sum_over_processes(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over the processes of the group (unchanged in one process)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
