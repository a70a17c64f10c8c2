"""On a machine with an NVIDIA GPU: build TensorRT engines from our ONNX models,
compare their outputs with ONNX Runtime and measure throughput of both.

    python benchmarks/tensorrt_compare.py [--precision fp16|fp32|int8] [--engines DIR]
                                          [--data DIR] [--iters 200]

`--data DIR` takes real inputs: DIR/crops (plate crops with a labels.csv in the
shared crop format) and DIR/frames (scene images); without it the inputs are
synthetic plates and a grey frame with four of them (needs the plate fonts).
Prints one JSON object: per model, the engine build time, the largest absolute
and the mean difference between TensorRT and ONNX Runtime outputs, the OCR's
read agreement (same top-1 text, decoded as the recognizer decodes) and exact
rate against the labels for each runtime, the detector's boxes matched between
runtimes, whole reads of each frame through the Recognizer on each runtime,
and the median latency / throughput of each runtime.
Needs `tensorrt` and `cuda-python` (pip install tensorrt cuda-python); exits 2
with one line when either or the GPU is absent.
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
from firmware.evaluation import load_labels  # noqa: E402
from firmware.imageio import expand, read_image  # noqa: E402
from firmware.recognition import Recognizer, detect, ocr  # noqa: E402
from firmware.recognition.manifest import load as load_manifest  # noqa: E402
from firmware.recognition.onnxrt import OnnxRuntime  # noqa: E402
from firmware.recognition.runtime import RuntimeUnavailable  # noqa: E402
from firmware.recognition.tensorrt import TensorRTRuntime  # noqa: E402
from models import MODELS_DIR  # noqa: E402


def synthetic_inputs(rng: np.random.Generator) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    from models.synth.plates import render_plate

    plates = [render_plate(rng) for _ in range(ocr.MAX_BATCH)]
    crops = [np.ascontiguousarray(p[0][:, :, :3]) for p in plates]
    frame = np.full((720, 1280, 3), 90, np.uint8)
    for i, c in enumerate(crops[:4]):
        h, w = min(c.shape[0], 100), min(c.shape[1], 200)
        frame[100 + i * 140: 100 + i * 140 + h, 200 + i * 200: 200 + i * 200 + w] = c[:h, :w]
    return crops, [str(p[1]) for p in plates], [frame]


def real_inputs(data: Path) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    """Up to one OCR batch of labelled crops from DATA/crops (the shared crop format) and every image
    in DATA/frames."""
    _, labels = load_labels(data / "crops")
    files = list(labels)[: ocr.MAX_BATCH]
    crops = [read_image(data / "crops" / f) for f in files]
    frames = [read_image(p) for p in expand([str(data / "frames")])]
    return crops, [labels[f][0].plate for f in files], frames


def timeit(fn, iters: int) -> float:
    fn()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def diff(got: list[np.ndarray], ref: list[np.ndarray]) -> tuple[float, float]:
    d = [np.abs(g - r) for g, r in zip(got, ref)]
    return float(max(x.max() for x in d)), float(np.mean([x.mean() for x in d]))


def compare_ocr(spec, trt_s, ort_s, crops: list[np.ndarray], labels: list[str], iters: int) -> dict:
    x = ocr.preprocess(crops)
    got, ref = trt_s.run(x), ort_s.run(x)
    t = float(spec.extra.get("temperature", 1.0))
    dec = ocr.DECODERS[spec.extra.get("decoder", "slots")]
    reads_t = [dec(p).plate for p in ocr.softmax(got[0], t)]
    reads_r = [dec(p).plate for p in ocr.softmax(ref[0], t)]
    mx, mean = diff(got, ref)
    trt_ms = timeit(lambda: trt_s.run(x), iters) * 1e3
    ort_ms = timeit(lambda: ort_s.run(x), max(10, iters // 10)) * 1e3
    truth = [ocr.normalise(s) for s in labels]
    return {
        "batch": int(x.shape[0]), "max_abs_diff": mx, "mean_abs_diff": mean,
        "top1_agreement": float(np.mean([a == b for a, b in zip(reads_t, reads_r)])),
        "exact_trt": float(np.mean([a == b for a, b in zip(reads_t, truth)])),
        "exact_ort": float(np.mean([a == b for a, b in zip(reads_r, truth)])),
        "trt_ms_median": round(trt_ms, 3), "ort_ms_median": round(ort_ms, 3),
        "trt_crops_per_s": round(x.shape[0] / (trt_ms / 1e3), 1),
        "ort_crops_per_s": round(x.shape[0] / (ort_ms / 1e3), 1),
    }


def compare_detector(trt_s, ort_s, frames: list[np.ndarray], iters: int) -> dict:
    diffs, counts, matched = [], [], []
    for frame in frames:
        x, lb = detect.preprocess(frame)
        got, ref = trt_s.run(x), ort_s.run(x)
        diffs.append(diff(got, ref))
        dt, dr = detect.postprocess(got, lb), detect.postprocess(ref, lb)
        counts.append([len(dt), len(dr)])
        if dt and dr:
            iou = detect.iou_matrix(detect.to_xyxy([d.box for d in dt]), detect.to_xyxy([d.box for d in dr]))
            matched.append(int((iou.max(1) >= 0.9).sum()))
        else:
            matched.append(0)
    x = detect.preprocess(frames[0])[0]
    return {
        "frames": len(frames), "max_abs_diff": max(d[0] for d in diffs),
        "mean_abs_diff": float(np.mean([d[1] for d in diffs])),
        "detections_trt_vs_ort": counts, "boxes_matching_iou_0.9": matched,
        "trt_ms_median": round(timeit(lambda: trt_s.run(x), iters) * 1e3, 3),
        "ort_ms_median": round(timeit(lambda: ort_s.run(x), max(10, iters // 10)) * 1e3, 3),
    }


def compare_reads(models: dict, frames: list[np.ndarray], precision: str, engines: Path) -> dict:
    """Whole reads (detect, crop, OCR, checks) of every frame through each runtime."""
    out: dict = {}
    reads: dict[str, list[list[str]]] = {}
    for runtime in ("tensorrt", "onnxruntime"):
        cfg = RecognitionConfig(runtime=runtime)
        cfg.tensorrt.precision = precision
        cfg.tensorrt.engine_cache = engines
        rec = Recognizer(cfg, models, stills=True)
        rec.read_frame(frames[0])  # warm-up
        ms, texts = [], []
        for f in frames:
            t = time.perf_counter()
            rs = rec.read_frame(f)
            ms.append((time.perf_counter() - t) * 1e3)
            texts.append(sorted(r.plate for r in rs))
        reads[runtime] = texts
        out[f"{runtime}_frame_ms_median"] = round(float(np.median(ms)), 2)
    out["frames_read_alike"] = sum(a == b for a, b in zip(reads["tensorrt"], reads["onnxruntime"]))
    out["frames"] = len(frames)
    out["reads_trt"] = reads["tensorrt"]
    out["reads_ort"] = reads["onnxruntime"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="fp16", choices=["fp16", "fp32", "int8"])
    ap.add_argument("--engines", type=Path, default=Path("/tmp/polewatch-engines"))
    ap.add_argument("--data", type=Path, help="folder with crops/ (labels.csv) and frames/ of real images")
    ap.add_argument("--iters", type=int, default=200)
    a = ap.parse_args()
    cfg = RecognitionConfig(runtime="tensorrt")
    cfg.tensorrt.precision = a.precision
    cfg.tensorrt.engine_cache = a.engines
    specs = load_manifest(MODELS_DIR)
    trt_rt = TensorRTRuntime(cfg)
    ort_rt = OnnxRuntime(cfg)
    crops, labels, frames = real_inputs(a.data) if a.data else synthetic_inputs(np.random.default_rng(0))
    report: dict = {"tensorrt": str(trt_rt.trt.__version__), "gpu": trt_rt.gpu, "precision": a.precision,
                    "inputs": str(a.data or "synthetic")}
    sessions = {}
    for name, spec in specs.items():
        used, source = trt_rt.plan(trt_rt.trt.Builder(trt_rt.logger), spec)
        report[f"{name}_engine"] = {"precision": used, "from": source.path.name}  # TensorRT 11: the copy
        t0 = time.perf_counter()
        sessions[name] = (trt_rt.load(spec), ort_rt.load(spec))
        report[f"{name}_engine_load_or_build_s"] = round(time.perf_counter() - t0, 2)
    report["ocr"] = compare_ocr(specs["ocr"], *sessions["ocr"], crops, labels, a.iters)
    report["detector"] = compare_detector(*sessions["detector"], frames, a.iters)
    report["reads"] = compare_reads(specs, frames, a.precision, a.engines)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        main()
    except RuntimeUnavailable as exc:  # no TensorRT or no GPU here: say so in one line
        print(f"tensorrt_compare: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
