"""Shipped recognition models (ONNX), their manifest and cards, and the code that makes them."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
