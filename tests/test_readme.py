"""The README's two set-up commands are the ones CI runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python -m pip install[^\n]*)\n```", readme)
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text()
    for cmd in commands:
        assert cmd in ci
    assert any(c.endswith("python -m pytest -q") for c in commands)
    assert any("jupyter-book build ." in c for c in commands)


def test_requirements_do_not_pin_torch_for_colab():
    reqs = (ROOT / "requirements.txt").read_text()
    torch_line = next(l for l in reqs.splitlines() if l.startswith("torch") and not l.startswith("torchvision"))
    assert "==" not in torch_line and ">=" in torch_line
    assert "torch==" in (ROOT / "constraints.txt").read_text()
    assert "pydensecrf2" in reqs and "jupyter-book>=1.0.4,<2" in reqs
