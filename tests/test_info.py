"""cratelib.info: closed-form counts beside the paper's Table 3, checked against timm's ViTs."""
import timm
import torch

from cratelib.cli import main
from cratelib.info import HEADS, PAPER_PARAMS, explain


def _timm_count(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in timm.create_model(name, **kwargs).parameters())


def test_vit_b_matches_table_3_as_the_official_vit_b8_with_the_21k_head():
    e = explain("vit", "base")
    assert e.candidate == "base, patch8, 21k head" and HEADS["21k head"] == 21843
    assert e.params == _timm_count("vit_base_patch8_224", num_classes=21843) == 102_605_139
    assert e.matches and round(e.params / 1e6, 2) == PAPER_PARAMS[("vit", "base")] == 102.61
    assert e.why_not("ViT-B") == ""


def test_vit_t_misses_table_3_and_says_by_how_much():
    e = explain("vit", "tiny")
    assert e.candidate == "tiny, patch8, 21k head"
    assert e.params == _timm_count("vit_tiny_patch16_224", patch_size=8, num_classes=21843) == 9_742_419
    assert not e.matches
    why = e.why_not("ViT-T")
    assert why.startswith("ViT-T: Table 3's 10.36M is 0.62M more than the closest configuration "
                          "(tiny, patch8, 21k head, 9.74M)")


def test_info_prints_the_vit_rows_and_the_reason_for_the_miss(capsys):
    assert main(["info", "--pattern", "vit_*_patch8"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("vit_")}
    assert set(rows) == {f"vit_{s}_patch8" for s in ("nano", "tiny", "small", "base", "large")}
    assert "5.72M" in rows["vit_tiny_patch8"] and "10.36M" in rows["vit_tiny_patch8"]
    assert "22.06M" in rows["vit_small_patch8"]  # timm's vit_small_patch8_224 with a 1k head
    assert "base, patch8, 21k head: 102.61M" in rows["vit_base_patch8"]
    assert "ViT-T: Table 3's 10.36M is 0.62M more" in out and "ViT-B:" not in out
