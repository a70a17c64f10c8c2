"""Detector evaluation: recall and false detections per image on labelled scene folders.

A labelled plate counts as detected when a detection has IoU >= 0.3 with its box or the
detection's centre lies inside the box (scenes-ca boxes hug the characters, so IoU alone
would punish whole-plate boxes). A detection matching no labelled plate is a false one.

    .venv/bin/python -m models.detector.evaluate [--model models/plate_detector.onnx] [--thresholds 0.3,0.35]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np

from firmware.recognition.detect import iou_matrix, postprocess, preprocess


def match(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """(labelled plates detected, false detections) for Nx4 and Mx4 xyxy boxes."""
    pred = np.asarray(pred, np.float32).reshape(-1, 4)
    gt = np.asarray(gt, np.float32).reshape(-1, 4)
    if not len(pred):
        return 0, 0
    if not len(gt):
        return 0, len(pred)
    iou = iou_matrix(pred, gt)
    cx, cy = (pred[:, 0] + pred[:, 2]) / 2, (pred[:, 1] + pred[:, 3]) / 2
    inside = (cx[:, None] >= gt[None, :, 0]) & (cx[:, None] <= gt[None, :, 2]) & \
             (cy[:, None] >= gt[None, :, 1]) & (cy[:, None] <= gt[None, :, 3])
    ok = (iou >= 0.3) | inside
    detected = int(ok.any(axis=0).sum())
    false = int((~ok.any(axis=1)).sum())
    return detected, false


def score_outputs(raw: dict, thresholds: list[float], nms_iou: float = 0.45) -> dict:
    """{set: [(outputs, letterbox, gt boxes)]} -> {threshold: {set: figures}}; the model ran once."""
    out: dict = {}
    for th in thresholds:
        out[th] = {}
        for name, items in raw.items():
            n_gt = n_det = n_fp = 0
            for outputs, lb, gt in items:
                dets = postprocess(outputs, lb, th, nms_iou, 16)
                pred = np.array([[d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]] for d in dets], np.float32)
                d, f = match(pred, gt)
                n_gt, n_det, n_fp = n_gt + len(gt), n_det + d, n_fp + f
            out[th][name] = {"images": len(items), "plates": n_gt, "recall": round(n_det / max(n_gt, 1), 4),
                             "fp_per_image": round(n_fp / max(len(items), 1), 4)}
    return out


def run_all(run: Callable[[np.ndarray], list[np.ndarray]], sets: dict) -> dict:
    """Run a model (preprocessed input -> [heatmap, box]) over every scene of every set."""
    raw = {}
    for name, scenes in sets.items():
        raw[name] = []
        for s in scenes:
            x, lb = preprocess(s.image)
            raw[name].append((run(x), lb, s.boxes))
    return raw


def sweep(model: Path, sets: dict, thresholds: list[float], threads: int = 2, nms_iou: float = 0.45) -> dict:
    """Run the ONNX model once per image, score every threshold: {threshold: {set: figures}}."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return score_outputs(run_all(lambda x: sess.run(None, {"image": x}), sets), thresholds, nms_iou)


def main() -> None:
    from models.detector.data import DATASETS, validation_sets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/plate_detector.onnx"))
    ap.add_argument("--datasets", type=Path, default=DATASETS)
    ap.add_argument("--thresholds", default="0.25,0.3,0.35,0.4,0.45,0.5")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    ths = [float(t) for t in args.thresholds.split(",")]
    res = sweep(args.model, validation_sets(args.datasets), ths, args.threads)
    for th, sets in res.items():
        print(f"threshold {th}: " + "; ".join(f"{k} recall {v['recall']:.4f} fp/img {v['fp_per_image']:.3f}"
                                               for k, v in sets.items()))
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "sweep": res}, indent=1))


if __name__ == "__main__":
    main()
