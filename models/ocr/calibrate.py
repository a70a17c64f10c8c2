"""Fit the OCR's softmax temperature so plate confidences mean what they say.

The plate confidence is the product of the slot probabilities of the top
text; a network trained with cross-entropy on synthetic data is over-confident
on real plates. One temperature, fitted by grid search to minimise the
negative log-likelihood of "top-1 text is right" on real crops that training
never saw, makes 0.9 mean about nine in ten. By default it is fitted on the
validation half of us-crops-dev (one parameter, so the bias this puts in the
calibration figures on that half is small; the model card says so).

    python -m models.ocr.calibrate models/plate_ocr.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from firmware.recognition import ocr
from models.ocr.train import DATASETS, load_crops


def logits_for(onnx_path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = images[:, None].astype(np.float32) / 255.0
    return np.concatenate([sess.run(None, {"image": x[i: i + 64]})[0] for i in range(0, len(x), 64)])


def plate_nll(logits: np.ndarray, texts: list[str], t: float, decoder: str = "slots") -> tuple[float, list[tuple[float, bool]]]:
    pairs = []
    for lg, truth in zip(logits, texts):
        r = ocr.DECODERS[decoder](ocr.softmax(lg, t), top_n=1)
        pairs.append((min(max(r.confidence, 1e-6), 1 - 1e-6), r.plate == truth))
    c = np.array([p for p, _ in pairs])
    y = np.array([ok for _, ok in pairs], float)
    return float(-np.mean(y * np.log(c) + (1 - y) * np.log(1 - c))), pairs


def fit(onnx_path: Path, folder: Path, fold: str | None = None, decoder: str = "slots") -> float:
    x, _, texts = load_crops(folder, fold)
    lg = logits_for(onnx_path, x)
    grid = np.round(np.arange(0.2, 4.01, 0.05), 2)
    return float(min(grid, key=lambda t: plate_nll(lg, texts, float(t), decoder)[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx", type=Path)
    ap.add_argument("--fit-on", type=Path, default=DATASETS / "us-crops-dev")
    ap.add_argument("--decoder", choices=["slots", "ctc"], default="ctc")
    ap.add_argument("--fold", default="val", help="us-crops-dev half to use ('' for the whole folder)")
    a = ap.parse_args()
    fold = a.fold if a.fit_on.name == "us-crops-dev" and a.fold else None
    t = fit(a.onnx, a.fit_on, fold, a.decoder)
    print(json.dumps({"temperature": t, "fitted_on": a.fit_on.name + (f" ({fold} half)" if fold else "")}))


if __name__ == "__main__":
    main()
