"""TensorRT on an NVIDIA GPU (Jetson Orin, or a desktop GPU for the benchmark).

Engines are built from our ONNX files at first use (FP16 where the GPU has
fast FP16; INT8 with a calibration set as an option; on TensorRT 11, which
dropped those builder flags for strongly typed networks, from the models'
shipped fp16 and int8 copies: `models/precision.py`) and cached on disk under
a key made of the built model's sha256, the TensorRT version, the GPU name and
compute capability and the precision, so a new model, a TensorRT upgrade or a
different GPU rebuilds instead of loading an engine that does not fit.
Inference uses device buffers from the CUDA runtime (cuda-python) and the
name-based tensor API that TensorRT 8.5+ and 10 share.

`tensorrt` and `cuda` are imported here only, lazily: without them the
runtime raises RuntimeUnavailable naming the package, and the recognizer can
fall back to ONNX Runtime when configured to.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from firmware.config import RecognitionConfig
from firmware.recognition import ocr
from firmware.recognition.manifest import ModelSpec, variant
from firmware.recognition.runtime import RuntimeUnavailable

log = logging.getLogger(__name__)
MAX_BATCH = ocr.MAX_BATCH  # OCR reads up to this many plates of one frame in one batch


def _import_tensorrt() -> Any:
    try:
        import tensorrt  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RuntimeUnavailable(
            "TensorRT is not installed: on a Jetson it comes with JetPack (python3-libnvinfer); "
            "elsewhere pip install tensorrt. Or set recognition.runtime = \"onnxruntime\"."
        ) from exc
    return tensorrt


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,no-redef]
        except ImportError as exc:
            raise RuntimeUnavailable("cuda-python is not installed: pip install cuda-python") from exc
    return cudart


def _check(result: Any) -> Any:
    """cuda-python calls return (err, value...); raise on a non-zero error."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


def weakly_typed(trt: Any) -> bool:
    """Whether this TensorRT picks reduced precision from builder flags (8.x-10.x). TensorRT 11 removed
    them and builds strongly typed networks only: an engine runs in the ONNX model's own types."""
    return hasattr(trt.BuilderFlag, "FP16")


def engine_key(spec: ModelSpec, trt_version: str, gpu: str, precision: str) -> str:
    """Cache key: any change of model, TensorRT, GPU or precision gives a new engine."""
    h = hashlib.sha256(f"{spec.sha256}|{trt_version}|{gpu}|{precision}".encode()).hexdigest()[:16]
    return f"{spec.name}-{spec.version}-{precision}-{h}.engine"


class _Session:
    """One engine with its execution context, device buffers and stream."""

    def __init__(self, trt: Any, cudart: Any, engine: Any, max_batch: int) -> None:
        self.trt, self.cudart, self.engine = trt, cudart, engine
        self.context = engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in self.names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        self.max_batch = max_batch
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity in bytes)

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, cap = self.buffers.get(name, (0, 0))
        if cap < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self.buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        cudart = self.cudart
        x = np.ascontiguousarray(batch, dtype=np.float32)
        name = self.inputs[0]
        self.context.set_input_shape(name, tuple(x.shape))
        d_in = self._buffer(name, x.nbytes)
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(cudart.cudaMemcpyAsync(d_in, x.ctypes.data, x.nbytes, h2d, self.stream))
        self.context.set_tensor_address(name, d_in)
        outs: list[np.ndarray] = []
        for o in self.outputs:
            shape = tuple(self.context.get_tensor_shape(o))
            out = np.empty(shape, np.float32)
            self.context.set_tensor_address(o, self._buffer(o, out.nbytes))
            outs.append(out)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for o, out in zip(self.outputs, outs):
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, self.buffers[o][0], out.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return outs


class TensorRTRuntime:
    name = "tensorrt"

    def __init__(self, cfg: RecognitionConfig, trt: Any = None, cudart: Any = None) -> None:
        self.cfg = cfg.tensorrt
        self.trt = trt or _import_tensorrt()
        self.cudart = cudart or _import_cudart()
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        props = _check(self.cudart.cudaGetDeviceProperties(0))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        self.gpu = f"{name.strip(chr(0))} sm{props.major}{props.minor}"
        self.cache_dir = Path(self.cfg.engine_cache)

    def plan(self, builder: Any, spec: ModelSpec) -> tuple[str, ModelSpec]:
        """The precision an engine gets here and the ONNX model it is built from: the configured
        precision where the GPU and TensorRT allow it.

        TensorRT 8.x-10.x pick reduced precision from builder flags: FP16 where the GPU has fast
        FP16; INT8 calibrated on `calibration_dir` (the pole's own frames), else from the model's
        shipped int8 copy (explicit Q/DQ, calibrated at release). TensorRT 11 builds strongly typed
        networks in the ONNX model's own types, so FP16 and INT8 come from the copies
        `models/precision.py` ships (manifest `variants`); a model without one builds in FP32, with a
        warning."""
        want = self.cfg.precision
        if not weakly_typed(self.trt):
            if want == "int8" and self.cfg.calibration_dir:
                log.warning("TensorRT %s has no INT8 calibrator: recognition.tensorrt.calibration_dir is not used; "
                            "%s takes its shipped int8 copy if it has one", self.trt.__version__, spec.name)
            for precision in {"int8": ("int8", "fp16"), "fp16": ("fp16",)}.get(want, ()):
                copy = variant(spec, precision)
                if copy is not None:
                    return precision, copy
            if want != "fp32":
                log.warning("TensorRT %s builds strongly typed engines only and %s has no %s copy in its manifest "
                            "(python -m models.precision): it runs in FP32", self.trt.__version__, spec.name, want)
            return "fp32", spec
        fp16 = bool(builder.platform_has_fast_fp16)
        if want == "int8" and builder.platform_has_fast_int8:
            if self.cfg.calibration_dir:
                return "int8", spec
            copy = variant(spec, "int8")
            if copy is not None:
                return "int8", copy
        if want in ("fp16", "int8") and fp16:
            return "fp16", spec
        return "fp32", spec

    def engine_path(self, spec: ModelSpec, precision: str) -> Path:
        return self.cache_dir / engine_key(spec, str(self.trt.__version__), self.gpu, precision)

    def build(self, spec: ModelSpec, precision: str) -> bytes:
        """Parse an ONNX model (`plan`'s) and build a serialized engine in `precision`."""
        trt = self.trt
        builder = trt.Builder(self.logger)
        flags = 0
        if hasattr(trt, "NetworkDefinitionCreationFlag") and int(str(trt.__version__).split(".")[0]) < 10:
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        if not weakly_typed(trt):
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(spec.path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {spec.path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.cfg.workspace_mb << 20)
        inp = network.get_input(0)
        shape = list(inp.shape)
        if shape[0] == -1:  # dynamic batch (the OCR): one profile up to MAX_BATCH
            profile = builder.create_optimization_profile()
            rest = shape[1:]
            profile.set_shape(inp.name, [1, *rest], [8, *rest], [MAX_BATCH, *rest])
            config.add_optimization_profile(profile)
        if weakly_typed(trt):  # strongly typed: the precision is the model's own
            if precision in ("fp16", "int8") and builder.platform_has_fast_fp16:
                config.set_flag(trt.BuilderFlag.FP16)
            if precision == "int8":
                config.set_flag(trt.BuilderFlag.INT8)
                if self.cfg.calibration_dir:  # else the model's Q/DQ nodes carry the scales
                    from firmware.recognition.calibration import Int8Calibrator

                    config.int8_calibrator = Int8Calibrator(trt, self.cudart, spec, Path(self.cfg.calibration_dir),
                                                            self.cache_dir / f"{spec.name}-{spec.sha256[:16]}.calib")
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT failed to build an engine for {spec.path}")
        return bytes(serialized)

    def load(self, spec: ModelSpec) -> _Session:
        """Load the cached engine for this model, GPU and TensorRT, building it on first use."""
        builder = self.trt.Builder(self.logger)
        precision, source = self.plan(builder, spec)
        path = self.engine_path(source, precision)
        runtime = self.trt.Runtime(self.logger)
        engine = None
        if path.exists():
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                log.warning("cached engine %s does not load; rebuilding", path)
        if engine is None:
            log.info("building TensorRT engine for %s (%s, from %s); this takes a while on first use",
                     spec.name, precision, source.path.name)
            data = self.build(source, precision)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            engine = runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise RuntimeError(f"TensorRT could not load the engine it built for {spec.name}")
        return _Session(self.trt, self.cudart, engine, MAX_BATCH)
