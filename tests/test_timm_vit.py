"""Every driver of cratelib.eval and every figure helper of cratelib.figures on a timm ViT (random
weights, timm's own class and registered name) as well as on a cratelib CRATE: the evaluations
read sizes, layers and heads through the same functions for both."""
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

import cratelib  # noqa: E402
from cratelib.data import SyntheticConfig, generate  # noqa: E402
from cratelib.eval import baselines, classify, localisation  # noqa: E402
from cratelib.eval.extract import layer_features, layer_maps, model_img_size  # noqa: E402
from cratelib.eval.maskcut import explain_cuts, maskcut, upsample_mask  # noqa: E402
from cratelib.eval.maskcut_eval import layerwise_maskcut  # noqa: E402
from cratelib.eval.metrics import best_match_ious  # noqa: E402
from cratelib.eval.ncut import cut_graph  # noqa: E402
from cratelib.eval.noise import noise_sweep  # noqa: E402
from cratelib.eval.pca import layerwise_pca, pca_by_group, pca_grey_rgb  # noqa: E402
from cratelib.eval.scoring import Targets, score_maps  # noqa: E402
from cratelib.eval.segmentation import coarse_segmentation, head_mask_scores, layerwise_miou  # noqa: E402
from cratelib.eval.sources import held_out_samples  # noqa: E402
from cratelib.figures import attention, curves, heads, maskcut as mc, pca_maps, segmentation  # noqa: E402
from cratelib.train import TrainConfig, data_source  # noqa: E402

SIZE, CLASSES = 32, 3


def _timm_vit():
    torch.manual_seed(0)
    return timm.create_model("vit_small_patch8_224", pretrained=False, img_size=SIZE, num_classes=CLASSES,
                             depth=3).eval()


def _crate():
    torch.manual_seed(0)
    return cratelib.create_model("crate_nano_patch8", img_size=SIZE, num_classes=CLASSES, depth=3, dim=48,
                                 num_heads=3).eval()


@pytest.fixture(scope="module", params=["timm ViT", "CRATE"])
def model(request):
    return _timm_vit() if request.param == "timm ViT" else _crate()


@pytest.fixture(scope="module")
def data():
    return generate(SyntheticConfig(4, image_size=SIZE, num_classes=CLASSES, seed=3, split="test"))


@pytest.fixture(scope="module")
def held_out(data, tmp_path_factory):
    return held_out_samples(data, tmp_path_factory.mktemp("coco"))


def _truths(data):
    return [inst == 1 for inst in data.instance_map]


def test_the_size_of_a_timm_vit_is_read_from_its_patch_embedding():
    assert model_img_size(timm.create_model("vit_tiny_patch16_224", pretrained=False)) == 224
    assert model_img_size(_timm_vit()) == SIZE and model_img_size(_crate()) == SIZE


def test_maps_features_and_localisation(model, data):
    images, truths = list(data.images), _truths(data)
    heads_ = 6 if isinstance(model, timm.models.VisionTransformer) else 3
    maps = layer_maps(model, images)  # every layer at the model's own size
    assert maps.shape == (3, 4, heads_, 4, 4)
    torch.testing.assert_close(maps.sum((-2, -1)), torch.ones(3, 4, heads_), atol=1e-5, rtol=0)
    feats, grid = layer_features(model, images, layers=[-1])
    assert grid == (4, 4) and feats.shape[:3] == (1, 4, 16)
    scores = score_maps(maps, Targets.from_masks(truths, (4, 4), labels=list(data.semantic)))
    assert scores["on_main"].shape == scores["auc_half"].shape == (3, 4, heads_) and scores["miou"].shape == (3, 4)
    assert np.isfinite(np.nanmean(scores["auc_half"], (1, 2))).all() and (scores["on_main"].mean((1, 2)) > 0).all()
    measures = localisation.head_measures(maps[-1], truths)
    assert measures["object"].shape == (4, heads_)


def test_segmentation_maskcut_pca_drivers(model, data, held_out):
    samples, gt = held_out
    seg = layerwise_miou(model, samples)
    assert sorted(seg.miou) == [0, 1, 2] and all(0 <= v <= 1 for v in seg.miou.values())
    det = layerwise_maskcut(model, samples, gt, layers=[-1], solver="dense")[-1]
    assert det.run.patch_masks[0].shape == (3, 4, 4) and 0 <= det.ap["no_crf"]["det AP50"] <= 100
    pca = layerwise_pca(model, list(data.images), layers=[0])
    assert pca[0][0].shape == (4, 4, 4) and pca[0][1].shape == (4, 4, 4, 3)


def test_noise_predictions_and_probes(model, data):
    images, truths = list(data.images), _truths(data)
    sweep = noise_sweep(model, images, -1, ((50.0, 0.5),), truths=truths, labels=data.labels)
    assert len(sweep) == 2 and 0 <= sweep[1]["acc"] <= 1 and sweep[1]["iou"].shape == (4,)
    assert classify.predict(model, images).shape == (4,)
    config = TrainConfig.from_dict({"data": "synthetic", "img_size": SIZE, "num_classes": CLASSES,
                                    "data_args": {"num_images": 12}})
    feats, labels = classify.cls_features(model, data_source(config, "val"), batch_size=5)
    assert feats.shape[0] == 12 and labels.shape == (12,)
    assert 0 <= classify.linear_probe(model, data_source(config, "train"), data_source(config, "val")) <= 1


def test_every_figure_helper_draws_the_models_maps_and_features(model, data):
    images, truths = list(data.images), _truths(data)
    maps = layer_maps(model, images)
    K = maps.shape[2]
    feats, grid = layer_features(model, images)
    rgb, fg, pc1 = pca_by_group(feats[-1], grid)
    grey, rgb4 = pca_grey_rgb(feats[-1], grid)
    result = maskcut(feats[-1, 0], grid, solver="dense")
    masks = [upsample_mask(m, images[0].shape[:2]) for m in result.masks]
    measures = localisation.head_measures(maps[-1], truths)
    draws = [
        lambda: attention.plot_layers_heads(images[0], maps[:, 0], truth=truths[0]),
        lambda: attention.plot_map_detail(images[0], maps[-1, 0, 0], truth=truths[0]),
        lambda: attention.plot_dino_display(images, maps[-1, :, 0], truths=truths),
        lambda: segmentation.plot_head_masks(images[:2], head_mask_scores(maps[-1, :2], list(data.semantic[:2])),
                                             list(data.semantic[:2])),
        lambda: curves.plot_layerwise({"m": coarse_segmentation(maps, list(data.semantic)).miou}, "mIoU"),
        lambda: pca_maps.plot_pca_layers(images, torch.stack([pca_by_group(f, grid)[0] for f in feats]), truths),
        lambda: pca_maps.plot_pca_detail(images[0], pc1[0], fg[0], rgb[0], truth=truths[0]),
        lambda: pca_maps.plot_pca(images, rgb4, grey),
        lambda: mc.plot_graph(images[0], cut_graph(feats[-1, 0]), grid, truths=[truths[0]]),
        lambda: mc.plot_cuts(images[0], result, explain_cuts(result), truths=[truths[0]]),
        lambda: mc.plot_maskcut_detail(images[0], result, explain_cuts(result)[0],
                                       best_match_ious([m for m in masks if m.any()], [truths[0]]), [truths[0]]),
        lambda: mc.plot_crf(images[0], [truths[0]], [None], [1.0], [], [truths[0]]),
        lambda: mc.plot_detections(images[:1], {"m": [masks]}, [[truths[0]]]),
        lambda: heads.plot_head_measures({"m": localisation.kind_shares(measures)},
                                         {"background": 0.5, "outline": 0.3, "interior": 0.2}),
        lambda: heads.plot_class_heads({"m": localisation.class_head_means(measures["object"], data.labels, CLASSES)},
                                       ["a", "b", "c"], "on the object"),
    ]
    for draw in draws:
        fig = draw()
        assert fig.axes
        plt.close(fig)
    fig = attention.plot_images_heads(images, maps[-1], truths=truths)
    assert len(fig.axes) == len(images) * (K + 1)  # sized to its panels: no empty axes
    assert fig.axes[K].get_title() == f"head {K}"  # heads numbered from 1
    plt.close(fig)


def test_baselines_run_on_the_same_grid(model, data):
    truths = _truths(data)
    grid = tuple(layer_maps(model, list(data.images), layers=[-1]).shape[-2:])
    assert baselines.brightness_maps(list(data.images)).shape[-2:] == grid
    assert baselines.random_map_ious(truths, grid, heads=2).shape == (4,)


def test_the_evaluate_command_on_a_timm_name(tmp_path):
    from cratelib.cli_evaluate import main

    argv = ["evaluate", "coarse-seg", "--model", "vit_small_patch8_224", "--img-size", str(SIZE), "--num-images", "2",
            "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "out" / "coarse-seg" / "metrics.json").read_text())
    assert metrics["img_size"] == SIZE and metrics["grid"] == [4, 4] and len(metrics["miou"]) == 12
