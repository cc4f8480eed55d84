"""The ablation chapter's models, tables and figures (cratelib.figures.ablations), the zoo's
inventory and the parameter count by part."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cratelib import create_model  # noqa: E402
from cratelib.eval.reference import TABLE2_ABLATION  # noqa: E402
from cratelib.figures import ablations as abl  # noqa: E402
from cratelib.info import param_breakdown  # noqa: E402
from cratelib.models.registry import FAMILIES  # noqa: E402
from cratelib.train.config import load_config  # noqa: E402
from cratelib.train.zoo import shipped, zoo_architecture, zoo_names  # noqa: E402


def test_variants_match_the_zoo_presets_and_table2():
    assert set(abl.VARIANTS) == set(zoo_names())
    for name, v in abl.VARIANTS.items():
        family = FAMILIES[load_config(f"zoo-{name}").model.rsplit("_nano", 1)[0]]
        assert v.attn == family["attn"].upper()
        assert v.block.split(",")[0] == family["mlp"].split("_")[0].upper()
    assert [abl.VARIANTS[n].paper_row for n in abl.TABLE2_NAMES] == list(TABLE2_ABLATION)
    assert abl.VARIANTS["crate-sth"].paper_row is None


def test_paper_values_follow_table2():
    assert abl.paper_values(3) == {"crate": 23.9, "crate-mlp": 22.0, "crate-mhsa": 18.4, "vit": 14.1}


def test_shipped_needs_checkpoint_and_record(tmp_path):
    (tmp_path / "crate.pt").write_bytes(b"x")
    (tmp_path / "crate.json").write_text("{}")
    (tmp_path / "vit.pt").write_bytes(b"x")  # no record: not shipped
    assert shipped(zoo_dir=tmp_path) == ["crate"]
    assert shipped(["vit", "crate"], zoo_dir=tmp_path) == ["crate"]
    note = abl.missing_note(["crate-mlp", "crate-sth"])
    assert "`crate-mlp` (CRATE-MLP)" in note and "`crate-sth` (CRATE-sth)" in note
    assert "All five" in abl.missing_note([])


@pytest.mark.parametrize("name", ["crate", "crate-mlp", "crate-mhsa", "vit", "crate-sth"])
def test_param_breakdown_adds_up_and_follows_the_formulas(name):
    arch = zoo_architecture(name)
    p = param_breakdown(**arch)
    model = create_model(**arch)
    assert p["total"] == sum(t.numel() for t in model.parameters())
    assert p["total"] == p["layers"] + p["embedding"] + p["head"]
    assert p["layers"] == model.depth * (p["attention"] + p["second"] + p["norms"])
    d = arch["dim"]
    attn = {"MSSA": 2 * d * d + d, "MHSA": 4 * d * d + 4 * d}[abl.VARIANTS[name].attn]
    second = 8 * d * d + 5 * d if abl.VARIANTS[name].block == "MLP" else d * d
    assert (p["attention"], p["second"]) == (attn, second)


def test_architecture_rows_mark_unshipped_models():
    params = {n: param_breakdown(**zoo_architecture(n)) for n in ("crate", "vit")}
    rows = abl.architecture_rows(["crate", "vit"], params, {"crate": 0.95})
    assert rows[0]["total"] == f"{params['crate']['total']:,}"
    assert rows[0]["held-out accuracy"] == "95.0 %" and rows[1]["held-out accuracy"] == "not shipped"
    assert rows[1]["attention"] == "MHSA" and rows[1]["second block"] == "MLP"


def _disc(r: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:64, :64]
    return (yy - 24) ** 2 + (xx - 24) ** 2 < r**2 / 4


def test_table2_rows_put_the_paper_beside_the_shipped_models():
    rows = abl.table2_rows({"crate": {"AP50": 10.0, "AP75": 2.0, "AP": 3.0, "miou": 40.0}})
    assert [r["model"] for r in rows] == ["CRATE", "CRATE-MLP", "CRATE-MHSA", "ViT", "CRATE-sth"]
    assert rows[0]["paper AP50"] == 2.1 and rows[0]["paper mIoU"] == 23.9 and rows[0]["ours mIoU"] == 40.0
    assert rows[3]["paper mIoU"] == 14.1 and rows[3]["ours mIoU"] == "not shipped"
    assert np.isnan(rows[4]["paper mIoU"]) and np.isnan(rows[3]["ours AP50"])


def test_figures():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    maps = {"CRATE": torch.rand(3, 8, 8), "ViT": torch.rand(3, 8, 8)}
    fig = abl.plot_model_maps(images, maps, truths=[_disc()] * 3)
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    assert [fig.axes[3 * r].get_ylabel() for r in range(3)] == ["image", "CRATE", "ViT"]
