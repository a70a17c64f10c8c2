"""Shipped recognition models (ONNX), their manifest and cards, and the code that makes them."""

import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
# The shared training and validation images (never copied into the repository).
DATASETS = Path(os.environ.get("POLEWATCH_DATASETS", MODELS_DIR.parent.parent / "shared" / "datasets"))
