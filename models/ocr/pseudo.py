"""Pseudo-labelled real crops: unlabelled plate faces read by a trained OCR, kept where it is sure.

Real plates teach texture, dies, dirt and blur that the generator only imitates (a quarter of
each batch from crops-br lifted the first experiment's US reads from 0.58 to 0.72), but the
only real plates with labels are few. crops-eu holds 1,696 real European plate faces without
text. The firmware reads them (whole crops, as `recognize --crop` does, US format rules off),
and the reads it gives a calibrated confidence at or above a floor (0.95 by default: about 29
in 30 right on a hand-checked sample) become training labels for a student run, with the
reads' length limited to what a plate carries. The labeller must not have trained on the sets
a split run is judged on, or the student would learn them second-hand: a split run takes its
labels from the split-trained OCR (0.5.0), the shipping run from the shipped one.

    python -m models.ocr.pseudo --models-dir DIR --out models/cache/pseudo-eu.npz [--floor 0.95]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from firmware.recognition.ocr import SLOTS, encode, preprocess

log = logging.getLogger("ocr.pseudo")

FLOOR = 0.95  # confidence a read needs to become a label
LENGTHS = (4, 8)  # characters a kept read may have (a plate's registration, not a sticker or a frame's text)
BATCH = 64


def label(files: list[Path], models_dir: Path | None, floor: float = FLOOR,
          lengths: tuple[int, int] = LENGTHS) -> dict[str, np.ndarray]:
    """Read each image as one plate crop and keep the sure reads: a `pool` dict with the crops at
    the OCR's input (x, uint8), their slot labels (y), texts, confidences and file names, plus
    `seen`, the number of images read (unreadable files are skipped, named in the log)."""
    from firmware.config import RecognitionConfig
    from firmware.imageio import ImageError, read_image
    from firmware.recognition import Recognizer

    cfg = RecognitionConfig(us_format_rules=False, models_dir=str(models_dir) if models_dir else None)
    rec = Recognizer.from_config(cfg, stills=True)
    lo, hi = lengths
    xs, ys, texts, confs, names = [], [], [], [], []
    seen = 0
    bar = tqdm(total=len(files), desc="pseudo-label", mininterval=5)
    for start in range(0, len(files), BATCH):
        chunk, images = [], []
        for f in files[start: start + BATCH]:
            try:
                images.append(read_image(f))
                chunk.append(f)
            except ImageError as exc:
                log.warning("skipping %s: %s", f, exc)
        seen += len(chunk)
        for f, img, r in zip(chunk, images, rec.read_plate_images(images) if images else []):
            if r.confidence >= floor and lo <= len(r.plate) <= min(hi, SLOTS):
                xs.append((preprocess([img])[0, 0] * 255).astype(np.uint8))
                ys.append(encode(r.plate))
                texts.append(r.plate)
                confs.append(r.confidence)
                names.append(f.name)
        bar.update(len(files[start: start + BATCH]))
    bar.close()
    shape = (0, *preprocess([np.zeros((8, 8, 3), np.uint8)]).shape[2:])
    return {"x": np.stack(xs) if xs else np.zeros(shape, np.uint8),
            "y": np.stack(ys) if ys else np.zeros((0, SLOTS), np.int64),
            "text": np.array(texts, dtype=str), "confidence": np.array(confs, np.float32),
            "name": np.array(names, dtype=str), "seen": np.array(seen)}


def save(pool: dict[str, np.ndarray], out: Path) -> None:
    """Write the pool (.npz, atomically) and a `.tsv` beside it listing file, text and confidence
    for a person to check."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **pool)
    os.replace(tmp, out)
    rows = [f"{f}\t{t}\t{c:.4f}" for f, t, c in zip(pool["name"], pool["text"], pool["confidence"])]
    out.with_suffix(".tsv").write_text("file\tplate\tconfidence\n" + "".join(r + "\n" for r in rows))


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A saved pool's crops and slot labels, as train.py's real pools are."""
    try:
        d = np.load(path)
        return d["x"], d["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"--pseudo {path}: not a pseudo-label pool ({exc}); make it with models.ocr.pseudo") from None


def main() -> None:
    from firmware.imageio import expand

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, action="append", default=None,
                    help="folder of unlabelled plate crops (default: ../shared/datasets/crops-eu); repeatable")
    ap.add_argument("--models-dir", type=Path, default=None, help="the labelling OCR (default: the shipped models)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--floor", type=float, default=FLOOR)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from models import DATASETS

    files = [f for folder in (args.folder or [DATASETS / "crops-eu"]) for f in expand([str(folder)])]
    pool = label(files, args.models_dir, args.floor)
    save(pool, args.out)
    log.info("kept %d of %d crops (confidence >= %.2f, %d-%d characters) -> %s",
             len(pool["text"]), int(pool["seen"]), args.floor, *LENGTHS, args.out)


if __name__ == "__main__":
    main()
