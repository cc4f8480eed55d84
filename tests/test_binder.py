"""binder/ gives Binder (no GPU) the CPU build of the torch that constraints.txt pins."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def lines(path: Path) -> list[str]:
    return [l.split("#")[0].strip() for l in path.read_text().splitlines() if l.split("#")[0].strip()]


def pins(path: Path) -> dict[str, str]:
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", l).groups() for l in lines(path)
                if re.fullmatch(r"[A-Za-z0-9_.-]+==\S+", l))


def test_binder_installs_cpu_torch_at_the_pinned_versions():
    binder, pinned = pins(BINDER / "requirements.txt"), pins(ROOT / "constraints.txt")
    for package in ("torch", "torchvision"):
        assert binder[package] == pinned[package] + "+cpu", package
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines(BINDER / "requirements.txt")


def test_binder_installs_the_rest_and_cratelib():
    wanted = {"-r ../requirements.txt", "-c ../constraints.txt", "-e ."}
    assert wanted <= set(lines(BINDER / "requirements.txt"))
    assert (ROOT / "requirements.txt").is_file() and (ROOT / "pyproject.toml").is_file()


def test_binder_python_matches_ci():
    # numpy in constraints.txt needs Python 3.11; Binder's default is older
    assert lines(BINDER / "runtime.txt") == ["python-3.11"]
