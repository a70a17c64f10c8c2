"""O against 0 (or I against 1, B against 8) on synthetic plates: the glyph check off and on, side by side.

Real US plates rarely carry an O or an I, so the shared sets say little about them; the simulated road
and plates like these do. Texts in the generator's formats with the letter or its digit put on a fifth
of their characters, rendered in every plate font that tells the two apart (models.synth.plates), clean
and degraded as training plates are, read as crops (second look and all) with the glyph check
(recognition.glyph_check, which weighs O against 0 only) off and on. Prints how many read right each
way, how many the check mended and broke, how many letters were read as the digit and how many dropped.
With `--doubled` each text instead carries the letter or the digit twice in a row (II, 11, OO, 00), which
CTC can only write with a blank column between the two.

    .venv/bin/python benchmarks/glyph_check.py [--pair O0|I1|B8] [--doubled] [--plates 600] [--seed 5] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from firmware.recognition import Recognizer  # noqa: E402
from models.synth import plates  # noqa: E402

SHARE = 0.2  # characters turned into O or 0


def texts(rng: np.random.Generator, n: int, pair: str = "O0", doubled: bool = False) -> list[str]:
    """`n` texts in the generator's formats with `pair`'s letter or digit on about SHARE of the characters,
    or (`doubled`) with one of them written twice in a row at a random place."""
    letter, digit = pair
    out = []
    while len(out) < n:
        if doubled:
            t = plates.double_text(rng, pair, own_share=0.0)
            if len(t) >= 3:
                out.append(t)
            continue
        t = "".join((letter if rng.random() < 0.5 else digit) if rng.random() < SHARE else c
                    for c in plates.random_text(rng))
        if letter in t or digit in t:
            out.append(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", choices=("O0", "I1", "B8"), default="O0", help="the letter and the digit it is read as")
    ap.add_argument("--doubled", action="store_true", help="the letter or the digit twice in a row in each text")
    ap.add_argument("--plates", type=int, default=600)
    ap.add_argument("--seed", type=int, default=5)
    configured.add_arguments(ap)
    args = ap.parse_args()
    cfg = configured.load(args).recognition
    readers = {}
    for on in (False, True):
        c = cfg.model_copy(update={"glyph_check": on})
        readers[on] = Recognizer.from_config(c)
    summary = {}
    for degrade in (False, True):
        rng = np.random.default_rng(args.seed)
        want = texts(rng, args.plates, args.pair, args.doubled)
        crops = [plates.render_plate(rng, t, degrade=degrade)[0] for t in tqdm(want, desc="rendering", leave=False)]
        got = {on: [r.plate for r in readers[on].read_crops(crops)] for on in (False, True)}
        right = {on: [g == t for g, t in zip(got[on], want)] for on in (False, True)}
        letter, digit = args.pair
        as_digit = {on: sum(sum(1 for a, b in zip(t, g) if a == letter and b == digit) for t, g in zip(want, got[on])
                            if len(g) == len(t)) for on in (False, True)}
        # a letter dropped: the read is the text without one of its letters
        dropped = {on: sum(1 for t, g in zip(want, got[on]) if len(g) == len(t) - 1
                           and any(t[i] == letter and t[:i] + t[i + 1:] == g for i in range(len(t))))
                   for on in (False, True)}
        row = {"plates": len(want), "letters": sum(t.count(letter) for t in want),
               "right_off": sum(right[False]), "right_on": sum(right[True]),
               "mended": sum(1 for a, b in zip(right[False], right[True]) if b and not a),
               "broken": sum(1 for a, b in zip(right[False], right[True]) if a and not b),
               "read_as_digit_off": as_digit[False], "read_as_digit_on": as_digit[True],
               "dropped_off": dropped[False], "dropped_on": dropped[True]}
        if args.doubled:  # the letter's pair and the digit's apart: which of them CTC merges
            for name, ch in (("letter", letter), ("digit", digit)):
                has = [ch * 2 in t for t in want]
                row[f"{name}_pairs"] = sum(has)
                row[f"{name}_pairs_right_on"] = sum(r for r, h in zip(right[True], has) if h)
        summary["degraded" if degrade else "clean"] = row
        print(f"{'degraded' if degrade else 'clean':8}  plates {row['plates']}  right off {row['right_off']} -> on "
              f"{row['right_on']}  (mended {row['mended']}, broken {row['broken']})  {letter}s read {digit}: "
              f"{row['read_as_digit_off']} -> {row['read_as_digit_on']} of {row['letters']}, dropped "
              f"{row['dropped_off']} -> {row['dropped_on']}", flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
