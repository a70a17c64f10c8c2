"""On a machine with an NVIDIA GPU: build TensorRT engines from our ONNX models,
compare their outputs with ONNX Runtime and measure throughput of both.

    python benchmarks/tensorrt_compare.py [--precision fp16|fp32] [--engines DIR] [--iters 200]

Prints one JSON object: per model, the engine build time, the largest absolute
and the mean difference between TensorRT and ONNX Runtime outputs on real-like
inputs (synthetic plates and a frame with plates), the read agreement for the
OCR (same top-1 text), and the median latency / throughput of each runtime.
Needs `tensorrt` and `cuda-python` (pip install tensorrt cuda-python).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.config import RecognitionConfig  # noqa: E402
from firmware.recognition import detect, ocr  # noqa: E402
from firmware.recognition.manifest import load as load_manifest  # noqa: E402
from firmware.recognition.onnxrt import OnnxRuntime  # noqa: E402
from firmware.recognition.runtime import RuntimeUnavailable  # noqa: E402
from firmware.recognition.tensorrt import TensorRTRuntime  # noqa: E402
from models import MODELS_DIR  # noqa: E402


def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    from models.synth.plates import render_plate

    crops = [render_plate(rng)[0] for _ in range(32)]
    frame = np.full((720, 1280, 3), 90, np.uint8)
    for i, c in enumerate(crops[:4]):
        c = np.ascontiguousarray(c[:, :, :3])
        h, w = min(c.shape[0], 100), min(c.shape[1], 200)
        frame[100 + i * 140: 100 + i * 140 + h, 200 + i * 200: 200 + i * 200 + w] = c[:h, :w]
    return {"ocr": ocr.preprocess(crops), "detector": detect.preprocess(frame)[0]}


def timeit(fn, iters: int) -> float:
    fn()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="fp16", choices=["fp16", "fp32", "int8"])
    ap.add_argument("--engines", type=Path, default=Path("/tmp/polewatch-engines"))
    ap.add_argument("--iters", type=int, default=200)
    a = ap.parse_args()
    cfg = RecognitionConfig(runtime="tensorrt")
    cfg.tensorrt.precision = a.precision
    cfg.tensorrt.engine_cache = a.engines
    specs = load_manifest(MODELS_DIR)
    trt_rt = TensorRTRuntime(cfg)
    ort_rt = OnnxRuntime(cfg)
    data = inputs(np.random.default_rng(0))
    report: dict = {"tensorrt": str(trt_rt.trt.__version__), "gpu": trt_rt.gpu, "precision": a.precision}
    for name, spec in specs.items():
        x = data[name]
        t0 = time.perf_counter()
        trt_s = trt_rt.load(spec)
        build_s = time.perf_counter() - t0
        ort_s = ort_rt.load(spec)
        got, ref = trt_s.run(x), ort_s.run(x)
        diffs = [np.abs(g - r) for g, r in zip(got, ref)]
        entry = {
            "engine_load_or_build_s": round(build_s, 2),
            "max_abs_diff": float(max(d.max() for d in diffs)),
            "mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
            "batch": int(x.shape[0]),
            "trt_ms_median": round(timeit(lambda: trt_s.run(x), a.iters) * 1e3, 3),
            "ort_ms_median": round(timeit(lambda: ort_s.run(x), max(10, a.iters // 10)) * 1e3, 3),
        }
        if name == "ocr":
            pt = ocr.softmax(got[0], 1.0)
            pr = ocr.softmax(ref[0], 1.0)
            same = [ocr.decode(p).plate == ocr.decode(q).plate for p, q in zip(pt, pr)]
            entry["top1_agreement"] = float(np.mean(same))
            entry["trt_crops_per_s"] = round(x.shape[0] / (entry["trt_ms_median"] / 1e3), 1)
        else:
            lb = detect.letterbox(detect.to_grey(np.zeros((720, 1280), np.uint8)))[1]
            dt = detect.postprocess(got, lb)
            dr = detect.postprocess(ref, lb)
            entry["detections_trt_vs_ort"] = [len(dt), len(dr)]
        report[name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        main()
    except RuntimeUnavailable as exc:  # no TensorRT or no GPU here: say so in one line
        print(f"tensorrt_compare: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
