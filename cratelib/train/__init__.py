"""Training: validated configs with presets, one training loop, fine-tuning, the checkpoint zoo."""
from cratelib.train.config import TrainConfig, load_config, preset_names
from cratelib.train.loop import TrainingDiverged, TrainResult, cosine_lr, data_source, evaluate, train

__all__ = ["TrainConfig", "load_config", "preset_names", "train", "evaluate", "cosine_lr", "data_source",
           "TrainResult", "TrainingDiverged"]
