"""A stand-in for the GPU edge: the tensorrt and cuda-python APIs the TensorRT
runtime calls, backed by host memory and ONNX Runtime, recording every call.

It implements the same names and call shapes as TensorRT 10 and cuda-python
(Builder, OnnxParser, Runtime, name-based tensor API; cudaMalloc,
cudaMemcpyAsync, streams) so the runtime's own code — engine cache keys,
rebuilds, buffer plumbing, precision choice — runs unchanged without a GPU.
"""

from __future__ import annotations

import ctypes
import enum
import types

import numpy as np

MAGIC = b"FAKEENGINE1"


def model_precision(onnx_bytes: bytes) -> str:
    """What a strongly typed build runs an ONNX model in: int8 where it holds Q/DQ nodes, fp16 where its
    weights are half precision, else fp32."""
    import onnx

    g = onnx.load_from_string(onnx_bytes).graph
    if any(n.op_type == "QuantizeLinear" for n in g.node):
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in g.initializer):
        return "fp16"
    return "fp32"


class FakeTensorRT(types.SimpleNamespace):
    def __init__(self, version: str = "10.3.0", fast_fp16: bool = True, fast_int8: bool = False,
                 weak_typing: bool = True) -> None:
        """`weak_typing=False` is TensorRT 11: no precision builder flags, no platform_has_fast_*, networks
        strongly typed."""
        super().__init__()
        self.__version__ = version
        self.calls: list[tuple] = []
        tr = self

        class Logger:
            WARNING = 2

            def __init__(self, level):
                self.level = level

        class MemoryPoolType(enum.Enum):
            WORKSPACE = 0

        if weak_typing:
            class BuilderFlag(enum.Enum):
                FP16 = 0
                INT8 = 1
        else:
            class BuilderFlag(enum.Enum):  # type: ignore[no-redef]
                DEBUG = 0

        class NetworkDefinitionCreationFlag(enum.IntEnum):
            EXPLICIT_BATCH = 0
            STRONGLY_TYPED = 1

        class TensorIOMode(enum.Enum):
            INPUT = 0
            OUTPUT = 1

        class _Input:
            def __init__(self, name, shape):
                self.name, self.shape = name, shape

        class Network:
            def __init__(self):
                self.onnx = None
                self.inputs = []

            def get_input(self, i):
                return self.inputs[i]

        class Config:
            def __init__(self):
                self.flags = set()
                self.profiles = []
                self.int8_calibrator = None

            def set_memory_pool_limit(self, pool, size):
                tr.calls.append(("workspace", size))

            def set_flag(self, flag):
                self.flags.add(flag)

            def add_optimization_profile(self, p):
                self.profiles.append(p)

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, mn, opt, mx):
                self.shapes[name] = (mn, opt, mx)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags=0):
                tr.calls.append(("network", flags))
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                if weak_typing:  # the flags pick the precision
                    precision = ("int8" if getattr(BuilderFlag, "INT8", None) in config.flags else
                                 "fp16" if getattr(BuilderFlag, "FP16", None) in config.flags else "fp32")
                else:  # strongly typed: the model's own types
                    precision = model_precision(network.onnx)
                tr.calls.append(("build", network.inputs[0].name, precision, len(config.profiles)))
                if getattr(config, "int8_calibrator", None) is not None:
                    tr.calls.append(("calibrator",))
                return MAGIC + network.onnx

        class OnnxParser:
            def __init__(self, network, logger):
                self.network = network
                self.num_errors = 0

            def parse(self, data: bytes) -> bool:
                import onnx

                try:
                    m = onnx.load_from_string(data)
                except Exception:
                    self.num_errors = 1
                    return False
                self.network.onnx = data
                for i in m.graph.input:
                    dims = [d.dim_value if d.dim_value else -1 for d in i.type.tensor_type.shape.dim]
                    self.network.inputs.append(_Input(i.name, dims))
                return True

            def get_error(self, i):
                return "not an ONNX model"

        class Engine:
            def __init__(self, onnx_bytes):
                import onnxruntime as ort

                self.sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
                self.ins = [i.name for i in self.sess.get_inputs()]
                self.outs = [o.name for o in self.sess.get_outputs()]
                self.num_io_tensors = len(self.ins) + len(self.outs)

            def get_tensor_name(self, i):
                return (self.ins + self.outs)[i]

            def get_tensor_mode(self, name):
                return TensorIOMode.INPUT if name in self.ins else TensorIOMode.OUTPUT

            def create_execution_context(self):
                return Context(self)

        class Context:
            def __init__(self, engine):
                self.engine = engine
                self.shapes = {}
                self.addr = {}
                self.out_cache = None

            def set_input_shape(self, name, shape):
                self.shapes[name] = tuple(shape)
                x = np.zeros(shape, np.float32)
                outs = self.engine.sess.run(None, {name: x})
                for n, o in zip(self.engine.outs, outs):
                    self.shapes[n] = o.shape
                return True

            def get_tensor_shape(self, name):
                return self.shapes[name]

            def set_tensor_address(self, name, ptr):
                self.addr[name] = ptr
                return True

            def execute_async_v3(self, stream):
                name = self.engine.ins[0]
                shape = self.shapes[name]
                n = int(np.prod(shape)) * 4
                x = np.frombuffer(ctypes.string_at(self.addr[name], n), np.float32).reshape(shape)
                outs = self.engine.sess.run(None, {name: x})
                for o_name, o in zip(self.engine.outs, outs):
                    o = np.ascontiguousarray(o, np.float32)
                    ctypes.memmove(self.addr[o_name], o.ctypes.data, o.nbytes)
                tr.calls.append(("execute", shape))
                return True

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data: bytes):
                tr.calls.append(("deserialize", len(data)))
                if not bytes(data).startswith(MAGIC):
                    return None
                return Engine(bytes(data)[len(MAGIC):])

        if weak_typing:
            Builder.platform_has_fast_fp16 = fast_fp16
            Builder.platform_has_fast_int8 = fast_int8
        self.NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
        self.Logger, self.MemoryPoolType, self.BuilderFlag = Logger, MemoryPoolType, BuilderFlag
        self.TensorIOMode, self.Builder, self.OnnxParser, self.Runtime = TensorIOMode, Builder, OnnxParser, Runtime


class FakeCudart(types.SimpleNamespace):
    """cuda-python's runtime module over host memory: (err, value) tuples like the real one."""

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self, gpu: bytes = b"Orin (fake)", major: int = 8, minor: int = 7) -> None:
        super().__init__()
        self.buffers: dict[int, ctypes.Array] = {}
        self.props = types.SimpleNamespace(name=gpu, major=major, minor=minor)
        self.calls: list[str] = []

    def cudaGetDeviceProperties(self, dev):
        return 0, self.props

    def cudaMalloc(self, n):
        buf = ctypes.create_string_buffer(n)
        ptr = ctypes.addressof(buf)
        self.buffers[ptr] = buf
        self.calls.append("malloc")
        return 0, ptr

    def cudaFree(self, ptr):
        self.buffers.pop(ptr, None)
        return (0,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        ctypes.memmove(dst, src, n)
        self.calls.append(kind.name)
        return (0,)

    def cudaMemcpy(self, dst, src, n, kind):
        ctypes.memmove(dst, src, n)
        return (0,)

    def cudaStreamCreate(self):
        return 0, 1

    def cudaStreamSynchronize(self, stream):
        return (0,)
