"""`polewatch recognize`: read plates in image files (a contract, see docs/architecture.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from firmware import config
from firmware.imageio import ImageError, expand, read_image


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recognize", help="read plates in image files or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image file or folder of images")
    p.add_argument("--crop", action="store_true", help="each image is one plate crop (box = whole image)")
    p.add_argument("--json", action="store_true", help="one JSON object per image on its own line")
    p.add_argument("--top", type=int, default=None, metavar="N", help="candidates per plate (default from config: 5)")
    p.set_defaults(func=run)
    register_eval(sub)


def load_recognizer(args: argparse.Namespace, top: int | None = None):
    """The configured recognizer, or a UserError naming what is missing."""
    from firmware.cli import UserError
    from firmware.recognition import ModelCorrupt, ModelMissing, Recognizer, RuntimeUnavailable

    cfg = config.load(args.config)
    if top is not None:
        if not 1 <= top <= 50:
            raise UserError(f"--top must be between 1 and 50, got {top}")
        cfg.recognition.top_n = top
    try:
        return Recognizer.from_config(cfg.recognition, stills=True)
    except (ModelMissing, ModelCorrupt, RuntimeUnavailable) as exc:
        raise UserError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from firmware.recognition import RecognitionError

    rec = load_recognizer(args, args.top)
    files = expand(args.paths)
    read_ok = 0
    if not args.json:
        print(f"{'image':40} {'ms':>7}  {'plate':10} {'conf':>5}  box / candidates")
    for path in files:
        t0 = time.perf_counter()
        try:
            img = read_image(path)
            if args.crop:
                plates = rec.read_plate_images([img])
                plates = [p for p in plates if p.plate]
            else:
                plates = rec.read_frame(img)
        except (ImageError, RecognitionError) as exc:
            _emit(args.json, {"image": str(path), "error": str(exc)})
            continue
        ms = (time.perf_counter() - t0) * 1e3
        read_ok += 1
        _emit(args.json, {"image": str(path), "ms": round(ms, 2), "plates": [p.to_json() for p in plates]})
    return 0 if read_ok else 1


def _emit(as_json: bool, obj: dict) -> None:
    if as_json:
        print(json.dumps(obj), flush=True)
        return
    name = obj["image"] if len(obj["image"]) <= 40 else "…" + obj["image"][-39:]  # the file's end tells it
    if "error" in obj:
        print(f"{name:40} {'':>7}  error: {obj['error']}", file=sys.stdout, flush=True)
        return
    if not obj["plates"]:
        print(f"{name:40} {obj['ms']:7.1f}  (no plate)", flush=True)
    for i, p in enumerate(obj["plates"]):
        others = ", ".join(f"{c['plate']} {c['confidence']:.2f}" for c in p["candidates"][1:4])
        ms = f"{obj['ms']:7.1f}" if i == 0 else ""
        print(f"{name if i == 0 else '':40} {ms:>7}  {p['plate']:10} "
              f"{p['confidence']:5.2f}  {p['box']}  {others}", flush=True)


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score the recognizer on labelled folders (labels.tsv scenes, labels.csv crops)")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p.add_argument("--top", type=int, default=None, metavar="N")
    p.add_argument("--limit", type=int, default=None, help="first N images of each folder")
    p.add_argument("--misses", action="store_true",
                   help="before each folder's summary, one JSON line per labelled plate not read right")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from firmware.cli import UserError
    from firmware.evaluation import evaluate

    rec = load_recognizer(args, args.top)
    miss = (lambda m: print(json.dumps({"miss": m}), flush=True)) if args.misses else None
    for folder in map(Path, args.folders):
        try:
            print(json.dumps(evaluate(rec, folder, args.limit, progress=sys.stderr.isatty(), on_miss=miss)), flush=True)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
    return 0
