"""INT8 calibration for TensorRT from a folder of real frames or plate crops.

INT8 is optional: it roughly halves latency again on a Jetson, but only with
calibration images from the pole's own camera, so it is off unless
`recognition.tensorrt.calibration_dir` is set. The calibration cache is kept
beside the engines so a rebuild does not need the images again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.camera.base import IMAGE_SUFFIXES
from firmware.recognition.manifest import ModelSpec


def calibration_batches(spec: ModelSpec, folder: Path, batch: int = 8, limit: int = 512) -> list[np.ndarray]:
    """Preprocessed input batches for `spec` from the images in `folder`."""
    from firmware.recognition import detect, ocr

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    images = [im for im in (cv2.imread(str(p)) for p in files) if im is not None]
    if not images:
        raise ValueError(f"{folder}: no readable calibration images")
    if spec.name == "ocr":
        tensors = [ocr.preprocess([im]) for im in images]
    else:
        tensors = [detect.preprocess(im)[0] for im in images]
    x = np.concatenate(tensors)
    size = batch if spec.name == "ocr" else 1
    return [x[i: i + size] for i in range(0, len(x) - size + 1, size)]


def Int8Calibrator(trt: Any, cudart: Any, spec: ModelSpec, folder: Path, cache: Path) -> Any:
    """An IInt8EntropyCalibrator2 feeding our preprocessed images through device memory."""
    from firmware.recognition.tensorrt import _check

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.batches = None if cache.exists() else calibration_batches(spec, folder)
            self.index = 0
            self.device = 0

        def get_batch_size(self) -> int:
            return 0 if not self.batches else len(self.batches[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            if not self.batches or self.index >= len(self.batches):
                return None
            x = np.ascontiguousarray(self.batches[self.index])
            self.index += 1
            if not self.device:
                self.device = _check(cudart.cudaMalloc(x.nbytes))
            _check(cudart.cudaMemcpy(self.device, x.ctypes.data, x.nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            return [self.device]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.exists() else None

        def write_calibration_cache(self, data: Any) -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(bytes(data))

    return _Calibrator()
