"""Live throughput: can the pipeline keep up with a 30 fps 1280x720 camera on this machine?

Runs the threaded pipeline (capture thread -> bounded queue -> motion gate ->
recognition -> tracker) against the simulated road in real time for a while and
reports frames in / recognised / skipped by the motion gate / dropped, recognition
latency, reads, and the process CPU time.

    .venv/bin/python benchmarks/pipeline_throughput.py [--seconds 60] [--fps 30] [--rate 20] [--no-gate]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.camera.simulated import SimulatedRoad  # noqa: E402
from firmware.app import load_recognizer  # noqa: E402
from firmware.commands.simulate import score  # noqa: E402
from firmware.config import Config  # noqa: E402
from firmware.health import Health  # noqa: E402
from firmware.pipeline import Pipeline  # noqa: E402
from firmware.tracking import Tracker  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--rate", type=float, default=20, help="vehicles per minute")
    ap.add_argument("--models-dir", type=Path, default=None, help="models other than the shipped ones")
    ap.add_argument("--night", action="store_true")
    ap.add_argument("--no-gate", action="store_true", help="recognise every frame (shows what the gate saves)")
    ap.add_argument("--threads", type=int, default=0, help="recognition threads (0: runtime default)")
    args = ap.parse_args()
    cfg = Config()
    cfg.camera.fps = args.fps
    cfg.camera.simulated.realtime = True
    cfg.camera.simulated.vehicles_per_minute = args.rate
    cfg.camera.simulated.night = args.night
    cfg.pipeline.motion_gate = not args.no_gate
    cfg.recognition.threads = args.threads
    cfg.recognition.models_dir = args.models_dir
    rec, why = load_recognizer(cfg)
    if rec is None:
        print(f"recognition unavailable: {why}", file=sys.stderr)
        return 2
    cam = SimulatedRoad(cfg.camera)
    health = Health(".", clock=lambda: True)
    reads = []
    pipe = Pipeline(cam, rec, Tracker(cfg.pipeline, settle=rec.settle_fused), cfg.pipeline, health, on_read=reads.append)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    pipe.start()
    time.sleep(args.seconds)
    pipe.stop()
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    p50, p95 = health.latency_ms()
    in_view = {v.plate for v in cam.vehicles}  # still on the road at the stop: not scored
    passed = [p for p in cam.plates if p not in in_view]
    scored = score(passed, cam.directions, [r for r in reads if r.ground_truth not in in_view])
    out = {
        "seconds": round(wall, 1),
        "camera_fps": args.fps,
        "resolution": f"{cfg.camera.width}x{cfg.camera.height}",
        "motion_gate": not args.no_gate,
        "frames_in": health.frames_in,
        "input_fps": round(health.frames_in / wall, 2),
        "frames_processed": health.frames_processed,
        "frames_skipped_no_motion": health.frames_skipped,
        "frames_dropped": health.frames_dropped,
        "dropped_pct": round(100 * health.frames_dropped / max(1, health.frames_in), 2),
        "latency_ms_p50": p50,
        "latency_ms_p95": p95,
        "vehicles_spawned": cam.spawned,
        "vehicles_passed": scored["vehicles"],
        "reads": scored["reads"],
        "exactly_one_correct": scored["correct"],
        "duplicates": scored["duplicates"],
        "phantoms": scored["phantoms"],
        "missed": scored["missed"],
        "wrong": scored["wrong"],
        "cpu_seconds": round(cpu, 1),
        "cpu_cores_used": round(cpu / wall, 2),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
