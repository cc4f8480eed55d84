"""What a classifier reads off the images: predictions, frozen features and linear probes.

* :func:`predict` - top-1 classes of a model on uint8 images (the evaluations' preprocessing);
* :func:`cls_features`, :func:`linear_probe` - a frozen model's pooled class-token features
  ``norm(z^{L+1}_CLS)`` (the input of eq. (9)'s classifier) and a logistic regression on them;
* :func:`probe_accuracy` - test accuracy of a linear classifier on any features;
* :func:`colour_histogram_features`, :func:`object_appearance_features`,
  :func:`mask_shape_features` - hand-made features of the embedded data set, whose probes show
  which cues carry the class (chapter 6).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from cratelib.data import SyntheticData
from cratelib.eval.extract import model_img_size, to_model_input

__all__ = [
    "predict",
    "cls_features",
    "linear_probe",
    "probe_accuracy",
    "colour_histogram_features",
    "object_appearance_features",
    "mask_shape_features",
]


@torch.no_grad()
def predict(model: nn.Module, images: Sequence[np.ndarray], img_size: int | None = None,
            batch_size: int = 256) -> np.ndarray:
    """``(J,)`` top-1 classes of ``model`` on uint8 images (resized to ``img_size``, default the
    model's own, and normalised as every evaluation does), on the device the model is on."""
    size = img_size or model_img_size(model)
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(list(images[start:start + batch_size]), size).to(device)
        out.append(model(x).argmax(-1).cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def cls_features(model: nn.Module, source, device: torch.device | str = "cpu",
                 batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The frozen model's pooled features and the labels of every image of ``source``.

    Args:
        model: a cratelib model (``forward_features`` and ``forward_head(pre_logits=True)``).
        source: a data source of :mod:`cratelib.train` (``cratelib.train.data_source``).

    Returns:
        ``(features (n, d) float32, labels (n,) int64)``: ``norm(z^{L+1}_CLS)``, what the
        classifier of eq. (9) reads.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    feats, labels = [], []
    for x, y in source.batches(batch_size, device, generator=None, augment=False):
        feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                   max_iter: int = 1000) -> float:
    """Test accuracy of a linear classifier (standardised features, multinomial logistic
    regression) fitted on the training features: how much class information they hold linearly."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    clf.fit(x_train, y_train)
    return float(clf.score(x_test, y_test))


def linear_probe(model: nn.Module, train_source, test_source, device: torch.device | str = "cpu") -> float:
    """Test accuracy of a logistic regression fitted on the frozen features of ``train_source``.

    The model's weights are not changed; only a new linear classifier is learned
    (:func:`probe_accuracy` on :func:`cls_features`).
    """
    x_train, y_train = cls_features(model, train_source, device)
    x_test, y_test = cls_features(model, test_source, device)
    return probe_accuracy(x_train, y_train, x_test, y_test)


def colour_histogram_features(data: SyntheticData, bins: int = 4) -> np.ndarray:
    """``(n, bins**3)``: the joint RGB histogram of each whole image (what colour alone offers)."""
    q = (data.images.astype(np.int64) * bins // 256).reshape(len(data), -1, 3)
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    counts = np.stack([np.bincount(row, minlength=bins**3) for row in idx])
    return counts / idx.shape[1]


def object_appearance_features(data: SyntheticData) -> np.ndarray:
    """``(n, 7)``: mean and standard deviation of the RGB values inside the main object's exact
    mask, and the mean absolute vertical pixel difference there (its texture). These use the
    ground truth to look only at the object: everything about its appearance except its shape."""
    feats = []
    for image, inst in zip(data.images, data.instance_map):
        mask = inst == 1
        px = image[mask].astype(np.float64) / 255
        grad = np.abs(np.diff(image.astype(np.float64) / 255, axis=0))  # (H-1, W, 3)
        texture = grad[mask[1:] & mask[:-1]].mean()
        feats.append(np.r_[px.mean(0), px.std(0), texture])
    return np.asarray(feats)


def mask_shape_features(data: SyntheticData, size: int = 16) -> np.ndarray:
    """``(n, size**2)``: the main object's exact mask, cropped to its tight box and resized to
    ``size x size``: its shape, once one knows where the object is."""
    feats = []
    for inst in data.instance_map:
        mask = inst == 1
        ys, xs = np.nonzero(mask)
        crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8) * 255
        small = Image.fromarray(crop).resize((size, size), Image.BILINEAR)
        feats.append(np.asarray(small, np.float64).ravel() / 255)
    return np.asarray(feats)
