"""`polewatch simulate`: drive N vehicles down the simulated road and score the reads.

Runs the real pipeline (motion gate, recognizer, tracker, illuminator on a fake
GPIO) single-threaded on the simulator's clock, as fast as the CPU allows, and
compares every read with the ground truth: correct, duplicate, phantom, missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from firmware import config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run the simulated road until N vehicles have passed and score the reads")
    p.add_argument("--vehicles", type=int, default=20, metavar="N", help="vehicles to drive past (default 20)")
    p.add_argument("--night", action="store_true", help="infrared night scene")
    p.add_argument("--json", action="store_true", help="one JSON line per read, then one summary line")
    p.add_argument("--seed", type=int, default=None, help="random seed (default from config)")
    p.add_argument("--speed", type=float, default=None, metavar="MPH", help="traffic speed")
    p.add_argument("--rate", type=float, default=None, metavar="VPM", help="vehicles per minute")
    p.add_argument("--angle", type=float, default=None, metavar="DEG", help="road angle in the frame")
    p.set_defaults(func=run)


def simulate(cfg: Any, vehicles: int, on_read: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the simulation described by `cfg.camera.simulated`; return the summary figures."""
    from drivers.camera.simulated import SimulatedRoad
    from drivers.gpio import FakeGpio
    from drivers.illuminator import Illuminator
    from firmware.app import load_recognizer
    from firmware.cli import UserError
    from firmware.health import Health
    from firmware.pipeline import Pipeline
    from firmware.tracking import Tracker

    recognizer, why = load_recognizer(cfg)
    if recognizer is None:
        raise UserError(f"recognition unavailable: {why}")
    cfg.camera.simulated.realtime = False
    ill = Illuminator(cfg.illuminator, FakeGpio(), temperature=lambda: None,
                      latitude=cfg.site.latitude, longitude=cfg.site.longitude)
    ill.start()
    cam = SimulatedRoad(cfg.camera, ill.led_state, max_vehicles=vehicles)
    health = Health(cfg.device.data_dir, versions=recognizer.versions, clock=lambda: True)
    reads: list[Any] = []

    def collect(read: Any) -> None:
        reads.append(read)
        if on_read is not None:
            truth = read.ground_truth
            on_read({
                "plate": read.plate, "confidence": read.confidence, "truth": truth,
                "correct": truth is not None and read.plate == truth, "direction": read.direction,
                "truth_direction": cam.directions.get(truth or ""), "frames": read.frames,
                "candidates": [{"plate": c.plate, "confidence": c.confidence} for c in read.candidates],
                "first_seen": read.first_seen.isoformat(), "last_seen": read.last_seen.isoformat(),
            })

    tracker = Tracker(cfg.pipeline, clock_synced=lambda: True, settle=recognizer.settle_fused)
    pipe = Pipeline(cam, recognizer, tracker, cfg.pipeline, health, on_read=collect, illuminator=ill)
    t0 = time.perf_counter()
    frames = 0
    try:
        for frame in cam.frames():
            frames += 1
            health.count("frames_in")
            pipe.step(frame)
        pipe.finish()
    finally:
        ill.close()
    seconds = time.perf_counter() - t0
    return score(cam.plates, cam.directions, reads) | {
        "night": cfg.camera.simulated.night,
        "frames": frames,
        "frames_processed": health.frames_processed,
        "frames_skipped_no_motion": health.frames_skipped,
        "latency_ms_p50": health.latency_ms()[0],
        "latency_ms_p95": health.latency_ms()[1],
        "illuminator_switches": ill.switches,
        "seconds": round(seconds, 2),
        "simulated_seconds": round(frames / cfg.camera.fps, 2),
        "models": recognizer.versions,
    }


def score(plates: list[str], directions: dict[str, str], reads: list[Any]) -> dict[str, Any]:
    """Exactly-one-correct-read accounting against the simulator's ground truth."""
    by_vehicle: dict[str, list[Any]] = defaultdict(list)
    phantoms = 0
    for r in reads:
        if r.ground_truth is None:
            phantoms += 1
        else:
            by_vehicle[r.ground_truth].append(r)
    correct = wrong = missed = duplicates = direction_ok = 0
    missed_plates: list[str] = []
    for p in plates:
        rs = by_vehicle.get(p, [])
        duplicates += max(0, len(rs) - 1)
        if not rs:
            missed += 1
            missed_plates.append(p)
        elif len(rs) == 1 and rs[0].plate == p:
            correct += 1
        else:
            wrong += 1
        direction_ok += sum(1 for r in rs[:1] if r.direction == directions.get(p))
    n = len(plates)
    return {
        "vehicles": n,
        "reads": len(reads),
        "correct": correct,
        "duplicates": duplicates,
        "phantoms": phantoms,
        "missed": missed,
        "wrong": wrong,
        "correct_rate": round(correct / n, 4) if n else None,
        "phantom_rate": round(phantoms / len(reads), 4) if reads else 0.0,
        "direction_correct": direction_ok,
        "missed_plates": missed_plates,  # ground truth of the vehicles that gave no read, to look into
    }


def run(args: argparse.Namespace) -> int:
    from firmware.cli import UserError

    if args.vehicles < 1:
        raise UserError(f"--vehicles must be at least 1, got {args.vehicles}")
    cfg = config.load(args.config)
    sim = cfg.camera.simulated
    cfg.camera.backend = "simulated"
    if args.night:
        sim.night = True
    for name, value in (("seed", args.seed), ("speed_mph", args.speed), ("vehicles_per_minute", args.rate),
                        ("angle_deg", args.angle)):
        if value is not None:
            try:
                setattr(sim, name, value)
            except ValueError as exc:
                raise UserError(f"--{name}: {value!r} is invalid: {exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]

    def show(read: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(read), flush=True)
        else:
            mark = "ok " if read["correct"] else "BAD"
            print(f"{mark} {read['plate']:10} {read['confidence']:.2f}  truth {read['truth'] or '-':10} "
                  f"{read['direction']:11} {read['frames']:3d} frames", flush=True)

    summary = simulate(cfg, args.vehicles, show)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"\n{summary['vehicles']} vehicles, {summary['reads']} reads: {summary['correct']} correct, "
            f"{summary['duplicates']} duplicates, {summary['phantoms']} phantoms, {summary['missed']} missed, "
            f"{summary['wrong']} wrong; {summary['frames']} frames ({summary['frames_processed']} recognised), "
            f"{summary['seconds']} s",
            file=sys.stdout,
        )
    return 0
