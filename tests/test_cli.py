"""`python -m cratelib info` and `python -m cratelib data`."""
import subprocess
import sys

import pytest

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


def test_data_command_exports_coco_that_pycocotools_reads(tmp_path, capsys):
    from pycocotools.coco import COCO

    from cratelib.cli import main

    rc = main(["data", "--num-images", "4", "--max-objects", "3", "--format", "coco",
               "--out", str(tmp_path / "coco"), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    coco = COCO(str(tmp_path / "coco" / "annotations" / "instances_val2017.json"))
    assert len(coco.getImgIds()) == 4
    assert len(coco.getAnnIds()) >= 4  # one main object per image, up to two more
    assert len(list((tmp_path / "coco" / "val2017").glob("*.jpg"))) == 4
    assert "4 images" in capsys.readouterr().out


def test_data_command_exports_voc_layout(tmp_path):
    from cratelib.cli import main
    from cratelib.data import VOCSegmentation

    rc = main(["data", "--num-images", "3", "--format", "voc", "--split", "test",
               "--out", str(tmp_path / "VOC2012"), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    listing = (tmp_path / "VOC2012" / "ImageSets" / "Segmentation" / "test.txt").read_text().split()
    assert len(listing) == 3
    assert len(list((tmp_path / "VOC2012" / "SegmentationClass").glob("*.png"))) == 3
    image, target = VOCSegmentation(tmp_path / "VOC2012", split="test")[0]
    assert target.shape == (64, 64) and 0 < int((target > 0).sum()) < 64 * 64


def test_data_command_errors_name_what_was_expected(tmp_path, capsys):
    from cratelib.cli import main

    with pytest.raises(SystemExit):
        main(["data", "--format", "voc"])
    assert "needs --out" in capsys.readouterr().err
    assert main(["data", "--image-size", "30", "--cache-dir", str(tmp_path)]) == 2
    assert "multiple of 8" in capsys.readouterr().err


def test_data_command_npz_reports_the_cache_file_it_wrote(tmp_path, capsys):
    from cratelib.data import SyntheticConfig
    from cratelib.data.synthetic_store import cache_path

    assert main(["data", "--num-images", "2", "--cache-dir", str(tmp_path)]) == 0
    path = cache_path(SyntheticConfig(2, split="val"), tmp_path)
    assert path.is_file() and str(path) in capsys.readouterr().out


def test_info_loads_no_evaluation_code():
    """`info` answers from the configs: it must not pull in the evaluations (eval, figures,
    torchvision, matplotlib), whose imports took most of its start-up before."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom cratelib.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['info'])\n"
            "print(sorted(m for m in ('cratelib.eval', 'cratelib.figures', 'torchvision', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
