"""Recognition speed on this machine with ONNX Runtime.

    python benchmarks/recognition_speed.py [--frames 60] [--images DIR]

Prints JSON: median and p95 ms for a whole 1280x720 frame with one plate
(detect + read), OCR crops per second on one thread and on all threads in
batches of 32, and the detector alone. Medians of repeated runs measured side
by side in one process; the machine is shared, so compare ratios.
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
from firmware.recognition import Recognizer, ocr  # noqa: E402
from models.synth.plates import render_plate  # noqa: E402


def frame_with_plate(rng: np.random.Generator) -> np.ndarray:
    frame = np.clip(rng.normal(100, 25, (720, 1280, 3)), 0, 255).astype(np.uint8)
    plate, _ = render_plate(rng)
    import cv2

    plate = cv2.resize(plate, (180, 90))
    frame[400:490, 600:780] = plate
    return frame


def median_ms(fn, n: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts)), float(np.percentile(ts, 95))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    out: dict = {}
    frames = [frame_with_plate(rng) for _ in range(8)]
    crops = [render_plate(rng)[0] for _ in range(32)]
    # side by side: the second look (default) and without it, same frames and crops
    for tag, gate in (("", RecognitionConfig().second_look_below), ("_no_second_look", None)):
        rec = Recognizer.from_config(RecognitionConfig(second_look_below=gate))
        i = iter(range(10**9))
        out[f"frame_1280x720_ms_median{tag}"], out[f"frame_1280x720_ms_p95{tag}"] = median_ms(
            lambda: rec.read_frame(frames[next(i) % len(frames)]), a.frames)
        r1 = Recognizer.from_config(RecognitionConfig(threads=1, second_look_below=gate))
        ms_full = median_ms(lambda: r1.read_crops(crops), 10)[0]
        out[f"read_crops_per_s_with_decode_1_thread{tag}"] = round(32 / (ms_full / 1e3), 1)
    # side by side: the glyph check (default) off, second look on
    r1 = Recognizer.from_config(RecognitionConfig(threads=1, glyph_check=False))
    out["read_crops_per_s_with_decode_1_thread_no_glyph_check"] = round(32 / (median_ms(lambda: r1.read_crops(crops), 10)[0] / 1e3), 1)
    out["second_looks_in_32_crops"] = sum(
        1 for r in Recognizer.from_config(RecognitionConfig(second_look_below=None)).read_crops(crops)
        if r.plate and r.confidence < RecognitionConfig().second_look_below)
    out["detector_ms_median"] = median_ms(lambda: rec.detect(frames[0]), a.frames)[0]
    batch = ocr.preprocess(crops)
    for threads in (1, 2):
        r = Recognizer.from_config(RecognitionConfig(threads=threads))
        ms = median_ms(lambda: r.ocr.run(batch), 30)[0]
        out[f"ocr_crops_per_s_{threads}_thread"] = round(32 / (ms / 1e3), 1)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
