"""The feature cache (atomic writes: tests/test_io.py)."""

import torch

from cratelib.eval.cache import (
    cache_key,
    cached,
    file_sha256,
    state_dict_sha256,
)


def test_cached_computes_once_then_hits(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3)}

    path = tmp_path / "sub" / "feat.pt"
    v1, hit1 = cached(path, compute)
    v2, hit2 = cached(path, compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    assert torch.equal(v1["x"], v2["x"])
    assert [p.name for p in path.parent.iterdir()] == ["feat.pt"]  # no temp files left


def test_keys_and_hashes_change_with_content(tmp_path):
    assert cache_key(a=1, b="x") == cache_key(b="x", a=1) != cache_key(a=2, b="x")
    lin = torch.nn.Linear(3, 2)
    h = state_dict_sha256(lin)
    with torch.no_grad():
        lin.weight[0, 0] += 1
    assert state_dict_sha256(lin) != h
    (tmp_path / "a").write_bytes(b"abc")
    assert file_sha256(tmp_path / "a") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
