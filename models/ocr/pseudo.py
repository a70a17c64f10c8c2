"""Pseudo-labelled real crops: unlabelled plate faces read by a trained OCR, kept where it is sure.

Real plates teach texture, dies, dirt and blur that the generator only imitates (a quarter of
each batch from crops-br lifted the first experiment's US reads from 0.58 to 0.72), but the
only real plates with labels are few. crops-eu holds 1,696 real European plate faces without
text, and scenes-ro 652 Romanian plates, day and night, boxed but not read (cut behind the
detector, as the appliance cuts them). The firmware reads them (whole crops, as `recognize --crop` does, US format rules off),
and the reads it gives a calibrated confidence at or above a floor (0.95 by default: about 29
in 30 right on a hand-checked sample) become training labels for a student run, with the
reads' length limited to what a plate carries. The labeller must not have trained on the sets
a split run is judged on, or the student would learn them second-hand: a split run takes its
labels from the split-trained OCR (0.5.0), the shipping run from the shipped one.

    python -m models.ocr.pseudo --models-dir DIR --out models/cache/pseudo-eu.npz [--floor 0.95] \
        [--folder ../shared/datasets/crops-eu --folder ../shared/datasets/scenes-ro]
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

if TYPE_CHECKING:
    from firmware.recognition import Recognizer

from firmware.recognition.ocr import OCR_H, OCR_W, SLOTS, encode
from models.ocr import stored

log = logging.getLogger("ocr.pseudo")

FLOOR = 0.95  # confidence a read needs to become a label
LENGTHS = (4, 8)  # characters a kept read may have (a plate's registration, not a sticker or a frame's text)
BATCH = 64
MIN_WIDTH = 40  # px: a scene plate cut narrower gives no label worth learning (and the OCR refuses under 8 px)


def labeller(models_dir: Path | None) -> Recognizer:
    """The firmware's recognizer as `recognize --crop` runs it, US format rules off (the plates are
    not all American, and the rules would bend their reads towards US serials)."""
    from firmware.config import RecognitionConfig
    from firmware.recognition import Recognizer

    cfg = RecognitionConfig(us_format_rules=False, models_dir=str(models_dir) if models_dir else None)
    return Recognizer.from_config(cfg, stills=True)


def crop_files(files: list[Path]) -> Iterator[tuple[str, np.ndarray | None]]:
    """Each file as one plate crop; None (named in the log) for a file that cannot be read."""
    from firmware.imageio import ImageError, read_image

    for f in files:
        try:
            yield f.name, read_image(f)
        except ImageError as exc:
            log.warning("skipping %s: %s", f, exc)
            yield f.name, None


def scene_crops(folder: Path, rec: Recognizer) -> Iterator[tuple[str, np.ndarray | None]]:
    """The plates of a scenes folder whose labels.tsv has boxes but no text (scenes-ro), cut as the
    appliance cuts them: the detection whose centre lies in a labelled box, trimmed by the firmware's
    margin. One item per labelled box, None where the detector found nothing there or the plate
    is cut narrower than MIN_WIDTH."""
    from firmware.imageio import ImageError, read_image
    from firmware.recognition import detect, plate_crop

    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    with open(folder / "labels.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            boxes.setdefault(row["file"], []).append(tuple(float(row[k]) for k in "xywh"))
    for name, rows in sorted(boxes.items()):
        try:
            frame = read_image(folder / name)
        except ImageError as exc:
            log.warning("skipping %s: %s", folder / name, exc)
            yield from ((f"{name}#{i}", None) for i in range(len(rows)))
            continue
        dets = rec.detect(frame)
        for i, box in enumerate(rows):
            d = detect.centred_in(dets, box)
            crop = plate_crop(frame, d, rec.cfg.crop_margin, rec.cfg.rectify) if d else None
            yield f"{name}#{i}", crop if crop is not None and crop.shape[1] >= MIN_WIDTH and crop.shape[0] >= 8 else None


def label(items: Iterable[tuple[str, np.ndarray | None]], total: int, rec: Recognizer, floor: float = FLOOR,
          lengths: tuple[int, int] = LENGTHS) -> dict[str, np.ndarray]:
    """Read each crop and keep the sure reads: a pool with the crops at the OCR's input (x, uint8),
    their slot labels (y), texts, confidences and names, and `seen`, the crops read (items without
    an image are counted in `total` only)."""
    lo, hi = lengths
    xs, ys, texts, confs, names = [], [], [], [], []
    seen = 0
    bar = tqdm(total=total, desc="pseudo-label", mininterval=5)
    batch: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        for (name, img), r in zip(batch, rec.read_plate_images([img for _, img in batch])):
            if r.confidence >= floor and lo <= len(r.plate) <= min(hi, SLOTS):
                xs.append(stored(img))
                ys.append(encode(r.plate))
                texts.append(r.plate)
                confs.append(r.confidence)
                names.append(name)
        bar.update(len(batch))
        batch.clear()

    for name, img in items:
        if img is None:
            bar.update(1)
            continue
        seen += 1
        batch.append((name, img))
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    bar.close()
    return {"x": np.stack(xs) if xs else np.zeros((0, OCR_H, OCR_W), np.uint8),
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
        x, y = d["x"], d["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"--pseudo {path}: not a pseudo-label pool ({exc}); make it with models.ocr.pseudo") from None
    if not len(x):  # a batch's share drawn from nothing fails deep in the mixer
        raise SystemExit(f"--pseudo {path}: holds no crops (no read reached the floor); lower --floor or label more")
    return x, y


def main() -> None:
    from firmware.imageio import expand

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, action="append", default=None,
                    help="folder of unlabelled plate crops, or of scenes whose labels.tsv has boxes without text "
                         "(default: ../shared/datasets/crops-eu); repeatable")
    ap.add_argument("--models-dir", type=Path, default=None, help="the labelling OCR (default: the shipped models)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--floor", type=float, default=FLOOR)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from models import DATASETS

    rec = labeller(args.models_dir)
    pools = []
    for folder in args.folder or [DATASETS / "crops-eu"]:
        if (folder / "labels.tsv").exists():
            with open(folder / "labels.tsv") as fh:
                total = sum(1 for _ in fh) - 1
            pools.append(label(scene_crops(folder, rec), total, rec, args.floor))
        else:
            files = expand([str(folder)])
            pools.append(label(crop_files(files), len(files), rec, args.floor))
        log.info("%s: kept %d of %d crops (confidence >= %.2f, %d-%d characters)", folder,
                 len(pools[-1]["text"]), int(pools[-1]["seen"]), args.floor, *LENGTHS)
    pool = {k: np.concatenate([p[k] for p in pools]) for k in ("x", "y", "text", "confidence", "name")}
    pool["seen"] = np.array(sum(int(p["seen"]) for p in pools))
    save(pool, args.out)
    log.info("%d crops -> %s", len(pool["text"]), args.out)


if __name__ == "__main__":
    main()
