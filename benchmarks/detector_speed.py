"""Plate detector speed on full frames: preprocess + ONNX Runtime + postprocess, median and p95 ms.

    .venv/bin/python benchmarks/detector_speed.py [--model models/plate_detector.onnx] [--threads 2]

Frames are 1280x720 (and 1920x1080, 640x360) composites from models/synth/scenes.py, so the
figure needs no dataset. The machine's other load is printed alongside: a busy CPU inflates it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.recognition.detect import postprocess, preprocess  # noqa: E402
from models.synth.scenes import SceneGenerator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/plate_detector.onnx"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(args.model), so, providers=["CPUExecutionProvider"])
    gen = SceneGenerator(backgrounds=[])
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    for size in [(720, 1280), (1080, 1920), (360, 640)]:
        frames = [gen.sample(rng, size=size, n_plates=1)[0] for _ in range(8)]
        for f in frames[:3]:  # warm-up
            x, lb = preprocess(f)
            sess.run(None, {"image": x})
        times = []
        for i in range(args.frames):
            f = frames[i % len(frames)]
            t = time.perf_counter()
            x, lb = preprocess(f)
            postprocess(sess.run(None, {"image": x}), lb, 0.35, 0.45, 16)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"{size[1]}x{size[0]}: median {statistics.median(times):.2f} ms, "
              f"p95 {times[int(0.95 * (len(times) - 1))]:.2f} ms, threads {args.threads}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
