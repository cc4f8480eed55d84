"""cratelib.io: atomic writes (one file mode, nothing half-written) and the cache folder."""

import json
import os
import stat
from pathlib import Path

import pytest
import torch

import cratelib
from cratelib.io import FILE_MODE, atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text, cache_home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_creates_folders_and_gives_one_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)  # a umask that alone would make the file private
    try:
        path = atomic_write_text(tmp_path / "a" / "b" / "note.txt", "héllo")
    finally:
        os.umask(old)
    assert path == tmp_path / "a" / "b" / "note.txt"
    assert path.read_bytes() == "héllo".encode("utf-8")
    assert _mode(path) == FILE_MODE == 0o644
    assert os.listdir(path.parent) == ["note.txt"]


def test_atomic_write_flushes_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write(tmp_path / "x.bin", lambda f: f.write(b"\x00\x01"))
    assert events == ["fsync", "replace"]
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01"


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = atomic_write_text(tmp_path / "m.txt", "old")

    def half_then_fail(f):
        f.write(b"new, but only half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["m.txt"]


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "m.json"
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object.__new__(type("X", (), {}))})
    assert os.listdir(tmp_path) == []


def test_json_and_torch_round_trip(tmp_path):
    obj = {"b": [1, 2.5], "a": "x"}
    path = atomic_write_json(tmp_path / "r.json", obj)
    assert json.loads(path.read_text()) == obj
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys by default
    assert atomic_write_json(tmp_path / "s.json", obj, indent=1, sort_keys=False).read_text() == json.dumps(obj, indent=1)
    t = atomic_torch_save(tmp_path / "t.pt", {"w": torch.arange(4)})
    assert torch.equal(torch.load(t, weights_only=True)["w"], torch.arange(4)) and _mode(t) == FILE_MODE


def test_cache_home_reads_the_variable_and_falls_back_to_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRATELIB_CACHE", str(tmp_path))
    assert cache_home() == tmp_path
    assert cache_home("eval", "data") == tmp_path / "eval" / "data"
    assert not (tmp_path / "eval").exists()  # a location, not created
    monkeypatch.setenv("CRATELIB_CACHE", "~/elsewhere")
    assert cache_home("synthetic") == Path.home() / "elsewhere" / "synthetic"
    for unset in (monkeypatch.delenv, lambda k: monkeypatch.setenv(k, "")):
        unset("CRATELIB_CACHE")
        assert cache_home("eval") == Path.home() / ".cache" / "cratelib" / "eval"


def test_no_module_or_chapter_writes_files_around_cratelib_io():
    """Every rename-into-place and every cache-folder formula lives in cratelib/io.py."""
    package = Path(cratelib.__file__).parent
    sources = [p for p in package.rglob("*.py") if p.name != "io.py"] + sorted((package.parent / "book").glob("*.md"))
    patterns = ("os.replace(", "mkstemp(", '"CRATELIB_CACHE"', '"~/.cache/cratelib"')
    offenders = [p.name for p in sources if any(s in p.read_text() for s in patterns)]
    assert len(sources) > 50 and offenders == []
