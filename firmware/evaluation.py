"""Accuracy and speed of the recognizer on a labelled folder (`polewatch eval`).

Scenes (`labels.tsv`: file x y w h plate) score detection recall (IoU >= 0.3
with the labelled box, or the predicted centre inside it, since some sets label
only the characters), exact top-1 and top-N reads and false detections per
image. Crops (`labels.csv`: file,plate or file,state,plate) score exact top-1
and top-N. Exact means equal after upper-casing and keeping only A-Z and 0-9;
O/0, I/1 and B/8 are errors. Calibration bins show whether a confidence of
0.9 is right about 9 times in 10.
"""

from __future__ import annotations

import csv
import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from firmware.imageio import ImageError, read_image
from firmware.recognition.ocr import normalise


@dataclass
class Truth:
    box: tuple[int, int, int, int] | None
    plate: str


@dataclass
class Tally:
    images: int = 0
    unreadable: int = 0
    plates: int = 0
    detected: int = 0
    labelled: int = 0  # plates with text
    exact: int = 0
    top_n: int = 0
    false_detections: int = 0
    latencies: list[float] = field(default_factory=list)
    confidences: list[tuple[float, bool]] = field(default_factory=list)


def load_labels(folder: Path) -> tuple[str, dict[str, list[Truth]]]:
    """('scenes' | 'crops', {file: [Truth]}) from labels.tsv or labels.csv."""
    out: dict[str, list[Truth]] = defaultdict(list)
    if (folder / "labels.tsv").exists():
        with open(folder / "labels.tsv") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                box = (int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
                out[row["file"]].append(Truth(box, normalise(row.get("plate") or "")))
        return "scenes", out
    if (folder / "labels.csv").exists():
        with open(folder / "labels.csv") as fh:
            for row in csv.DictReader(fh):
                out[row["file"]].append(Truth(None, normalise(row.get("plate") or "")))
        return "crops", out
    raise FileNotFoundError(f"{folder}: no labels.tsv (scenes) or labels.csv (crops)")


def matches(pred: tuple[int, int, int, int], truth: tuple[int, int, int, int]) -> bool:
    """A detection of a labelled plate (the issue's rule): its centre inside the box, or IoU >= 0.3."""
    px, py, pw, ph = pred
    tx, ty, tw, th = truth
    cx, cy = px + pw / 2, py + ph / 2
    if tx <= cx <= tx + tw and ty <= cy <= ty + th:
        return True
    ix = max(0, min(px + pw, tx + tw) - max(px, tx))
    iy = max(0, min(py + ph, ty + th) - max(py, ty))
    inter = ix * iy
    union = pw * ph + tw * th - inter
    return union > 0 and inter / union >= 0.3


# a change made to each image and its labels before it is read (benchmarks/scene_conditions.py): the image's
# name and index in the run, the image, its labels -> the changed image and labels
Transform = Callable[[str, int, np.ndarray, list[Truth]], tuple[np.ndarray, list[Truth]]]


def evaluate(recognizer, folder: Path, limit: int | None = None, progress: bool = True,
             on_miss: Callable[[dict], None] | None = None, transform: Transform | None = None) -> dict:
    """The folder's summary; `on_miss` is handed each labelled plate not read right (not found, or read
    otherwise: file, truth, read, confidence, top candidates), which is where tuning starts. `transform`
    changes each image and its labels (a scene turned, darkened, JPEG-coded) before it is read."""
    kind, labels = load_labels(folder)
    files = sorted(labels)[:limit] if limit else sorted(labels)
    t = Tally()
    for n, name in enumerate(tqdm(files, desc=folder.name, disable=not progress, mininterval=2)):
        truths = labels[name]
        t.images += 1
        try:
            img = read_image(folder / name)
        except ImageError:
            t.unreadable += 1
            continue
        if transform is not None:
            img, truths = transform(name, n, img, truths)
        t0 = time.perf_counter()
        try:
            preds = recognizer.read_plate_images([img]) if kind == "crops" else recognizer.read_frame(img)
        except ValueError:  # RecognitionError: an image too small or malformed to read
            t.unreadable += 1
            continue
        t.latencies.append((time.perf_counter() - t0) * 1e3)
        used: set[int] = set()
        for tr in truths:
            t.plates += 1
            if kind == "crops":
                match = 0 if preds else None
            else:
                match = next((i for i, p in enumerate(preds) if i not in used and matches(p.box, tr.box)), None)
            if match is not None:
                used.add(match)
                t.detected += 1
            if not tr.plate:
                continue
            t.labelled += 1
            p = preds[match] if match is not None else None
            ok = p is not None and p.plate == tr.plate
            if not ok and on_miss is not None:
                miss = {"image": name, "truth": tr.plate, "box": list(tr.box) if tr.box else None, "found": p is not None}
                if p is not None:
                    miss |= {"plate": p.plate, "confidence": round(float(p.confidence), 4),
                             "candidates": [c.plate for c in p.candidates[:3]]}
                on_miss(miss)
            if p is None:
                continue
            t.exact += ok
            t.top_n += any(c.plate == tr.plate for c in p.candidates)
            t.confidences.append((p.confidence, ok))
        if kind == "scenes":
            t.false_detections += len(preds) - len(used)
    return summary(folder, kind, t)


def calibration(pairs: list[tuple[float, bool]], bins: int = 5) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [ok for c, ok in pairs if lo <= c < hi or (hi == 1 and c == 1)]
        if sel:
            out.append({"confidence": f"{lo:.1f}-{hi:.1f}", "n": len(sel), "correct": round(float(np.mean(sel)), 3)})
    return out


def summary(folder: Path, kind: str, t: Tally) -> dict:
    lat = np.array(t.latencies) if t.latencies else np.zeros(1)
    res = {
        "set": folder.name,
        "kind": kind,
        "images": t.images,
        "unreadable": t.unreadable,
        "plates": t.plates,
        "labelled": t.labelled,
        "exact_top1": round(t.exact / max(1, t.labelled), 4),
        "top_n": round(t.top_n / max(1, t.labelled), 4),
        "latency_ms_median": round(float(np.median(lat)), 2),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "calibration": calibration(t.confidences),
    }
    if kind == "scenes":
        res["detected"] = round(t.detected / max(1, t.plates), 4)
        res["false_detections_per_image"] = round(t.false_detections / max(1, t.images - t.unreadable), 4)
    return res
