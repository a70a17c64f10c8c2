"""US plates read end to end in photos against read as crops: what the photo path loses.

The held-out judge reads US photos with `polewatch recognize`, and scenes-ca is one parking
lot. This probe pastes the real US crops of us-crops-dev's validation half (the half no
shipped-recipe run trains on: `models.us_fold`) into the `negatives` photos, a little
turned in depth, at several plate widths, then reads each photo the way `recognize` does
(stills: close-up pass, roll passes, one read per plate) and the same plate as a crop (`--crop`).
The gap between the two columns is what detection, the crop cut from the box and the
verification band cost; a plate found twice or a false detection shows up too.

    .venv/bin/python benchmarks/pasted_scenes.py [--models-dir DIR] [--widths 90,140,220]
        [--scene 1280x720] [--fold val] [--limit N] [--verbose]

Same seed, same photos: two model folders or two firmware versions compare side by side.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from firmware.evaluation import matches  # noqa: E402
from firmware.recognition import Recognizer  # noqa: E402
from firmware.recognition.ocr import normalise  # noqa: E402
from models import DATASETS, fixed_plate, us_fold  # noqa: E402


def paste(rng: np.random.Generator, plate: np.ndarray, scene: np.ndarray, width: int) -> tuple[np.ndarray, tuple]:
    """The plate warped into the scene at `width` px, yawed and pitched a little, on a body-coloured
    surround (a plate sits on a car, not on a wall); returns the photo and the plate's box."""
    H, W = scene.shape[:2]
    h = int(round(width * plate.shape[0] / plate.shape[1]))
    x = int(rng.integers(int(0.1 * W), max(int(0.1 * W) + 1, W - width - int(0.1 * W))))
    y = int(rng.integers(int(0.3 * H), max(int(0.3 * H) + 1, H - h - int(0.1 * H))))
    j = 0.06 * width
    dst = np.float32([[x, y], [x + width, y], [x + width, y + h], [x, y + h]])
    dst += rng.uniform(-j, j, (4, 2)).astype(np.float32) * np.float32([1.0, 0.5])
    body = np.full((h * 3, width * 2, 3), rng.integers(20, 230, 3), np.uint8)
    bx0, by0 = width // 2, h
    body[by0: by0 + h, bx0: bx0 + width] = cv2.resize(plate, (width, h), interpolation=cv2.INTER_AREA)
    src = np.float32([[bx0, by0], [bx0 + width, by0], [bx0 + width, by0 + h], [bx0, by0 + h]])
    M = cv2.getPerspectiveTransform(src, dst)
    out = scene.copy()
    warped = cv2.warpPerspective(body, M, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full(body.shape[:2], 255, np.uint8), M, (W, H), flags=cv2.INTER_NEAREST)
    out[mask > 0] = warped[mask > 0]
    x0, y0 = dst.min(0)
    x1, y1 = dst.max(0)
    return out, (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configured.add_arguments(ap)
    ap.add_argument("--widths", default="90,140,220", help="plate widths in the photo, px")
    ap.add_argument("--scene", default="1280x720", help="photo size WxH")
    ap.add_argument("--fold", default="val", choices=["val", "train", "all"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="print every plate read in one way and not the other")
    args = ap.parse_args()
    rec = Recognizer.from_config(configured.load(args).recognition, stills=True)
    with open(DATASETS / "us-crops-dev" / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    rows = [r for r in rows if args.fold == "all" or us_fold(r["file"]) == args.fold][: args.limit]
    negatives = sorted((DATASETS / "negatives").glob("*.*"))
    SW, SH = (int(v) for v in args.scene.lower().split("x"))
    widths = [int(w) for w in args.widths.split(",")]
    rng = np.random.default_rng(args.seed)
    crop_ok = 0
    per_width = {w: {"found": 0, "read": 0, "false": 0, "both_ok": 0, "crop_only": 0, "scene_only": 0} for w in widths}
    for i, row in enumerate(rows):
        plate = cv2.imread(str(DATASETS / "us-crops-dev" / row["file"]), cv2.IMREAD_COLOR)
        truth = normalise(fixed_plate("us-crops-dev", row["file"], row["plate"]))  # benchmarks/labels/fixes.tsv
        as_crop = rec.read_plate_images([plate])[0].plate == truth
        crop_ok += as_crop
        for w in widths:
            neg = cv2.imread(str(negatives[int(rng.integers(len(negatives)))]), cv2.IMREAD_COLOR)
            scene, box = paste(rng, plate, cv2.resize(neg, (SW, SH)), w)
            got = rec.read_frame(scene)
            on = [g for g in got if matches(g.box, box)]
            t = per_width[w]
            t["found"] += bool(on)
            t["false"] += len(got) - len(on[:1])
            ok = bool(on) and on[0].plate == truth
            t["read"] += ok
            t["both_ok"] += ok and as_crop
            t["crop_only"] += as_crop and not ok
            t["scene_only"] += ok and not as_crop
            if not args.verbose:
                continue
            for g in got:
                if g not in on[:1]:
                    print(f"  {row['file']} {truth} width {w}: false detection {g.plate} {g.confidence:.2f} "
                          f"at {g.box}, plate at {box}", file=sys.stderr)
            if ok != as_crop:
                print(f"  {row['file']} {truth} width {w}: crop {'ok' if as_crop else 'wrong'}, photo "
                      f"{on[0].plate + ' ' + str(round(on[0].confidence, 2)) if on else 'not found'}", file=sys.stderr)
        print(f"\r{i + 1}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    n = len(rows)
    out = {"plates": n, "scene": args.scene, "models": rec.versions, "crop_exact": round(crop_ok / n, 4),
           "photo": {w: t | {"exact": round(t["read"] / n, 4)} for w, t in per_width.items()}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
