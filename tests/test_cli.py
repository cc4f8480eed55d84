"""`python -m cratelib info`."""
import subprocess
import sys

from cratelib.cli import main


def test_info_prints_counts_and_the_papers_figures(capsys):
    assert main(["info", "--pattern", "crate_*_patch8"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("crate_")}
    assert "6.09M" in rows["crate_tiny_patch8"] and "5.74M" in rows["crate_tiny_patch8"]
    assert "38.83M" in rows["crate_base_patch8"] and "base, patch8, 21k head" in rows["crate_base_patch8"]
    assert {f"crate_{s}_patch8" for s in ("nano", "tiny", "small", "base", "large")} <= set(rows)
    assert "crate_mlp_tiny_patch16" not in rows and "18.50M" in rows["crate_mlp_tiny_patch8"]
    assert rows["crate_mlp_tiny_patch8"].split()[2] == "-"  # Table 3 has no CRATE-MLP count


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "cratelib", "info", "--pattern", "vit_base_patch8"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "102.61M" in res.stdout
