"""Plate OCR: network, data, synthetic shard generator, training and ONNX export (training needs torch)."""

import numpy as np

from firmware.recognition.ocr import preprocess


def stored(img: np.ndarray) -> np.ndarray:
    """A crop as shards and real pools keep it: the OCR's grey input (OCR_H x OCR_W), at 8 bits
    to take a quarter of the memory; training divides by 255 again."""
    return (preprocess([img])[0, 0] * 255).astype(np.uint8)
