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


def test_online_opens_a_connection_to_a_listening_port_and_not_to_a_closed_one():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        assert nb.online("127.0.0.1", port, timeout=5.0) is True
    finally:
        server.close()
    assert nb.online("127.0.0.1", port, timeout=5.0) is False  # refused now
    assert nb.online("no-such-host.invalid", 443, timeout=5.0) is False  # .invalid never resolves (RFC 2606)
    assert nb.online("127.0.0.1", 70000) is False  # a bad port is an answer too, not an exception


def test_online_gives_up_after_its_timeout_while_the_connection_still_hangs(monkeypatch):
    import threading

    release = threading.Event()

    def hanging(address, timeout=None):
        release.wait(60)  # a resolver or a firewall that never answers
        raise OSError("released")

    monkeypatch.setattr(nb.socket, "create_connection", hanging)
    try:
        assert nb.online("huggingface.co", timeout=0.2) is False
        assert not release.is_set()  # it returned while the probe was still blocked
    finally:
        release.set()


def test_pretrained_names_what_it_reads():
    with pytest.raises(ValueError, match="'crate-alpha:<size>' or 'timm:<name>'"):
        nb.pretrained("crate_alpha_base_patch16")
    with pytest.raises(ValueError, match="crate-alpha:B16, crate-alpha:L14"):
        nb.fetch("crate-alpha:B8")
