"""``python -m cratelib.data [out_dir]``: (re)write the shipped samples (default data/sample)."""

import sys
from pathlib import Path

from .sample import REPO_SAMPLE_DIR, SAMPLE_CONFIGS, write_sample

target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_SAMPLE_DIR
for name in SAMPLE_CONFIGS:
    print(write_sample(name, target / name))
