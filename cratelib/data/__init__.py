"""Data for cratelib: the embedded synthetic data set and loaders for the paper's real data sets.

* Synthetic shapes with exact ground truth, generated from a seed: :class:`SyntheticConfig`,
  :func:`generate`, :func:`load_or_generate` (disk cache), :class:`SyntheticDataset`,
  :func:`export_coco`, :func:`export_voc`, :func:`load_sample` (the shipped sample).
* Real data sets in their on-disk formats: :class:`ImageFolderDataset`, :class:`CIFAR10`,
  :class:`CIFAR100`, :class:`OxfordPets`, :class:`Flowers102`, :class:`VOCSegmentation`,
  :class:`COCODetection`; :func:`build_dataset` by name; :func:`download` for Colab.
* Photographs for the maps of released models: :func:`photographs` (scikit-image's own).
* Transforms of the paper's recipe: :func:`train_transform`, :func:`eval_transform`.
"""

from ._errors import DatasetFormatError, DatasetNotFoundError
from .classification import CIFAR10, CIFAR100, Flowers102, ImageFolderDataset, OxfordPets
from .export import export_coco, export_voc
from .photographs import PHOTOGRAPHS, photographs
from .factory import DATASETS, build_dataset, download
from .sample import SAMPLE_CONFIGS, load_sample, sample_dir
from .segmentation import VOC_CLASSES, COCODetection, VOCSegmentation
from .shapes import CLASS_NAMES
from .synthetic import SyntheticConfig, SyntheticData, generate
from .synthetic_store import SyntheticDataset, default_cache_dir, load_or_generate
from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

__all__ = [
    "CLASS_NAMES", "SyntheticConfig", "SyntheticData", "SyntheticDataset", "generate",
    "load_or_generate", "default_cache_dir", "export_coco", "export_voc", "SAMPLE_CONFIGS",
    "load_sample", "sample_dir",
    "ImageFolderDataset", "CIFAR10", "CIFAR100", "OxfordPets", "Flowers102", "VOCSegmentation",
    "COCODetection", "VOC_CLASSES", "DATASETS", "build_dataset", "download",
    "DatasetNotFoundError", "DatasetFormatError", "PHOTOGRAPHS", "photographs",
    "IMAGENET_MEAN", "IMAGENET_STD", "train_transform", "eval_transform",
]
