"""Health gate: a new release must prove itself (frames flowing, recognizer loaded,
broker connected) within a deadline, or the updater switches back.

The running application writes a small JSON health file (atomically, every few
seconds) and the updater, which runs in another process, polls it. The file
names the release version and the time, so a stale file from the previous
release can never pass the gate for the new one.

    {"version": "1.4.0", "pid": 812, "time": 1764342000.5,
     "frames_flowing": true, "recognizer_loaded": true, "broker_connected": true}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ota import fsutil

CHECKS = {"frames": "frames_flowing", "recognizer": "recognizer_loaded", "broker": "broker_connected"}


def write_health_file(path: Path, *, version: str, frames_flowing: bool, recognizer_loaded: bool,
                      broker_connected: bool, **extra: Any) -> None:
    """Called by the application (firmware.health) to publish its state to the updater."""
    fsutil.atomic_write_json(Path(path), {
        "version": version, "pid": os.getpid(), "time": time.time(), "frames_flowing": bool(frames_flowing),
        "recognizer_loaded": bool(recognizer_loaded), "broker_connected": bool(broker_connected), **extra})


def read_health_file(path: Path) -> dict[str, Any] | None:
    return fsutil.read_json(Path(path), None)


@dataclass
class GateResult:
    healthy: bool
    detail: str
    waited_s: float


class HealthGate:
    """Waits for the release `version` to report every required check true after `since`."""

    def __init__(self, source: Path | Callable[[], dict[str, Any] | None], require: Iterable[str] = tuple(CHECKS),
                 poll_s: float = 0.1):
        self.source = source
        self.require = [CHECKS[r] for r in require]
        self.poll_s = poll_s

    def read(self) -> dict[str, Any] | None:
        if callable(self.source):
            return self.source()
        return read_health_file(self.source)

    def problems(self, report: dict[str, Any] | None, version: str, since: float) -> list[str]:
        if not report:
            return ["no health report"]
        if report.get("version") != version:
            return [f"health report is from release {report.get('version')!r}, not {version}"]
        if float(report.get("time", 0)) < since:
            return ["health report is older than the restart"]
        return [f"{k} is false" for k in self.require if not report.get(k)]

    def wait(self, version: str, since: float, timeout_s: float) -> GateResult:
        start = time.monotonic()
        problems = ["no health report"]
        while True:
            problems = self.problems(self.read(), version, since)
            waited = time.monotonic() - start
            if not problems:
                return GateResult(True, f"release {version} healthy after {waited:.1f}s", waited)
            if waited >= timeout_s:
                return GateResult(False, f"release {version} not healthy within {timeout_s:g}s: "
                                         + "; ".join(problems), waited)
            time.sleep(self.poll_s)
