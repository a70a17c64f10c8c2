"""O against 0 on synthetic plates: the glyph check (recognition.glyph_check) off and on, side by side.

Real US plates rarely carry an O, so the shared sets say little about it; the simulated road and
plates like these do. Texts in the generator's formats with O or 0 put on a fifth of their
characters, rendered in every plate font that tells O from 0 (models.synth.plates), clean and
degraded as training plates are, read as crops (second look and all) with the check off and on.
Prints how many read right each way, how many the check mended and broke, and the Os read as 0.

    .venv/bin/python benchmarks/glyph_check.py [--plates 600] [--seed 5] [--models-dir DIR]
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


def texts(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    while len(out) < n:
        t = "".join(("O" if rng.random() < 0.5 else "0") if rng.random() < SHARE else c for c in plates.random_text(rng))
        if "O" in t or "0" in t:
            out.append(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        want = texts(rng, args.plates)
        crops = [plates.render_plate(rng, t, degrade=degrade)[0] for t in tqdm(want, desc="rendering", leave=False)]
        got = {on: [r.plate for r in readers[on].read_crops(crops)] for on in (False, True)}
        right = {on: [g == t for g, t in zip(got[on], want)] for on in (False, True)}
        os_as_0 = {on: sum(sum(1 for a, b in zip(t, g) if a == "O" and b == "0") for t, g in zip(want, got[on])
                           if len(g) == len(t)) for on in (False, True)}
        row = {"plates": len(want), "os": sum(t.count("O") for t in want),
               "right_off": sum(right[False]), "right_on": sum(right[True]),
               "mended": sum(1 for a, b in zip(right[False], right[True]) if b and not a),
               "broken": sum(1 for a, b in zip(right[False], right[True]) if a and not b),
               "os_read_0_off": os_as_0[False], "os_read_0_on": os_as_0[True]}
        summary["degraded" if degrade else "clean"] = row
        print(f"{'degraded' if degrade else 'clean':8}  plates {row['plates']}  right off {row['right_off']} -> on "
              f"{row['right_on']}  (mended {row['mended']}, broken {row['broken']})  Os read 0: "
              f"{row['os_read_0_off']} -> {row['os_read_0_on']} of {row['os']}", flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
