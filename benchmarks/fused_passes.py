"""The simulated road's fused plates kept, and the fused settle rules measured on them offline.

A rule that settles a pass's vote on its fused plate (`glyphs.fused_choice`, asked by the tracker) changes
a handful of the road's 640 vehicles, and a road run takes 6-15 minutes. `dump` runs the roads once and
keeps, for every pass whose vote holds two texts or more, the fused plate's crop as the tracker cuts it,
the OCR's probabilities on it, the ranked vote and the ground truth (one pickle per road: local files made
here, never read from elsewhere). `eval` then replays the current rules on them in seconds: of the passes
the tracker would ask about (the vote's second or third text an O/0 twin of the leader or holding an II
the leader reads as one I), how many the rules leave, mend and break against the frames' vote, and
whether the replay settles every pass as the tracker did in the run that made the dump. The crops
and probabilities do not depend on the glyph rules, so one dump serves every change to them; a new OCR,
detector, fusion or road needs a new dump.

    .venv/bin/python benchmarks/fused_passes.py dump --seeds 1-8 --jobs 2 --out /tmp/fused
    .venv/bin/python benchmarks/fused_passes.py eval /tmp/fused [--verbose]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import configured  # noqa: E402
from benchmarks.simulate_accuracy import seed_list  # noqa: E402


def dump_road(args: argparse.Namespace, seed: int, cond: str) -> tuple[str, int]:
    """One road run with every pass's fused plate recorded, and the text the tracker settled on (its own
    decisions unchanged)."""
    from firmware import tracking
    from firmware.commands.simulate import simulate
    from firmware.recognition import fusion

    passes: list[dict] = []
    settle = tracking.Tracker._settle_fused

    def recording(self: tracking.Tracker, k: tracking.Track, ranked: list[tuple[str, float]]):
        rec = getattr(self.settle, "__self__", None)  # the Recognizer whose settle_fused the tracker asks
        made = fusion.fuse(list(k.views)) if rec is not None and len(ranked) >= 2 and k.views else None
        g = rec.fused_glyphs(made.image, made.box) if made is not None else None
        settled = settle(self, k, ranked)
        if g is not None:
            passes.append({"crop": g.crop, "probs": g.probs,
                           "ranked": [(t, round(s / k.weight, 4)) for t, s in ranked[:5]],
                           "settled": (settled or ranked)[0][0],
                           "truth": max(k.truth.items(), key=lambda kv: kv[1])[0] if k.truth else None})
        return settled

    tracking.Tracker._settle_fused = recording
    cfg = configured.load(args)
    cfg.device.data_dir = Path(tempfile.mkdtemp(prefix="pw-fused-"))
    cfg.camera.simulated.night = cond == "night"
    cfg.camera.simulated.seed = seed
    simulate(cfg, args.vehicles, lambda r: None)
    out = args.out / f"seed{seed}-{cond}.pkl"
    with open(out, "wb") as f:
        pickle.dump(passes, f)
    return out.name, len(passes)


def evaluate(folder: Path, verbose: bool) -> dict:
    """The current rules replayed on every kept pass: how many the tracker would ask about, and of those
    how many the glyphs leave, mend, break or change from one wrong text to another; and how many
    passes the replay settles as the run that made the dump did (all of them, while neither the rules nor
    the tracker have changed since)."""
    from firmware.recognition import glyphs

    passes = asked = left = mended = broken = as_run = 0
    for path in tqdm(sorted(folder.glob("*.pkl")), desc="roads"):
        with open(path, "rb") as f:
            kept = pickle.load(f)
        for p in kept:
            passes += 1
            voted = [t for t, _ in p["ranked"]]
            lead = read = voted[0]
            if glyphs.fused_asks(voted):
                asked += 1
                said = glyphs.fused_choice(glyphs.Glyphs(p["crop"], p["probs"]), voted)
                read = said if said and said in voted else lead
                left += read == lead
                mended += read != lead and read == p["truth"]
                broken += read != lead and lead == p["truth"]
                if verbose and read != lead:
                    print(f"  {path.stem}: {lead} -> {read} (truth {p['truth']}, vote {p['ranked'][:3]})")
            as_run += read == p["settled"]
    return {"passes": passes, "asked": asked, "left": left, "mended": mended, "broken": broken,
            "changed_wrong_to_wrong": asked - left - mended - broken, "settled_as_the_run": as_run}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="run the roads and keep every pass's fused plate")
    d.add_argument("--seeds", type=seed_list, default=seed_list("1-8"))
    d.add_argument("--conditions", default="day,night")
    d.add_argument("--vehicles", type=int, default=40)
    d.add_argument("--jobs", type=int, default=1)
    d.add_argument("--out", type=Path, required=True)
    configured.add_arguments(d)
    e = sub.add_parser("eval", help="the current fused settle rules on a dump")
    e.add_argument("folder", type=Path)
    e.add_argument("--verbose", action="store_true", help="print every pass the rules change")
    args = ap.parse_args()
    if args.cmd == "eval":
        print(json.dumps(evaluate(args.folder, args.verbose)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    roads = [(s, c) for s in args.seeds for c in args.conditions.split(",")]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(dump_road, args, s, c) for s, c in roads]
        for fut in tqdm(futures, desc="roads"):
            name, n = fut.result()
            tqdm.write(f"{name}: {n} passes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
