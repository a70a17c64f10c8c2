"""Health figures for telemetry and the systemd watchdog.

Figures: frames in/processed/skipped/dropped, recognition latency p50/p95,
reads per hour, CPU temperature, disk free, illuminator and camera state, model
versions, clock sync. systemd notification speaks the sd_notify datagram protocol
directly (a few lines, no dependency): READY=1 once frames flow, WATCHDOG=1
only while the pipeline is alive, so a hung pipeline gets restarted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drivers.illuminator import read_cpu_temperature

log = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex(2) return value: clock not synchronised


def clock_synced() -> bool:
    """True when the kernel says an NTP/PTP/GPS daemon disciplines the clock (adjtimex, as timedatectl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return Path("/run/systemd/timesync/synchronized").exists()
    return state >= 0 and state != TIME_ERROR


class Health:
    """Counters the pipeline updates from its threads; `snapshot()` is the telemetry payload."""

    def __init__(
        self,
        data_dir: Path | str = ".",
        latency_window: int = 1000,
        illuminator: Callable[[], dict[str, Any]] | None = None,
        camera: Callable[[], dict[str, Any]] | None = None,
        versions: Mapping[str, str] | None = None,
        clock: Callable[[], bool] = clock_synced,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self.frames_in = 0
        self.frames_processed = 0
        self.frames_skipped = 0  # motion gate: empty road
        self.frames_dropped = 0  # queue full: we could not keep up
        self.reads = 0
        self.reads_repeated = 0  # vehicle passes that were a read made already (tracking.Tracker.repeats)
        self.passes_fused = 0  # passes whose O against 0 was measured on their fused plate (Tracker.fused)
        self.errors = 0
        self._latency: deque[float] = deque(maxlen=latency_window)
        self._read_times: deque[float] = deque()
        self._illuminator, self._camera = illuminator, camera
        self.versions = dict(versions or {})
        self._clock = clock
        self._clock_cache: tuple[float, bool] = (-1e9, False)
        self.started = time.monotonic()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency.append(seconds)

    def read_made(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.reads += 1
            self._read_times.append(now)
            while self._read_times and now - self._read_times[0] > 3600:
                self._read_times.popleft()

    def clock_synced(self) -> bool:
        """Cached for 10 s: every read carries it, the syscall need not run per read."""
        t, v = self._clock_cache
        now = time.monotonic()
        if now - t > 10:
            v = bool(self._clock())
            self._clock_cache = (now, v)
        return v

    def latency_ms(self) -> tuple[float | None, float | None]:
        with self._lock:
            lat = sorted(self._latency)
        if not lat:
            return None, None
        return round(lat[len(lat) // 2] * 1000, 2), round(lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000, 2)

    def snapshot(self) -> dict[str, Any]:
        p50, p95 = self.latency_ms()
        uptime = time.monotonic() - self.started
        with self._lock:
            window = min(3600.0, max(uptime, 1.0))
            per_hour = len(self._read_times) * 3600.0 / window
            figures = {
                "frames_in": self.frames_in,
                "frames_processed": self.frames_processed,
                "frames_skipped_no_motion": self.frames_skipped,
                "frames_dropped": self.frames_dropped,
                "reads_total": self.reads,
                "reads_repeated": self.reads_repeated,
                "passes_fused": self.passes_fused,
                "errors": self.errors,
            }
        try:
            disk_free = shutil.disk_usage(self.data_dir).free
        except OSError:
            disk_free = None
        return {
            **figures,
            "latency_ms_p50": p50,
            "latency_ms_p95": p95,
            "reads_per_hour": round(per_hour, 1),
            "cpu_temperature_c": read_cpu_temperature(),
            "disk_free_bytes": disk_free,
            "illuminator": self._illuminator() if self._illuminator else None,
            "camera": self._camera() if self._camera else None,
            "models": self.versions,
            "clock_synced": self.clock_synced(),
            "uptime_s": round(uptime, 1),
        }


class SystemdNotifier:
    """sd_notify over the NOTIFY_SOCKET datagram socket; silent no-op when not under systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if addr.startswith("@"):
            self.address = "\0" + addr[1:]  # abstract namespace
        elif addr.startswith("/"):
            self.address = addr
        self.watchdog_interval_s: float | None = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 1e6 / 2  # ping at half the deadline
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(message.encode(), self.address)
            return True
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self, now: float | None = None) -> bool:
        """Ping when due (half of WatchdogSec); returns True when a ping went out."""
        if self.watchdog_interval_s is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.watchdog_interval_s:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")
