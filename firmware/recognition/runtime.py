"""The inference runtime interface and its registry (Frigate's detector-plugin shape).

A runtime turns a model file plus an input batch into output arrays; the rest
of recognition (letterbox, decode, NMS, crops, OCR beam) is runtime-agnostic.
Each runtime lives in its own module and registers under the key that
`recognition.runtime` in the configuration names.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from firmware.config import RecognitionConfig
from firmware.recognition.manifest import ModelSpec


class RuntimeUnavailable(Exception):
    """The configured runtime cannot run here (package or GPU absent)."""


class InferenceSession(Protocol):
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one input batch through the model; return its outputs in model order."""


class Runtime(Protocol):
    name: str

    def load(self, spec: ModelSpec) -> InferenceSession:
        """Prepare a model for inference (compile, allocate buffers)."""


RUNTIMES = {
    "onnxruntime": "firmware.recognition.onnxrt:OnnxRuntime",
    "tensorrt": "firmware.recognition.tensorrt:TensorRTRuntime",
}


def create(cfg: RecognitionConfig) -> Runtime:
    """The runtime the configuration names, or ONNX Runtime when TensorRT is
    unavailable and `tensorrt.fallback_to_onnxruntime` allows it."""
    mod, cls = RUNTIMES[cfg.runtime].split(":")
    try:
        return getattr(importlib.import_module(mod), cls)(cfg)
    except RuntimeUnavailable:
        if cfg.runtime == "tensorrt" and cfg.tensorrt.fallback_to_onnxruntime:
            import logging

            logging.getLogger(__name__).warning("TensorRT unavailable, falling back to ONNX Runtime", exc_info=True)
            from firmware.recognition.onnxrt import OnnxRuntime

            return OnnxRuntime(cfg)
        raise
