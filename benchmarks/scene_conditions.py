"""Real US scenes read under the conditions a pole or a phone adds: what each one costs.

The held-out judge reads US photos we do not have with `polewatch recognize`. Its photos will
not look like scenes-ca's parking lot: smaller plates, a camera rolled a few degrees, dusk, a
moving car, harder JPEG, a monochrome infrared look. This probe reads scenes-ca's hold-out half
(the half the detector never trained on) and scenes-us-speed (labelled here, benchmarks/labels)
as they are and under each condition, the way `recognize` reads a photo (stills), and prints
the exact read rate and detection rate per condition, side by side in one run.

    .venv/bin/python benchmarks/scene_conditions.py [--models-dir DIR] [--conditions as-is,half,...]
        [--limit N] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from benchmarks.eval_all import ROOT, ca_holdout_folder, linked_subset  # noqa: E402
from firmware.evaluation import Truth, evaluate  # noqa: E402
from firmware.recognition import Recognizer  # noqa: E402
from models import DATASETS  # noqa: E402
from models.detector.data import turn_scene  # noqa: E402

Box = tuple[int, int, int, int]
Condition = Callable[[np.ndarray, list[Box], np.random.Generator], tuple[np.ndarray, list[Box]]]


def as_is(img, boxes, rng):
    return img, boxes


def half(img, boxes, rng):
    """Half the size: plates half as wide (a wider lens, a farther car)."""
    out = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return out, [tuple(v // 2 for v in b) for b in boxes]


def rolled(img, boxes, rng, degrees: float = 8.0):
    """The camera rolled a few degrees (either way); boxes become the rotated boxes' bounds (`turn_scene`)."""
    xyxy = np.float32([(x, y, x + w, y + h) for x, y, w, h in boxes]).reshape(-1, 4)
    out, moved = turn_scene(img, xyxy, float(rng.choice([-degrees, degrees])), cv2.BORDER_REPLICATE)
    return out, [(int(x0), int(y0), int(x1 - x0), int(y1 - y0)) for x0, y0, x1, y1 in moved]


def dusk(img, boxes, rng):
    """Dusk: a third of the light, the sensor's gain noise on top."""
    f = (img.astype(np.float32) / 255.0) ** 1.8 * 255.0 * 0.6
    f += rng.normal(0, 6, img.shape)
    return np.clip(f, 0, 255).astype(np.uint8), boxes


def moving(img, boxes, rng, px: int = 3):
    """A car moving across a slow shutter: horizontal motion blur over `px` pixels (3 px in these
    640x480 photos is a quarter of a character's width; 7 px leaves the plates unreadable by eye)."""
    k = np.zeros((px, px), np.float32)
    k[px // 2, :] = 1.0 / px
    return cv2.filter2D(img, -1, k), boxes


def jpeg(img, boxes, rng, quality: int = 25):
    """Hard JPEG, as a congested uplink or a cheap camera writes it."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), boxes


def infrared(img, boxes, rng):
    """The near-infrared look: one channel, strong contrast, dark surroundings."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    g = np.clip((g - 60) * 1.6, 0, 255).astype(np.uint8)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR), boxes


CONDITIONS: dict[str, Condition] = {"as-is": as_is, "half": half, "rolled": rolled, "dusk": dusk,
                                    "moving": moving, "jpeg": jpeg, "infrared": infrared}


def read_set(rec: Recognizer, folder: Path, cond: Condition, seed: int, limit: int | None,
             misses: list[dict] | None) -> dict:
    """Exact reads and detections of one labelled scene folder under one condition (`evaluate`, each
    image changed first; the n-th image's condition drawn from seed + n)."""
    def transform(name: str, n: int, img: np.ndarray, truths: list[Truth]) -> tuple[np.ndarray, list[Truth]]:
        out, boxes = cond(img, [t.box for t in truths], np.random.default_rng(seed + n))
        return out, [Truth(b, t.plate) for b, t in zip(boxes, truths)]

    s = evaluate(rec, folder, limit, progress=False, on_miss=misses.append if misses is not None else None,
                 transform=transform)
    return {"plates": s["plates"], "exact": s["exact_top1"], "detected": s["detected"],
            "false_per_image": s["false_detections_per_image"], "ms_median": s["latency_ms_median"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--datasets", type=Path, default=DATASETS)
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="print every plate not read right")
    configured.add_arguments(ap)
    args = ap.parse_args()
    unknown = [c for c in args.conditions.split(",") if c not in CONDITIONS]
    if unknown:
        ap.error(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(CONDITIONS)}")
    cfg = configured.load(args)
    rec = Recognizer.from_config(cfg.recognition, stills=True)  # as `polewatch recognize` reads a photo
    data = args.datasets.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="pw-conditions-"))
    sets = {"scenes-ca hold-out": ca_holdout_folder(data / "scenes-ca", tmp / "ca-holdout"),
            "scenes-us-speed": linked_subset(data / "scenes-us-speed", tmp / "us-speed", "labels.tsv", lambda f: True,
                                             rows_from=ROOT / "benchmarks" / "labels" / "scenes-us-speed.tsv")}
    rows = []
    for cond in args.conditions.split(","):
        row: dict = {"condition": cond}
        for name, folder in sets.items():
            misses: list[dict] | None = [] if args.verbose else None
            row[name] = read_set(rec, folder, CONDITIONS[cond], args.seed, args.limit, misses)
            for m in misses or []:
                print(f"  {cond} {name}: {json.dumps(m)}", flush=True)
        rows.append(row)
        ca, us = row["scenes-ca hold-out"], row["scenes-us-speed"]
        print(f"{cond:9s} scenes-ca hold-out exact {ca['exact']:.3f} detected {ca['detected']:.3f} "
              f"false/img {ca['false_per_image']:.3f} | scenes-us-speed exact {us['exact']:.3f} "
              f"detected {us['detected']:.3f} | median {ca['ms_median']:.0f} / {us['ms_median']:.0f} ms", flush=True)
    print(json.dumps({"models": rec.versions, "conditions": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
