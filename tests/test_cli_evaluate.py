"""``evaluate`` command: files written, cache reused, clear errors."""

import argparse
import io
import json
import sys

import pytest

from cratelib.cli_evaluate import add_evaluate_parser, main


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("CRATELIB_CACHE", str(tmp_path / "cache"))

    def go(*argv):
        base = ["evaluate", *argv, "--model", "crate_nano_patch8", "--num-images", "2",
                "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
        return main(base)

    return go, tmp_path / "out"


def test_parser_is_attachable_and_dispatches():
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evaluate", "maskcut", "--model", "m", "--no-crf"])
    assert args.task == "maskcut" and args.crf is False and args.func.__name__ == "run_evaluate"


def test_coarse_seg_writes_metrics_and_reuses_the_cache(run):
    go, out = run
    assert go("coarse-seg", "--img-size", "32") == 0
    first = json.loads((out / "coarse-seg" / "metrics.json").read_text())
    assert first["cache_hit"] is False and first["layers"] == list(range(6))
    assert set(first["miou"]) == {str(l) for l in range(6)}
    assert all(0 <= v <= 1 for v in first["miou"].values())
    assert (out / "coarse-seg" / "coarse_seg_layers.png").stat().st_size > 0
    assert go("coarse-seg", "--img-size", "32") == 0
    second = json.loads((out / "coarse-seg" / "metrics.json").read_text())
    assert second["cache_hit"] is True and second["miou"] == first["miou"]


def test_maskcut_writes_detections_and_coco_scores(run):
    go, out = run
    assert go("maskcut", "--img-size", "64", "--no-crf") == 0
    metrics = json.loads((out / "maskcut" / "metrics.json").read_text())
    assert set(metrics["coco"]) == {"no_crf"} and set(metrics["coco"]["no_crf"]) == {"bbox", "segm"}
    dets = json.loads((out / "maskcut" / "detections.json").read_text())
    assert all(d["category_id"] == 1 and d["image_id"] in (1, 2) for d in dets)
    assert metrics["figures"] == ["maskcut.png"] and metrics["grid"] == [8, 8]


def test_progress_bars_only_on_a_terminal(run, capsys, monkeypatch):
    """In a notebook kernel (stderr is no terminal) tqdm.auto would draw widgets that the static
    book cannot show, so the evaluation draws no bar there; on a terminal it does."""
    go, _ = run
    assert go("maskcut", "--img-size", "64", "--no-crf") == 0
    assert "it/s" not in capsys.readouterr().err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert go("maskcut", "--img-size", "64", "--no-crf", "--no-cache") == 0
    assert "maskcut: 100%" in sys.stderr.getvalue() and "forward: 100%" in sys.stderr.getvalue()


def test_the_callers_matplotlib_backend_is_kept(run, monkeypatch):
    """A script gets its backend back; a Jupyter kernel's is never switched (switching drops
    IPython's figure formatter and the notebook's later figures become text)."""
    import types

    import matplotlib

    go, _ = run
    use, before, switched = matplotlib.use, matplotlib.get_backend(), []
    monkeypatch.setattr(matplotlib, "use", lambda name, *a, **k: (switched.append(name), use(name, *a, **k)))
    use("svg")
    try:
        assert go("coarse-seg", "--img-size", "32") == 0
        assert switched == ["Agg", "svg"] and matplotlib.get_backend() == "svg"
        switched.clear()
        monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
        assert go("coarse-seg", "--img-size", "32") == 0
        assert switched == [] and matplotlib.get_backend() == "svg"
    finally:
        use(before)


def test_attention_and_pca_figures(run):
    go, out = run
    assert go("attention", "--img-size", "32", "--layer", "-1") == 0
    assert go("pca", "--img-size", "32") == 0
    att = json.loads((out / "attention" / "metrics.json").read_text())
    assert len(att["mass_mask_coverage_per_head"]) == 6 and att["figures"] == ["attention.png"]
    pca = json.loads((out / "pca" / "metrics.json").read_text())
    assert sorted(pca["figures"]) == ["pca_eq12.png", "pca_pc1_pc234.png"]


def test_bad_arguments_give_a_message_and_exit_code_2(run, capsys):
    go, _ = run
    assert go("coarse-seg", "--data", "coco", "--root", "/nonexistent") == 2
    assert "needs label maps" in capsys.readouterr().err
    assert go("attention", "--data", "folder") == 2
    assert "needs --root" in capsys.readouterr().err
    assert main(["evaluate", "pca", "--model", "nope", "--num-images", "1"]) == 2
    assert "neither a checkpoint" in capsys.readouterr().err


def test_the_shipped_crate_runs_at_its_own_64_px_by_default(tmp_path, monkeypatch):
    from cratelib.train.zoo import ZOO_DIR

    monkeypatch.setenv("CRATELIB_CACHE", str(tmp_path / "cache"))
    argv = ["evaluate", "attention", "--model", str(ZOO_DIR / "crate.pt"), "--data", "embedded", "--num-images", "2",
            "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "out" / "attention" / "metrics.json").read_text())
    assert metrics["img_size"] == 64 and metrics["grid"] == [8, 8]  # not 224 px, a 28x28 grid it never saw
    assert metrics["layers"] == [-2]  # CRATE's pre-named layer, the penultimate
    vit = [a if a != str(ZOO_DIR / "crate.pt") else str(ZOO_DIR / "vit.pt") for a in argv]
    assert main(vit) == 0
    assert json.loads((tmp_path / "out" / "attention" / "metrics.json").read_text())["layers"] == [-1]  # a ViT's last
    assert main([*argv, "--img-size", "128"]) == 0
    assert json.loads((tmp_path / "out" / "attention" / "metrics.json").read_text())["grid"] == [16, 16]


def test_maskcut_with_crf_but_no_pydensecrf_says_how_to_fix_it(run, capsys, monkeypatch):
    """Colab has no pydensecrf: the default --crf must end in one clear line, not a traceback."""
    go, out = run
    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # makes `import pydensecrf.densecrf` fail
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    assert go("maskcut", "--img-size", "32") == 2
    err = capsys.readouterr().err
    assert "pip install pydensecrf2" in err and "--no-crf" in err and "Traceback" not in err
    assert not (out / "maskcut" / "metrics.json").exists()
    assert go("maskcut", "--img-size", "32", "--no-crf") == 0
