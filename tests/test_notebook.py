"""cratelib.notebook: the set-up cell, glue, repository paths and the widget helper."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cratelib.notebook as nb


def test_setup_picks_cpu_scale_and_seeds(monkeypatch):
    monkeypatch.delenv("CRATE_BOOK_SCALE", raising=False)
    device, scale = nb.setup(seed=3, device="cpu", verbose=False)
    first = torch.rand(2)
    nb.setup(seed=3, device="cpu", verbose=False)
    assert device.type == "cpu" and scale.name == "cpu"
    torch.testing.assert_close(first, torch.rand(2))


def test_setup_scale_from_environment_and_bad_scale(monkeypatch):
    monkeypatch.setenv("CRATE_BOOK_SCALE", "gpu")
    assert nb.setup(device="cpu", verbose=False)[1].name == "gpu"
    with pytest.raises(ValueError, match="scale must be one of"):
        nb.setup(scale="tpu", verbose=False)


def test_glue_stores_numpy_and_torch_scalars_as_python_numbers(monkeypatch):
    import myst_nb

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: stored.update({name: value}))
    nb.glue("a", np.float64(4.25), display=False)
    nb.glue("b", torch.tensor(3), display=False)
    nb.glue("c", np.arange(3), display=False)  # arrays are left alone
    assert type(stored["a"]) is float and stored["a"] == 4.25
    assert type(stored["b"]) is int and stored["b"] == 3
    assert isinstance(stored["c"], np.ndarray)


def test_repo_root_and_data_path(tmp_path):
    root = nb.find_repo_root(__file__)
    assert root is not None and (root / "_config.yml").is_file()
    assert nb.data_path("data/checkpoints/crate.pt", start=root / "book") == root / "data/checkpoints/crate.pt"
    assert nb.data_path("data/no-such-file.pt", start=root) is None
    assert nb.find_repo_root(tmp_path) is None


def test_interact_draws_only_on_change():
    import ipywidgets as widgets

    calls = []
    slider = widgets.IntSlider(value=1, min=0, max=5)
    box = nb.interact(lambda k: calls.append(k), k=slider)
    assert isinstance(box, widgets.VBox) and calls == []  # nothing drawn while the cell runs
    slider.value = 4
    assert calls == [4]
