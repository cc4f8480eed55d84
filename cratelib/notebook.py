"""The first cell of every book chapter: where are we running, on what device, at what scale.

Every chapter starts with the same set-up cell::

    import sys
    if "google.colab" in sys.modules:  # on Colab: fetch the repository, install the library
        !test -d /content/crate-book || git clone -q --depth 1 <repository URL> /content/crate-book
        %pip install -q -e /content/crate-book
        sys.path.insert(0, "/content/crate-book")
        %cd /content/crate-book/book
    import cratelib.notebook
    device, scale = cratelib.notebook.setup()

``setup()`` seeds the random generators, picks the device and returns a :class:`Scale`: the CPU
default (what the online book is built with, a few minutes on two cores) or the GPU-scale
configuration when CUDA is present. Set the environment variable ``CRATE_BOOK_SCALE`` to ``cpu``
or ``gpu`` to override the choice (CI forces ``cpu``).

The third scale, ``gpu-smoke``, checks the GPU cells without a GPU: the chapters' GPU branches
(``if scale.gpu_paths:``) run on the CPU with the tiny sizes of :meth:`Scale.sized`, and
:func:`fetch` replaces every download by a stand-in in the same format (:mod:`cratelib.smoke`),
written below a scratch folder that also holds the Hugging Face and cratelib caches of the
process. Elsewhere ``gpu-smoke`` has the CPU sizes.

A cell that downloads released weights on any scale (:func:`pretrained`) first asks
:func:`online` whether the host answers, and says in one line what it would show when it does not.

Installing on Colab never reinstalls torch: cratelib only asks for ``torch>=2.1``, which Colab's
preinstalled build already satisfies.
"""
from __future__ import annotations

import os
import random
import socket
import sys
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, Sequence

import torch

__all__ = ["Scale", "SCALES", "in_colab", "choose_device", "setup", "device_name", "work_dir", "online", "fetch",
           "pretrained", "glue", "find_repo_root", "data_path", "interact", "shipped_study"]


@dataclass(frozen=True)
class Scale:
    """Problem sizes a chapter reads instead of hard-coding them.

    Theory chapters (1-5) use the CPU sizes everywhere; the fields marked "part 2" size the
    training and evaluation chapters.
    """

    name: Literal["cpu", "gpu", "gpu-smoke"]
    num_tokens: int  # N, tokens in the toy union-of-subspaces experiments
    model: str  # registered model for forward passes in the architecture chapter
    img_size: int  # image side in pixels for those forward passes
    batch_size: int  # images per forward pass / training batch (part 2)
    num_images: int  # images in an evaluation set (part 2)
    epochs: int  # training epochs (part 2)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def gpu_paths(self) -> bool:
        """True where the chapters take their GPU branches: at ``gpu``, and at ``gpu-smoke``, which
        runs them on the CPU with tiny sizes and stand-ins for the downloads."""
        return self.name in ("gpu", "gpu-smoke")

    @property
    def stand_ins(self) -> bool:
        """True at ``gpu-smoke``, where every download (data sets, released weights) is replaced by a
        local stand-in in the same on-disk format (:mod:`cratelib.smoke`): a cell that needs a
        network runs there without one."""
        return self.name == "gpu-smoke"

    def sized(self, full, smoke):
        """A size inside a GPU branch (images, pixels, epochs, a batch): ``smoke`` at the
        ``gpu-smoke`` scale, else ``full``."""
        return smoke if self.name == "gpu-smoke" else full


SCALES: dict[str, Scale] = {
    "cpu": Scale("cpu", num_tokens=256, model="crate_nano_patch16", img_size=64, batch_size=8,
                 num_images=64, epochs=2),
    "gpu": Scale("gpu", num_tokens=1024, model="crate_tiny_patch16", img_size=224, batch_size=128,
                 num_images=1024, epochs=30),
    # The CPU sizes; only the GPU branches differ (Scale.gpu_paths, Scale.sized, fetch).
    "gpu-smoke": Scale("gpu-smoke", num_tokens=256, model="crate_nano_patch16", img_size=64, batch_size=8,
                       num_images=64, epochs=2),
}


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def choose_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else CUDA when available, else the CPU (MPS is left out on purpose:
    some linear-algebra kernels the book uses, e.g. Cholesky, are missing there)."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0, device: str | None = None, scale: str | None = None,
          verbose: bool = True) -> tuple[torch.device, Scale]:
    """Seed, choose the device and the scale; print a one-line summary.

    Args:
        seed: seed for ``random`` and ``torch``.
        device: force a device (``"cpu"``, ``"cuda"``); default: CUDA if available.
        scale: force ``"cpu"``, ``"gpu"`` or ``"gpu-smoke"``; default: ``$CRATE_BOOK_SCALE``,
            else ``"gpu"`` on a CUDA device and ``"cpu"`` otherwise. ``"gpu-smoke"`` also points
            the Hugging Face and cratelib caches into a scratch folder
            (:func:`cratelib.smoke.isolate`).
        verbose: print where the chapter runs.

    Returns:
        ``(device, scale)``.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    dev = choose_device(device)
    name = scale or os.environ.get("CRATE_BOOK_SCALE") or ("gpu" if dev.type == "cuda" else "cpu")
    if name not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {name!r}")
    chosen = SCALES[name]
    if name == "gpu-smoke":
        from cratelib.smoke import isolate

        where_smoke = isolate()
        if verbose:
            print(f"gpu-smoke: the GPU cells run with tiny sizes; downloads are stand-ins in {where_smoke}")
    if verbose:
        where = "Colab" if in_colab() else "local"
        gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
        print(f"cratelib set-up: {where} kernel, device {dev}{gpu}, scale '{chosen.name}', "
              f"torch {torch.__version__}")
    return dev, chosen


def device_name(device: torch.device | str) -> str:
    """What a GPU cell reports it ran on: the GPU's name on CUDA, else ``"cpu"``."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def work_dir(path: str | os.PathLike, scale: Scale) -> Path:
    """A folder a GPU cell writes to (a training run, an evaluation's output): ``path``, or at the
    ``gpu-smoke`` scale the same path below the scratch folder of :mod:`cratelib.smoke`, so that
    a smoke run never resumes, nor overwrites, a real one."""
    if scale.name != "gpu-smoke":
        return Path(path).expanduser()
    from cratelib.smoke import scratch

    return scratch() / Path(path).expanduser().as_posix().lstrip("/")


def online(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (name resolution
    included): the check a cell makes before it downloads. Never raises; False on any failure.

    The probe runs in a daemon thread, so that a resolver that hangs cannot hold the cell longer
    than ``timeout``.
    """
    opened: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                opened.append(True)
        except (OSError, ValueError):  # unresolvable, refused, unreachable, timed out; a bad port
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


def fetch(what: str, root: str | os.PathLike | None = None, scale: Scale | None = None) -> Path:
    """What a GPU cell downloads, or, at the ``gpu-smoke`` scale, its stand-in (:mod:`cratelib.smoke`).

    Args:
        what: a data set of :func:`cratelib.data.download` (``"voc"``, ``"coco"``, ``"cifar10"``,
            ...), downloaded into ``root``; or ``"timm:<name>"``, timm's pretrained weights of
            ``<name>``, fetched into the Hugging Face cache, where ``timm.create_model(name,
            pretrained=True)`` finds them; or ``"official-crate"``, the released CRATE weights,
            which cannot be fetched automatically (see chapter 14): ``root`` is where the reader
            put the file; or ``"crate-alpha:<size>"`` (``B16``, ``L14``), the released CRATE-alpha
            PyTorch weights ``torch/crate_alpha_<size>.pth`` of the Hugging Face repository
            ``UCSC-VLAA/CRATE-alpha``, fetched into the Hugging Face cache.
        root: the folder (a data set) or the file (``"official-crate"``); unused for timm.
        scale: the chapter's scale; at ``gpu-smoke`` nothing is downloaded: the stand-in is made
            below a scratch folder and ``root`` is left untouched.

    Returns:
        the path to read: ``root`` (at ``gpu-smoke`` the stand-in's folder or file); for timm and
        CRATE-alpha the cached weights file.
    """
    smoke = scale is not None and scale.name == "gpu-smoke"
    if what.startswith("crate-alpha:"):
        from cratelib.checkpoint_alpha import CRATE_ALPHA_RELEASES, CRATE_ALPHA_REPO

        size = what.removeprefix("crate-alpha:")
        if size not in CRATE_ALPHA_RELEASES:
            raise ValueError(f"released CRATE-alpha PyTorch weights are "
                             f"{', '.join('crate-alpha:' + s for s in CRATE_ALPHA_RELEASES)}, got {what!r}")
        if smoke:
            from cratelib.smoke import crate_alpha_weights

            return crate_alpha_weights(size)
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(CRATE_ALPHA_REPO, f"torch/crate_alpha_{size}.pth"))
    if what.startswith("timm:"):
        name = what.removeprefix("timm:")
        if smoke:
            from cratelib.smoke import timm_weights

            return timm_weights(name)
        import timm
        from huggingface_hub import hf_hub_download

        cfg = timm.models.get_pretrained_cfg(name)
        if cfg is None or not cfg.hf_hub_id:
            raise ValueError(f"timm has no Hugging Face weights for {name!r}")
        return Path(hf_hub_download(cfg.hf_hub_id, cfg.hf_hub_filename or "model.safetensors"))
    if what == "official-crate":
        if smoke:
            from cratelib.smoke import official_crate

            return official_crate()
        if root is None:
            raise ValueError("fetch('official-crate', root): root is the path of the downloaded official weights")
        return Path(root).expanduser()
    if smoke:
        from cratelib.smoke import write_dataset

        return write_dataset(what)
    if root is None:
        raise ValueError(f"fetch({what!r}, root): root is the folder to download the data set into")
    from cratelib.data import download

    return download(what, root)


def pretrained(spec: str, scale: Scale | None = None) -> torch.nn.Module:
    """A released model in evaluation mode, its weights fetched by :func:`fetch` (stand-ins at the
    ``gpu-smoke`` scale).

    Args:
        spec: ``"crate-alpha:<size>"`` (read by :func:`cratelib.load_crate_alpha_checkpoint`) or
            ``"timm:<name>"`` (``timm.create_model(name, pretrained=True)``).
        scale: the chapter's scale, passed to :func:`fetch`.
    """
    if spec.startswith("crate-alpha:"):
        from cratelib.checkpoint_alpha import load_crate_alpha_checkpoint

        return load_crate_alpha_checkpoint(fetch(spec, scale=scale)).eval()
    if spec.startswith("timm:"):
        import timm

        fetch(spec, scale=scale)  # into the Hugging Face cache, where timm finds it
        return timm.create_model(spec.removeprefix("timm:"), pretrained=True).eval()
    raise ValueError(f"expected 'crate-alpha:<size>' or 'timm:<name>', got {spec!r}")


def with_overrides(scale: Scale, **changes) -> Scale:
    """A copy of ``scale`` with some fields changed (exercises that try a bigger setting)."""
    return replace(scale, **changes)


def glue(name: str, value, display: bool = True) -> None:
    """``myst_nb.glue`` when Jupyter Book's myst-nb is installed (the book build), else a
    stand-in for plain kernels such as Colab: ``display=True`` shows the value, ``display=False``
    does nothing. Chapters store the numbers their text quotes with it. Zero-dimensional numpy
    and torch values are stored as Python numbers, so that format specs in the text apply."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        # numpy / torch scalars: their text form ("np.float64(4.1)") defeats {glue:text}`x:.2f`
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def find_repo_root(start: str | os.PathLike | None = None) -> Path | None:
    """The book's repository root above ``start`` (default: the working directory): the first
    folder holding both ``_config.yml`` and ``pyproject.toml``; None when not inside a checkout
    (e.g. a plain ``pip install`` of the package)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return None


def data_path(relative: str, start: str | os.PathLike | None = None) -> Path | None:
    """Path of a file shipped in the repository (e.g. ``"data/checkpoints/x.pt"``), or None
    when the file (or the checkout) is not there."""
    root = find_repo_root(start)
    if root is None:
        return None
    path = root / relative
    return path if path.exists() else None


def interact(function, **controls):
    """Sliders that redraw ``function(**values)`` below them when a value changes.

    Unlike ``ipywidgets.interact`` nothing is drawn when the cell runs: the chapter shows the
    default figure in the cell above, and an executed notebook (the book build) never captures
    output into an ``Output`` widget. That capture intermittently leaves nbclient waiting for a
    message that never comes, until the cell timeout (600 s per widget cell, seen in the build).

    Args:
        function: called with the controls' values as keyword arguments.
        **controls: ipywidgets value widgets (sliders, dropdowns), keyed by argument name.

    Returns:
        the ``VBox`` of the controls and the output area (displayed by the cell).
    """
    import ipywidgets as widgets
    from IPython.display import clear_output

    out = widgets.Output()

    def redraw(_change=None) -> None:
        with out:
            clear_output(wait=True)
            function(**{name: w.value for name, w in controls.items()})

    for w in controls.values():
        w.observe(redraw, names="value")
    return widgets.VBox([*controls.values(), out])


def shipped_study(stages: Sequence[str] = ("final", "equal_acc", "init"), pca: bool = True, maskcut: bool = True,
                  models: Sequence[str] | None = None, img_size: int = 64):
    """The emergence study's protocol on the shipped study zoo at ``img_size`` (the recipe's 64 px:
    ``data/checkpoints/study``; 128 px: ``data/checkpoints/study-128px``, :func:`cratelib.train.study.study_folders`)
    of ``models`` (default: Part 2's, :data:`cratelib.models.catalogue.PART2_MODELS`), as chapters
    6.9-16 read it: :func:`cratelib.eval.study.protocol.measure_study` with the defaults of
    ``python -m cratelib study`` (256 selection and 256 measurement images), each checkpoint's
    measurement read from the shipped cache (``data/study/measurements``, or ``measurements-128px``:
    :func:`cratelib.train.study.study_measurements`), measured and cached where it is missing.

    Returns:
        ``(result, sets, checkpoints)``: the :class:`~cratelib.eval.study.protocol.StudyResult`, the
        probe sets and the list of :func:`cratelib.train.study.study_checkpoints`.
    """
    import tempfile

    from cratelib.eval.study.protocol import measure_study
    from cratelib.models.catalogue import PART2_MODELS
    from cratelib.train.study import study_checkpoints, study_folders, study_measurements

    found = study_checkpoints(study_folders(img_size)[1], stages, models=PART2_MODELS if models is None else models)
    folder = tempfile.mkdtemp(prefix="crate-study-coco-") if maskcut else None
    result, sets = measure_study(found, pca=pca, maskcut_folder=folder, cache_dir=study_measurements(img_size))
    return result, sets, found
