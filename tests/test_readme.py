"""The README's two set-up commands are the ones CI runs: .ci/run and the GitHub workflows."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python -m pip install[^\n]*)\n```", readme)


def command(ends: str) -> str:
    return next(c for c in readme_commands() if ends in c)


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(data: dict) -> list[dict]:
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def uses(data: dict, action: str) -> list[dict]:
    """The steps that use ``action`` (any version)."""
    return [s for s in steps(data) if s.get("uses", "").split("@")[0] == action]


def test_ci_runs_the_readme_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text()
    for cmd in commands:
        assert cmd in ci
    assert any(c.endswith("python -m pytest -q") for c in commands)
    assert any("jupyter-book build ." in c for c in commands)


SYNC_URL = "python book/sync_repo_url.py --url \"${{ github.server_url }}/${{ github.repository }}\""


def test_workflows_run_exactly_the_readme_commands():
    """Each workflow runs the README's command on Python 3.11 with the pip cache; the book's
    first points the chapters at the repository being built (a fork's book links to the fork)."""
    expected = {"book.yml": command("jupyter-book build ."), "tests.yml": command("pytest")}
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(expected)
    for name, cmd in expected.items():
        data = workflow(name)
        runs = [s["run"].strip() for s in steps(data) if "run" in s]
        if name == "book.yml":
            sync, *runs = runs
            assert sync.endswith(" && " + SYNC_URL), sync
        assert runs == [cmd], name
        (python,) = uses(data, "actions/setup-python")
        assert str(python["with"]["python-version"]) == "3.11" and python["with"]["cache"] == "pip"


def test_book_workflow_publishes_on_push_to_main():
    data = workflow("book.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    for action in ("actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert len(uses(data, action)) == 1, action
    assert uses(data, "actions/upload-pages-artifact")[0]["with"]["path"] == "_build/html"
    assert data["permissions"]["pages"] == "write" and data["permissions"]["id-token"] == "write"


def test_book_workflow_keeps_the_jupyter_cache():
    """The executed chapters are cached between runs, where the build looks for them, and the
    cache is never reused across a change of the library, data, configuration or pins (jupyter-
    cache itself only notices changed code cells)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    assert config["execute_notebooks"] == "cache"
    cache_dir = config.get("cache") or "_build/.jupyter_cache"  # Jupyter Book's default
    (cache,) = uses(workflow("book.yml"), "actions/cache")
    assert cache["with"]["path"] == cache_dir
    library = re.match(r"jupyter-cache-(\$\{\{ hashFiles\([^)]*\) \}\})-", cache["with"]["key"])
    assert library, cache["with"]["key"]
    for path in ("cratelib/**", "data/**", "_config.yml", "requirements.txt", "constraints.txt"):
        assert f"'{path}'" in library.group(1), path
    assert cache["with"]["restore-keys"].strip() == f"jupyter-cache-{library.group(1)}-"


def test_book_workflow_sets_the_url_before_the_cache_key_and_the_build():
    names = [s.get("name") or s.get("uses", "").split("@")[0] for s in steps(workflow("book.yml"))]
    sync = names.index("Point the book at this repository")
    assert sync < names.index("actions/cache") < names.index("Build the book")


def test_tests_workflow_runs_on_pull_requests():
    assert "pull_request" in workflow("tests.yml")["on"]


def test_requirements_do_not_pin_torch_for_colab():
    reqs = (ROOT / "requirements.txt").read_text()
    torch_line = next(l for l in reqs.splitlines() if l.startswith("torch") and not l.startswith("torchvision"))
    assert "==" not in torch_line and ">=" in torch_line
    assert "torch==" in (ROOT / "constraints.txt").read_text()
    assert "pydensecrf2" in reqs and "jupyter-book>=1.0.4,<2" in reqs
