"""Whether the bar test (`glyphs.Glyphs.bars`) tells I from 1 on real plates, and how often it counts an I
that is not there.

The tracker counts a doubled I on a vehicle's fused plate by its bare bars (docs/recognition.md). A glyph
rule tuned on the generator's fonts must hold on real dies too: this reads every crop of a crops set
(`labels.csv`: file, plate) with the shipped OCR and asks of each true 1 and I whether the glyph under it
is a bare bar (a rule that read bars as I would turn every such 1 into an I), then puts an I into each gap
of the right text and asks whether the bar count (`glyphs.bar_choice`) passes it: beside other glyphs
(separators, the plate's edge) and beside another I (the case the tracker asks about).

    .venv/bin/python benchmarks/bar_check.py [--crops ../shared/datasets/us-crops-dev] [--models-dir DIR]
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
from models import DATASETS  # noqa: E402


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
    for row in tqdm(rows, desc="crops"):
        text = ocr.normalise(row["plate"])
        crop = cv2.imread(str(args.crops / row["file"]))
        if crop is None or not text:
            continue
        g = glyphs.Glyphs(crop, rec._probs([crop])[0])
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
            # the bar count alone, as the tracker would apply it to such a rival
            a = b = j
            while a > 0 and rival[a - 1] == "I":
                a -= 1
            while b + 1 < len(rival) and rival[b + 1] == "I":
                b += 1
            added[key][1] += int(g.bars(rival, a, b))
    out = {
        "crops": len(rows),
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
