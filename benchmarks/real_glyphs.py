"""The glyph rules against real plates: what the fused plate's glyphs would say of each real O, 0, 1 and I.

The tracker settles O against 0 by a glyph's width and counts a doubled I by its bare bars on a vehicle's
fused plate (docs/recognition.md). Rules found on the generator's fonts must hold on real dies too: this
reads every crop of a crops set (`labels.csv`: file, plate) with the shipped OCR and asks
- of each true O and 0, what its width against the plate's other digits says (`glyphs.rounds_say`: O,
  0 or nothing; against its letters where no other digit is measured): a 0 said O or an O said 0 is a
  rule that would turn a right read wrong;
- of each true 1 and I, whether the glyph is a bare bar (a rule that read bars as I would turn every such
  1 into an I);
- of an I put into each gap of the right text, whether the bar count (`Glyphs.bars`) passes it: beside
  other glyphs (separators, the plate's edge) and beside another I (the case the tracker asks about).

    .venv/bin/python benchmarks/real_glyphs.py [--crops ../shared/datasets/us-crops-dev] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import cv2
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from firmware.recognition import Recognizer, glyphs, ocr  # noqa: E402
from models import DATASETS, fixed_plate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=Path, default=DATASETS / "us-crops-dev")
    configured.add_arguments(ap)
    args = ap.parse_args()
    rec = Recognizer.from_config(configured.load(args).recognition)
    rows = list(csv.DictReader(open(args.crops / "labels.csv", newline="")))
    bars: Counter[tuple[str, bool]] = Counter()
    where: Counter[str] = Counter()
    added = {"beside_other": [0, 0], "beside_i": [0, 0]}  # asked, passed
    rounds: Counter[str] = Counter()  # "0 said O" and the like
    for row in tqdm(rows, desc="crops"):
        text = ocr.normalise(fixed_plate(args.crops.name, row["file"], row["plate"]))  # benchmarks/labels/fixes.tsv
        crop = cv2.imread(str(args.crops / row["file"]))
        if crop is None or not text:
            continue
        g = glyphs.Glyphs(crop, rec._probs([crop])[0])
        for i, (said, ref) in glyphs.rounds_say(g, text).items():
            rounds[f"{text[i]} said {said or 'nothing'} (against {ref})"] += 1
        for i, ch in enumerate(text):
            if ch in "1I":
                bar = g.bars(text[:i] + "I" + text[i + 1:], i, i)
                bars[(ch, bar)] += 1
                if bar and ch == "1":
                    where[row.get("state") or "?"] += 1
        for j in range(len(text) + 1):
            rival = text[:j] + "I" + text[j:]
            key = "beside_i" if "I" in text[max(0, j - 1): j + 1] else "beside_other"
            added[key][0] += 1
            added[key][1] += int(g.bars(rival, *glyphs.i_run(rival, j)))  # the bar count alone
    out = {
        "crops": len(rows),
        "round_glyphs_measured": dict(sorted(rounds.items())),
        "ones": bars[("1", True)] + bars[("1", False)], "ones_as_bars": bars[("1", True)],
        "is": bars[("I", True)] + bars[("I", False)], "is_as_bars": bars[("I", True)],
        "ones_as_bars_by_state": dict(where.most_common()),
        "i_added_beside_other_glyphs": {"asked": added["beside_other"][0], "passed": added["beside_other"][1]},
        "i_added_beside_an_i": {"asked": added["beside_i"][0], "passed": added["beside_i"][1]},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
