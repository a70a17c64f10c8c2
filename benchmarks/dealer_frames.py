"""Plates in a dealer's frame: what the frame's printed name costs the OCR, side by side.

US cars carry dealer and fan frames whose bars print a name in bold letters above and below the
registration; a scenes-ca Toyota frame's name, a few pixels under the registration, had the shipped
OCR read 7A33474 as ZM3347. This probe renders the same texts twice, as training plates are rendered
(models.synth.plates.render_plate), once as the generator always drew them and once each in a dealer's
frame (`dealer_share=1`), and reads them as crops (second look and all), at the rendered size and again
scaled down to 80-110 px wide (a plate as a pole camera or a photo holds it). Prints the exact read
rate of each, side by side in one run.

    .venv/bin/python benchmarks/dealer_frames.py [--plates 400] [--seed 77] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from firmware.recognition import Recognizer  # noqa: E402
from models.synth import plates  # noqa: E402

SMALL_WIDTH = (80, 110)  # px: plates as the cameras hold them


def render(seed: int, n: int, dealer_share: float) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """`n` plates from `seed` (the texts depend on the seed alone), as rendered and scaled down."""
    rng = np.random.default_rng(seed)
    texts = [plates.random_text(np.random.default_rng([seed, i])) for i in range(n)]
    big, small, labels = [], [], []
    for t in tqdm(texts, desc=f"rendering (dealer share {dealer_share})", leave=False, mininterval=2):
        img, label = plates.render_plate(rng, t, dealer_share=dealer_share)
        w = int(rng.integers(*SMALL_WIDTH))
        h = max(8, round(img.shape[0] * w / img.shape[1]))
        big.append(img)
        small.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        labels.append(label)
    return big, small, labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plates", type=int, default=400)
    ap.add_argument("--seed", type=int, default=77)
    configured.add_arguments(ap)
    args = ap.parse_args()
    r = Recognizer.from_config(configured.load(args).recognition)
    rows = {}
    for name, share in (("plain", 0.0), ("dealer frame", 1.0)):
        big, small, labels = render(args.seed, args.plates, share)
        for size, crops in (("as rendered", big), ("80-110 px", small)):
            reads = r.read_crops(crops)
            rows[f"{name}, {size}"] = round(sum(x.plate == t for x, t in zip(reads, labels)) / len(labels), 4)
    for k, v in rows.items():
        print(f"{k:28s} exact {v:.3f}")
    print(json.dumps({"plates": args.plates, "models": r.versions, "exact": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
