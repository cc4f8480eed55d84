"""The paper's reported numbers, for side-by-side tables (percent, as printed).

Fig. 4b values are read from the bar chart.  Table 1/2 detection entries are
``(AP50, AP75, AP)`` as the paper orders them.
"""

from __future__ import annotations

FIG4B_VOC_MIOU: dict[str, float] = {
    "CRATE-S/8": 23.9, "CRATE-B/8": 23.6, "ViT-S/8": 14.1, "ViT-B/8": 19.2,
    "DINO ViT-S/8": 27.0, "DINO ViT-B/8": 27.3,
}

# model -> {"det": (AP50, AP75, AP), "seg": (AP50, AP75, AP)}, COCO val2017, no CRF
TABLE1_COCO_MASKCUT: dict[str, dict[str, tuple[float, float, float]]] = {
    "CRATE-S/8": {"det": (2.9, 1.0, 1.1), "seg": (1.8, 0.7, 0.8)},
    "CRATE-B/8": {"det": (2.9, 1.0, 1.3), "seg": (2.2, 0.7, 1.0)},
    "ViT-S/8": {"det": (0.1, 0.1, 0.0), "seg": (0.0, 0.0, 0.0)},
    "ViT-B/8": {"det": (0.8, 0.2, 0.4), "seg": (0.7, 0.5, 0.4)},
    "DINO ViT-S/8": {"det": (5.0, 2.0, 2.4), "seg": (4.0, 1.3, 1.7)},
    "DINO ViT-B/8": {"det": (5.1, 2.3, 2.5), "seg": (4.1, 1.3, 1.8)},
}

# S/8 ablation: model -> (det AP50, AP75, AP, VOC mIoU)
TABLE2_ABLATION: dict[str, tuple[float, float, float, float]] = {
    "CRATE (MSSA+ISTA)": (2.1, 0.7, 0.8, 23.9),
    "CRATE-MLP (MSSA+MLP)": (0.2, 0.2, 0.2, 22.0),
    "CRATE-MHSA (MHSA+ISTA)": (0.1, 0.1, 0.0, 18.4),
    "ViT (MHSA+MLP)": (0.1, 0.1, 0.0, 14.1),
}

# model -> data set -> top-1 after fine-tuning from ImageNet-21k
TABLE3_TRANSFER: dict[str, dict[str, float]] = {
    "CRATE-T": {"ImageNet-1K": 62.7, "CIFAR10": 94.1, "CIFAR100": 76.7, "Flowers-102": 82.2, "Pets": 77.0},
    "CRATE-S": {"ImageNet-1K": 74.2, "CIFAR10": 97.2, "CIFAR100": 84.1, "Flowers-102": 92.2, "Pets": 86.4},
    "CRATE-B": {"ImageNet-1K": 79.5, "CIFAR10": 98.1, "CIFAR100": 87.9, "Flowers-102": 96.7, "Pets": 90.7},
    "ViT-T": {"ImageNet-1K": 71.8, "CIFAR10": 97.2, "CIFAR100": 84.4, "Flowers-102": 92.1, "Pets": 86.2},
    "ViT-B": {"ImageNet-1K": 85.8, "CIFAR10": 98.9, "CIFAR100": 90.1, "Flowers-102": 99.5, "Pets": 91.8},
}
TABLE3_PARAMS_M: dict[str, float] = {
    "CRATE-T": 5.74, "CRATE-S": 14.12, "CRATE-B": 38.83, "ViT-T": 10.36, "ViT-B": 102.61,
}
