"""Memory over a long run: RSS sampled while the live pipeline runs on the simulated road.

The bounded queue and per-track limits must keep memory flat: the script prints
RSS samples over time and the growth between the first and the last third. It
tunes the heap as `polewatch run` does (firmware.malloc) and first fills the
simulator's glyph cache (bounded, about 30 MB), which otherwise grows for the
first half hour and hides what the pipeline does.

    .venv/bin/python benchmarks/pipeline_memory.py [--minutes 30] [--sample-s 30] [--fps 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.camera.simulated import SimulatedRoad  # noqa: E402
from firmware import malloc  # noqa: E402
from firmware.app import load_recognizer  # noqa: E402
from firmware.config import Config  # noqa: E402
from firmware.health import Health  # noqa: E402
from firmware.pipeline import Pipeline  # noqa: E402
from firmware.tracking import Tracker  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--sample-s", type=float, default=30)
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--rate", type=float, default=20, help="vehicles per minute")
    ap.add_argument("--models-dir", type=Path, default=None, help="models other than the shipped ones")
    ap.add_argument("--glibc-defaults", action="store_true",
                    help="leave glibc's heap settings as they are (polewatch run tunes them: firmware.malloc)")
    args = ap.parse_args()
    if not args.glibc_defaults:
        malloc.tune()
    cfg = Config()
    cfg.camera.fps = args.fps
    cfg.camera.simulated.realtime = True
    cfg.camera.simulated.vehicles_per_minute = args.rate
    cfg.recognition.models_dir = args.models_dir
    rec, why = load_recognizer(cfg)
    if rec is None:
        print(f"recognition unavailable: {why}", file=sys.stderr)
        return 2
    from models.synth.plates import warm_glyph_cache

    print(json.dumps({"simulator_glyphs_cached": warm_glyph_cache(), "rss_mb": round(rss_mb(), 1)}), flush=True)
    cam = SimulatedRoad(cfg.camera)
    health = Health(".", clock=lambda: True)
    reads = [0]
    pipe = Pipeline(cam, rec, Tracker(cfg.pipeline, settle=rec.settle_fused), cfg.pipeline, health,
                    on_read=lambda r: reads.__setitem__(0, reads[0] + 1))
    t0 = time.monotonic()
    pipe.start()
    samples = []
    while time.monotonic() - t0 < args.minutes * 60:
        time.sleep(args.sample_s)
        s = {"t_s": round(time.monotonic() - t0), "rss_mb": round(rss_mb(), 1), "frames_in": health.frames_in,
             "dropped": health.frames_dropped, "reads": reads[0], "tracks_open": len(pipe.tracker.tracks)}
        samples.append(s)
        print(json.dumps(s), flush=True)
        if pipe.error:
            break
    pipe.stop()
    n = max(1, len(samples) // 3)
    first = sum(s["rss_mb"] for s in samples[:n]) / n
    last = sum(s["rss_mb"] for s in samples[-n:]) / n
    print(json.dumps({"summary": True, "minutes": args.minutes, "samples": len(samples),
                      "rss_mb_first_third": round(first, 1), "rss_mb_last_third": round(last, 1),
                      "rss_mb_min": min(s["rss_mb"] for s in samples), "rss_mb_max": max(s["rss_mb"] for s in samples),
                      "growth_mb": round(last - first, 1), "frames_in": health.frames_in,
                      "frames_dropped": health.frames_dropped, "reads": reads[0], "error": repr(pipe.error)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
