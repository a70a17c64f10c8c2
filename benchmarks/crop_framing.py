"""Plate crops framed tightly and loosely, read as `polewatch recognize --crop` reads an image.

The held-out judge reads US crops cut by someone else: around the characters alone, at the
plate's edges, or with bumper around the plate. This probe cuts the plates of scenes-ca's
hold-out half (`models.detector.data.ca_half`: the half the shipped detector never trained
on; OCR 0.5.0 never saw it either) out of their photos at the labelled box, which hugs the
characters, and at growing margins around it, and reads each cut whole, loose-crop search and
tight-crop framing included (`Recognizer.read_plate_images`).

    .venv/bin/python benchmarks/crop_framing.py [--models-dir DIR] [--config polewatch.toml]
        [--half holdout|all] [--verbose]

Margins are (width, height) fractions of the labelled box added on each side.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from firmware.imageio import read_image  # noqa: E402
from firmware.recognition import Recognizer  # noqa: E402
from firmware.recognition.ocr import normalise  # noqa: E402
from models import DATASETS  # noqa: E402

MARGINS = [(0.0, 0.0), (0.05, 0.15), (0.1, 0.3), (0.25, 0.6), (0.6, 1.5)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configured.add_arguments(ap)
    ap.add_argument("--half", default="holdout", choices=["holdout", "all"])
    ap.add_argument("--verbose", action="store_true", help="print every plate read wrong")
    a = ap.parse_args()
    from models import fixed_plate
    from models.detector.data import ca_half

    rec = Recognizer.from_config(configured.load(a).recognition, stills=True)
    src = DATASETS / "scenes-ca"
    rows = [r for r in csv.DictReader(open(src / "labels.tsv"), delimiter="\t")
            if a.half == "all" or ca_half(r["file"]) == "holdout"]
    photos = {r["file"]: read_image(src / r["file"]) for r in rows}
    summary: dict = {"plates": len(rows), "half": a.half, "models": rec.versions, "exact": {}}
    for mx, my in MARGINS:
        crops, truth = [], []
        for r in rows:
            x, y, w, h = (int(r[k]) for k in "xywh")
            im = photos[r["file"]]
            x0, x1 = max(0, int(x - mx * w)), min(im.shape[1], int(x + w + mx * w))
            y0, y1 = max(0, int(y - my * h)), min(im.shape[0], int(y + h + my * h))
            crops.append(im[y0:y1, x0:x1])
            truth.append(normalise(fixed_plate("scenes-ca", r["file"], r["plate"])))
        reads = []
        for i in range(0, len(crops), 32):
            reads += rec.read_plate_images(crops[i: i + 32])
        right = sum(p.plate == t for p, t in zip(reads, truth))
        key = f"{mx:g}/{my:g}"
        summary["exact"][key] = round(right / len(truth), 4)
        print(f"margin {key:9} exact {right:3} / {len(truth)}", file=sys.stderr, flush=True)
        if a.verbose:
            for r, p, t in zip(rows, reads, truth):
                if p.plate != t:
                    print(f"  {r['file']}: {t} read {p.plate!r} ({p.confidence:.2f})", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
