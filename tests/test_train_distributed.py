"""Data-parallel training: two gloo processes equal one, SIGKILL then resume equals no fault, bad launches.

The processes are forked by torch.multiprocessing from this (already imported) test process, with
the variables torchrun sets, and run the library's own ``train``; one test runs the README's
``torchrun`` command itself. Faults are SIGKILLs a process sends itself at a known point: the k-th
training forward pass, or halfway through writing the k-th ``last.pt`` or the data cache.
"""
import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from cratelib.cli import main
from cratelib.train import load_config, train
from cratelib.train.distributed import LaunchError, Shard, detect_launch

ROOT = Path(__file__).resolve().parents[1]
# 101 images in global batches of 32: the last batch of an epoch (5 images) splits 3 + 2 over two
# processes, so their shares weigh differently; 2 batches an optimizer step
TINY = {
    "model": "crate_nano_patch8", "model_args": {"dim": 32, "num_heads": 2, "depth": 2},
    "data": "synthetic", "data_args": {"num_images": 101}, "img_size": 32, "num_classes": 3,
    "batch_size": 32, "accum_steps": 2, "epochs": 3, "warmup_epochs": 0.5, "lr": 3e-3, "log_every": 1,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_at(count: int, real):
    """A stand-in for ``real`` that SIGKILLs this process on its ``count``-th call."""
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapped


def _half_then_die(count: int, real, counts):
    """A stand-in for a save function ``real(obj_or_file, ...)``: on the ``count``-th call that
    ``counts``, write half of the bytes into the file, then SIGKILL this process."""
    calls = [0]

    def wrapped(*args, **kwargs):
        if counts(*args, **kwargs):
            calls[0] += 1
            if calls[0] == count:
                f = next(a for a in args if hasattr(a, "write"))
                buffer = io.BytesIO()
                real(*[buffer if a is f else a for a in args], **kwargs)
                f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapped


def _install(fault: tuple[str, int]) -> None:
    kind, count = fault
    if kind == "step":  # the count-th training forward pass (evaluation sums; training averages)
        real = torch.nn.functional.cross_entropy
        step = _die_at(count, real)
        torch.nn.functional.cross_entropy = lambda *a, **k: (step if k.get("reduction", "mean") == "mean" else real)(*a, **k)
    elif kind == "checkpoint":  # halfway through the count-th write of last.pt (it holds the optimizer)
        torch.save = _half_then_die(count, torch.save, lambda obj, f, *a, **k: "optimizer" in obj)
    elif kind == "cache":  # halfway through the count-th write of the synthetic data cache
        np.savez = _half_then_die(count, np.savez, lambda f, *a, **k: True)


def _worker(rank: int, world: int, port: int, config: dict, resume: bool, faults: dict, out: str) -> None:
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if rank in faults:
        _install(faults[rank])
    result = train(load_config(config), resume=resume, progress=False)
    torch.save(result.model.state_dict(), Path(out) / f"weights_rank{rank}.pt")


def launch(world: int, config: dict, resume: bool = False, faults: dict | None = None) -> Exception | None:
    """Run ``train(config)`` in ``world`` forked processes; the failure, if one failed or was killed
    (the others are then ended)."""
    out = Path(config["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    try:
        mp.start_processes(_worker, (world, _free_port(), config, resume, faults or {}, str(out)),
                           nprocs=world, start_method="fork")
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as err:
        return err
    return None


def tiny(root: Path, **kw) -> dict:
    return {**TINY, "out_dir": str(root), "data_root": str(root / "cache"), **kw}


def weights(config: dict, rank: int = 0) -> dict:
    return torch.load(Path(config["out_dir"]) / f"weights_rank{rank}.pt", weights_only=True)


def checkpoint(config: dict) -> dict:
    return torch.load(Path(config["out_dir"]) / "run" / "last.pt", weights_only=False)


def log_without_times(config: dict) -> list[dict]:
    lines = (Path(config["out_dir"]) / "run" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def assert_no_unreadable_files(root: Path) -> list[Path]:
    """Every checkpoint, cache and log under ``root`` reads back; returns the temporary files."""
    temporary = []
    for path in root.rglob("*"):
        if path.name.endswith(".tmp"):
            temporary.append(path)
        elif path.suffix == ".pt":
            torch.load(path, weights_only=False)
        elif path.suffix == ".npz":
            with np.load(path) as f:
                [f[k] for k in f.files]
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
    return temporary


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference runs, one and two processes, never interrupted."""
    root = tmp_path_factory.mktemp("uninterrupted")
    runs = {world: tiny(root / f"world{world}", data_root=str(root / "cache")) for world in (1, 2)}
    for world, config in runs.items():
        assert launch(world, config) is None
    return runs


def test_two_processes_reach_the_weights_of_one_with_the_same_global_batch(uninterrupted):
    one, two = uninterrupted[1], uninterrupted[2]
    torch.testing.assert_close(weights(two, 1), weights(two, 0), rtol=0, atol=0)  # the ranks agree
    w1, w2 = weights(one), weights(two)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-5)
    h1, h2 = checkpoint(one)["history"], checkpoint(two)["history"]
    assert [h["step"] for h in h2] == [h["step"] for h in h1] == [2, 4, 6]
    for a, b in zip(h1, h2):
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=0.011)  # at most one image flips
        assert b["val_acc"] == pytest.approx(a["val_acc"], abs=0.011)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    steps = [line for line in log_without_times(two) if "lr" in line]
    assert [s["step"] for s in steps] == list(range(6))  # one log line per step, from rank 0 alone
    assert [s["loss"] for s in steps] == pytest.approx([s["loss"] for s in log_without_times(one) if "lr" in s], rel=1e-5)


@pytest.mark.parametrize("world, faults", [
    (1, {0: ("step", 7)}),        # one process, mid-epoch 2 (after its first optimizer step)
    (1, {0: ("checkpoint", 2)}),  # one process, halfway through writing epoch 2's last.pt
    (1, {0: ("cache", 1)}),       # one process, halfway through writing the data cache
    (2, {1: ("step", 7)}),        # rank 1 of two, mid-epoch 2
    (2, {0: ("checkpoint", 2)}),  # rank 0 of two, halfway through writing epoch 2's last.pt
], ids=["1proc-mid-epoch", "1proc-checkpoint-write", "1proc-cache-write", "2proc-mid-epoch",
        "2proc-checkpoint-write"])
def test_a_run_killed_and_resumed_ends_like_the_uninterrupted_one(tmp_path, uninterrupted, world, faults):
    config = tiny(tmp_path)
    assert launch(world, config, faults=faults) is not None  # SIGKILLed
    left = assert_no_unreadable_files(tmp_path)
    kind = next(iter(faults.values()))[0]
    if kind != "step":
        assert left, "the kill should have hit a write in progress"
    if kind != "cache":  # killed in epoch 2; a half-written epoch 2 never replaced epoch 1's checkpoint
        assert checkpoint(config)["epoch"] == 1
    assert launch(world, config, resume=True) is None
    assert assert_no_unreadable_files(tmp_path) == []  # the killed writer's temporary file is gone
    reference = uninterrupted[world]
    for rank in range(world):  # every process restored the checkpoint
        for k, v in weights(reference).items():
            torch.testing.assert_close(weights(config, rank)[k], v, rtol=0, atol=0)
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert strip(checkpoint(config)["history"]) == strip(checkpoint(reference)["history"])
    assert log_without_times(config) == log_without_times(reference)  # no line of the lost epoch twice


def _rendezvous(monkeypatch, world: int, skip: str | None = None) -> None:
    env = dict(RANK="0", WORLD_SIZE=str(world), LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29999")
    for key, value in env.items():
        if key != skip:
            monkeypatch.setenv(key, value)


def test_bad_launches_fail_before_any_step_with_a_clear_message(tmp_path, monkeypatch, capsys):
    config = load_config(tiny(tmp_path))
    _rendezvous(monkeypatch, 3)
    with pytest.raises(LaunchError, match=r"batch_size=32 is one forward pass summed over all processes .*"
                                          r"multiple of the 3 processes.*batch_size=30 or 33"):
        train(config, progress=False)
    monkeypatch.delenv("MASTER_PORT")
    with pytest.raises(LaunchError, match=r"RANK=0, WORLD_SIZE=3, LOCAL_RANK=0, MASTER_ADDR=127.0.0.1 but not "
                                          r"MASTER_PORT.*torchrun --nproc_per_node=N"):
        train(config, progress=False)
    args = ["train", "--config", "cpu-demo", f"--set=out_dir={tmp_path}"]
    assert main(args) == 2
    assert "but not MASTER_PORT" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cpu-demo").exists()  # no step, no file
    monkeypatch.undo()
    # known once the data is loaded: the processes stop together, before the first step
    err = launch(2, tiny(tmp_path, data_args={"num_images": 97}))
    assert isinstance(err, mp.ProcessRaisedException), err
    assert "LaunchError: the last batch of an epoch holds 1 of the 97 images, fewer than the 2 processes" in str(err)
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "last.pt").exists()


def test_launch_variables_and_shards():
    assert detect_launch({}).world_size == 1 and not detect_launch({}).distributed
    launch = detect_launch(dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1", MASTER_ADDR="h", MASTER_PORT="1"))
    assert (launch.rank, launch.world_size, launch.is_main, launch.shard) == (1, 2, False, Shard(1, 2))
    with pytest.raises(LaunchError, match=r"RANK=2 must lie in \[0, WORLD_SIZE=2\)"):
        detect_launch(dict(RANK="2", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="h", MASTER_PORT="1"))
    for world in (1, 2, 3):
        parts = [list(Shard(r, world).positions(11, 6)) for r in range(world)]
        for batch, (start, stop) in enumerate([(0, 6), (6, 11)]):  # each global batch, split in order
            got = [i for r in range(world) for i in range(11)[parts[r][batch]]]
            assert got == list(range(start, stop))
            sizes = [len(range(11)[parts[r][batch]]) for r in range(world)]
            assert max(sizes) - min(sizes) <= 1


def test_readme_torchrun_command_equals_one_process(tmp_path):
    """``torchrun --nproc_per_node=2 -m cratelib train --config cpu-demo ...`` (the README's
    command, at a tiny size) ends with the weights of one process training the same config."""
    sets = [f"data_root={tmp_path / 'cache'}"] + [f"{k}={json.dumps(v)}" for k, v in TINY.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "cratelib", "train", "--config", "cpu-demo", *[a for s in sets for a in ("--set", s)],
           "--set", f"out_dir={tmp_path / 'two'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run ") == 1 and "3 epochs" in done.stdout  # rank 0 reports, once
    one = train(load_config("cpu-demo", sets + [f"out_dir={tmp_path / 'one'}"]), progress=False)
    two = torch.load(tmp_path / "two" / "cpu-demo" / "last.pt", weights_only=False)
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(two["model"][k], v, rtol=1e-5, atol=1e-5)
    assert [h["val_acc"] for h in two["history"]] == pytest.approx([h["val_acc"] for h in one.history], abs=0.011)


def test_real_data_sets_are_sharded_like_the_synthetic_one():
    """The DataLoader path: one process gets DataLoader's own shuffled batches (same generator draws);
    two processes split each of those batches between them."""
    from torch.utils.data import DataLoader, TensorDataset

    from cratelib.train.loop import _LoaderSource

    ds = TensorDataset(torch.zeros(103, 1), torch.arange(103))
    config = load_config({"num_workers": 0})

    def labels(source):
        return [y.tolist() for _, y in source.batches(16, torch.device("cpu"), torch.Generator().manual_seed(5), True)]

    plain = [y.tolist() for _, y in DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(5))]
    assert labels(_LoaderSource(ds, config)) == plain
    parts = [labels(_LoaderSource(ds, config, Shard(r, 2))) for r in range(2)]
    assert [a + b for a, b in zip(*parts)] == plain
    assert [len(b) for b in parts[1]] == [8] * 6 + [3]


def test_fresh_epochs_under_two_processes_equal_one(tmp_path):
    """Fresh synthetic images per epoch (the emergence study's recipe) shard like any source."""
    fresh = {"data_args": {"num_images": 64, "version": 4}, "fresh_data": True, "epochs": 2,
             "accum_steps": 1, "data_root": str(tmp_path / "cache")}
    one, two = tiny(tmp_path / "one", **fresh), tiny(tmp_path / "two", **fresh)
    assert launch(1, one) is None and launch(2, two) is None
    w1, w2 = weights(one), weights(two)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-5)
