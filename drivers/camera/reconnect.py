"""Keep a camera going: reopen a missing, unplugged or stalled camera with exponential back-off.

The pipeline never sees a camera exception: `read` returns None while the camera
is away, and `state` says why (streaming, stalled, reconnecting, unavailable), so
reads already made are never lost to a camera fault and health telemetry shows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from drivers.camera.base import Camera, CameraError, EndOfStream, Frame

log = logging.getLogger(__name__)


class ReconnectingCamera(Camera):
    def __init__(
        self,
        factory: Callable[[], Camera],
        initial_s: float = 1.0,
        max_s: float = 30.0,
        stall_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.factory, self.initial_s, self.max_s, self.stall_timeout_s = factory, initial_s, max_s, stall_timeout_s
        self.clock, self.sleep = clock, sleep
        self.camera: Camera | None = None
        self.state = "closed"
        self.last_error: str | None = None
        self.reconnects = 0
        self.failures = 0
        self._backoff = initial_s
        self._retry_at = 0.0
        self._last_frame = 0.0
        self.name = "reconnecting"

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self.camera.live if self.camera is not None else True

    def open(self) -> None:
        self._try_open()

    def close(self) -> None:
        self._drop()
        self.state = "closed"

    def info(self) -> dict[str, Any]:
        inner = self.camera.info() if self.camera is not None else {}
        return {**inner, "state": self.state, "reconnects": self.reconnects, "last_error": self.last_error}

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        now = self.clock()
        if self.camera is None:
            if now < self._retry_at:
                self.sleep(min(timeout_s, self._retry_at - now))
                return None
            if not self._try_open():
                return None
        assert self.camera is not None
        try:
            frame = self.camera.read(timeout_s)
        except EndOfStream:
            raise
        except CameraError as exc:
            self._fail(f"{exc}")
            return None
        now = self.clock()
        if frame is None:
            if self.camera.live and now - self._last_frame > self.stall_timeout_s:
                self._fail(f"no frame for {now - self._last_frame:.1f} s (stalled)")
                self.state = "stalled"
            return None
        self._last_frame = now
        self._backoff = self.initial_s
        self.state = "streaming"
        return frame

    def _try_open(self) -> bool:
        self.state = "reconnecting" if self.reconnects or self.failures else "opening"
        cam = None
        try:
            cam = self.factory()
            cam.open()
        except CameraError as exc:
            if cam is not None:
                try:
                    cam.close()
                except Exception:  # noqa: BLE001
                    pass
            self._schedule(str(exc))
            self.state = "unavailable"
            return False
        if self.failures:
            self.reconnects += 1
            log.info("camera: reconnected after %d failure(s)", self.failures)
        self.camera = cam
        self._last_frame = self.clock()
        self.state = "streaming"
        return True

    def _fail(self, why: str) -> None:
        log.warning("camera: %s; reconnecting", why)
        self._drop()
        self._schedule(why)
        self.state = "reconnecting"

    def _schedule(self, why: str) -> None:
        self.failures += 1
        self.last_error = why
        self._retry_at = self.clock() + self._backoff
        log.warning("camera: %s; next try in %.1f s", why, self._backoff)
        self._backoff = min(self.max_s, self._backoff * 2)

    def _drop(self) -> None:
        if self.camera is not None:
            try:
                self.camera.close()
            except Exception:  # noqa: BLE001 - a dead camera may fail to close; we reopen anyway
                log.debug("camera: close failed", exc_info=True)
            self.camera = None
