"""Match a new detector's box framing to the detector the shipped OCR was trained behind.

The OCR reads what the detector's box cuts, and it learned the framing of one detector: a
retrained detector whose boxes come out a few per cent flatter or wider clips or pads the
characters the OCR expects (session 20's recess fine-tune before this step: boxes 3 % wider and 3 % flatter
than 0.2.0's, scenes-us-speed 18 -> 16 of 21 read with OCR 0.7.0). The size head predicts
log width and log height, so a constant gain on either is a constant added to that channel's
bias: measured here as the mean size ratio (geometric, the tenth at either end trimmed: boxes
are whole pixels, so small plates give coarse ratios) between the two detectors' boxes on the
same plates of scenes-ca's training half, the real US scenes the OCR's detector crops are cut
from, never on a validation set.

    python -m models.detector.export --checkpoint RUN/best.pt --match-framing old/plate_detector.onnx
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware.recognition import detect
from models.detector.data import DATASETS, ca_half, load_scenes
from models.detector.evaluate import run_all

MIN_PLATES = 50  # fewer matched plates than this and the ratio is not worth trusting


def _boxes(model: Path, scenes: list, threshold: float) -> list[list[tuple[float, float] | None]]:
    """Per scene, per labelled plate: the (w, h) of the detection centred in it, or None."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = []
    for outputs, lb, gt in run_all(lambda x: sess.run(None, {"image": x}), {"scenes": scenes})["scenes"]:
        dets = detect.postprocess(outputs, lb, threshold, 0.45, 16)
        row = []
        for x1, y1, x2, y2 in gt:
            d = detect.centred_in(dets, (x1, y1, x2 - x1, y2 - y1))
            row.append(None if d is None else (float(d.box[2]), float(d.box[3])))
        out.append(row)
    return out


def training_scenes(root: Path = DATASETS) -> list:
    """scenes-ca's training half: the real US scenes both models train on, the OCR behind the detector."""
    return [s for s in load_scenes(root / "scenes-ca") if ca_half(s.name) == "train"]


def _trimmed_gain(log_ratios: np.ndarray, trim: float = 0.1) -> float:
    r = np.sort(log_ratios)
    k = int(len(r) * trim)
    return float(np.exp(r[k : len(r) - k].mean()))


def framing_gain(model: Path, reference: Path, scenes: list, threshold: float = 0.5) -> dict:
    """(reference / model) width and height of the boxes both put on the same plates (trimmed geometric mean)."""
    ours, theirs = _boxes(model, scenes, threshold), _boxes(reference, scenes, threshold)
    pairs = [(a, b) for ra, rb in zip(ours, theirs) for a, b in zip(ra, rb) if a and b]
    if len(pairs) < MIN_PLATES:
        raise ValueError(f"only {len(pairs)} plates found by both detectors (need {MIN_PLATES}): "
                         "no framing measured")
    r = np.log(np.array([(b[0] / a[0], b[1] / a[1]) for a, b in pairs]))
    return {"plates": len(pairs), "width_gain": round(_trimmed_gain(r[:, 0]), 4),
            "height_gain": round(_trimmed_gain(r[:, 1]), 4)}
