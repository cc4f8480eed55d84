"""The Python environment of a Colab runtime, rebuilt on this machine for ``rehearse_colab.py``.

A Colab runtime starts with a fixed set of preinstalled packages and no ``cratelib``; a chapter's
first cell clones the repository and ``%pip install -e``'s it. :func:`colab_venv` makes a virtual
environment (``python -m venv``, no system site-packages) holding exactly the list in
``book/colab_packages.txt`` and keeps it in a cache folder, reused while the list (and this
Python) is unchanged. :func:`reset` puts it back to that list before a rehearsal, uninstalling what
the previous one's cells installed (cratelib, the crf extra). :func:`kernel_dir` writes a Jupyter
kernel spec for it whose kernel imports a stub ``google.colab`` at start-up, as Colab's kernel has
it imported, so that the set-up cell takes its Colab branch.

The cache folder is ``$CRATELIB_CACHE/colab-rehearsal`` (``~/.cache/cratelib/colab-rehearsal``);
the environment takes about 6 GB (torch with its CUDA libraries, as on Colab).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parent
PACKAGES = BOOK / "colab_packages.txt"

STUB = '''"""Stand-in for Colab's ``google.colab`` package (book/rehearse_colab.py): its presence in
``sys.modules`` is what the chapters' set-up cell checks."""
'''


def cache_root() -> Path:
    """``$CRATELIB_CACHE/colab-rehearsal`` (the same root as ``cratelib.io.cache_home``)."""
    return Path(os.environ.get("CRATELIB_CACHE") or "~/.cache/cratelib").expanduser() / "colab-rehearsal"


def requirements(path: Path = PACKAGES) -> list[str]:
    """The requirement lines of ``colab_packages.txt`` (comments and blank lines dropped)."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def env_key(path: Path = PACKAGES) -> str:
    """What the cached environment depends on: the package list and this Python's version."""
    text = "\n".join(requirements(path)) + f"\npython {sys.version_info[:3]} {sys.executable}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _freeze(venv: Path) -> list[str]:
    out = subprocess.run([str(_python(venv)), "-m", "pip", "list", "--format=json"], check=True,
                         capture_output=True, text=True).stdout
    return sorted(f"{p['name'].lower()}=={p['version']}" for p in json.loads(out))


def colab_venv(cache: Path | None = None, log=print) -> Path:
    """The cached environment holding ``colab_packages.txt``, built if missing (minutes: torch
    and its CUDA libraries are copied from the wheel). Environments of older lists are deleted.

    Returns:
        the environment's folder (its interpreter is ``<folder>/bin/python``).
    """
    cache = cache or cache_root()
    venv = cache / f"venv-{env_key()}"
    done = venv / "colab-freeze.txt"  # written last: its presence marks a complete environment
    for old in cache.glob("venv-*"):
        if old != venv:
            log(f"removing the environment of an older package list: {old}")
            shutil.rmtree(old, ignore_errors=True)
    if done.is_file():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log(f"building the Colab environment {venv} from {PACKAGES.name} (once per package list)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(_python(venv)), "-m", "pip", "install", "-q", "--no-warn-script-location",
                    "-r", str(PACKAGES)], check=True)
    check = subprocess.run([str(_python(venv)), "-m", "pip", "check"], capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"the Colab package list is inconsistent (pip check):\n{check.stdout}{check.stderr}")
    frozen = _freeze(venv)
    done.write_text("\n".join(frozen) + "\n")
    log(f"built in {time.perf_counter() - t0:.0f} s: {len(frozen)} packages")
    return venv


def reset(venv: Path, log=print) -> list[str]:
    """Uninstall every package that is not in the environment's recorded list (what earlier
    rehearsals' cells installed: cratelib, pydensecrf2). Returns their names."""
    recorded = {line.split("==")[0] for line in (venv / "colab-freeze.txt").read_text().split()}
    extra = sorted({p.split("==")[0] for p in _freeze(venv)} - recorded)
    if extra:
        log(f"uninstalling what an earlier rehearsal installed: {', '.join(extra)}")
        subprocess.run([str(_python(venv)), "-m", "pip", "uninstall", "-q", "-y", *extra], check=True)
    return extra


def kernel_dir(venv: Path, folder: Path, env: dict[str, str]) -> str:
    """Write a kernel spec ``colab-rehearsal`` under ``folder/kernels`` for ``venv``'s Python,
    with a stub ``google.colab`` imported at kernel start-up (an IPython start-up file).

    Args:
        venv: the environment from :func:`colab_venv`.
        folder: a scratch folder for the stub, the IPython profile and the spec.
        env: environment variables the kernel gets in addition to the ones it inherits.

    Returns:
        the kernel name, to be used with ``KernelSpecManager(kernel_dirs=[folder / "kernels"])``.
    """
    stub = folder / "stub" / "google" / "colab"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text(STUB)
    startup = folder / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-colab.py").write_text("import google.colab  # noqa: F401 (Colab's kernel has it imported)\n")
    spec = folder / "kernels" / "colab-rehearsal"
    spec.mkdir(parents=True, exist_ok=True)
    kernel_env = {**env, "PYTHONPATH": str(folder / "stub"), "IPYTHONDIR": str(folder / "ipython"),
                  "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(venv)}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(_python(venv)), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Colab rehearsal)", "language": "python", "env": kernel_env}, indent=1))
    return "colab-rehearsal"
