"""Shipped recognition models (ONNX), their manifest and cards, and the code that makes them."""

import hashlib
import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
# The shared training and validation images (never copied into the repository).
DATASETS = Path(os.environ.get("POLEWATCH_DATASETS", MODELS_DIR.parent.parent / "shared" / "datasets"))


def us_fold(name: str) -> str:
    """Fixed split of us-crops-dev: 'train' or 'val' by a hash of the file name (here, without
    PyTorch, so that the benchmarks can score the validation half on an appliance's install)."""
    return "train" if int(hashlib.md5(name.encode()).hexdigest(), 16) % 2 == 0 else "val"
