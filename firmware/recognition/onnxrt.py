"""ONNX Runtime on the CPU: the default runtime on a Raspberry Pi and everywhere else.

Threads are set for the device (all cores by default, `recognition.threads`
to cap them, leaving a core for capture on a Pi); sessions are created once.
Their thread pools do not spin: the detector and the OCR each have a pool, run one
after the other, and a pool spinning after its work holds a core the other needs
(2 cores, `benchmarks/recognition_speed.py`: a 1280x720 frame read in 26-38 ms with
spinning, 16-18 ms without; the detector alone 12-13 ms either way).
"""

from __future__ import annotations

import os

import numpy as np

from firmware.config import RecognitionConfig
from firmware.recognition.manifest import ModelSpec
from firmware.recognition.runtime import RuntimeUnavailable


class _Session:
    def __init__(self, sess) -> None:
        self.sess = sess
        self.input_name = sess.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.sess.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, cfg: RecognitionConfig) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RuntimeUnavailable("onnxruntime is not installed: pip install onnxruntime") from exc
        self.ort = ort
        self.threads = cfg.threads or (os.cpu_count() or 1)

    def load(self, spec: ModelSpec) -> _Session:
        so = self.ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see the module docstring
        return _Session(self.ort.InferenceSession(str(spec.path), so, providers=["CPUExecutionProvider"]))
