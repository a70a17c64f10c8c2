"""Frames to reads: capture -> motion/ROI gate -> recognition -> tracker -> read sinks.

Two threads joined by a bounded queue. The capture thread never waits on
recognition for a live camera: when the queue is full the frame is dropped and
counted, so memory stays flat under overload and the newest traffic is seen.
Replay and the non-real-time simulator wait instead (nothing is dropped). The
motion gate skips frames where nothing moves (an empty road) so recognition time
goes to frames with vehicles.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from drivers.camera.base import Camera, EndOfStream, Frame
from firmware.health import Health
from firmware.records import PlateRead, PlateResult
from firmware.tracking import Tracker

log = logging.getLogger(__name__)

GATE_WIDTH = 160  # motion is judged on a small grey copy: cheap, and immune to sensor noise


class Recognizer(Protocol):
    def read_frame(self, frame: np.ndarray) -> list[PlateResult]: ...


class MotionGate:
    """Is anything moving inside the ROI? Also yields the scene brightness for the illuminator."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg  # firmware.config.PipelineConfig
        self._prev: np.ndarray | None = None
        self._hold = 0

    def small_grey(self, image: np.ndarray) -> np.ndarray:
        if self.cfg.roi is not None:
            x, y, w, h = self.cfg.roi
            image = image[y : y + h, x : x + w]
        H, W = image.shape[:2]
        small = cv2.resize(image, (GATE_WIDTH, max(1, int(H * GATE_WIDTH / W))), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small

    def check(self, image: np.ndarray) -> tuple[bool, float, float]:
        """(process this frame?, mean brightness 0..255, fraction of pixels that moved)."""
        grey = self.small_grey(image)
        brightness = float(grey.mean())
        prev, self._prev = self._prev, grey
        if not self.cfg.motion_gate:
            return True, brightness, 1.0
        if prev is None or prev.shape != grey.shape:
            return True, brightness, 1.0
        moved = float(np.count_nonzero(cv2.absdiff(grey, prev) > self.cfg.motion_pixel_delta)) / grey.size
        if moved > self.cfg.motion_threshold:
            self._hold = self.cfg.motion_hold_frames
            return True, brightness, moved
        if self._hold > 0:
            self._hold -= 1
            return True, brightness, moved
        return False, brightness, moved


class Pipeline:
    def __init__(
        self,
        camera: Camera,
        recognizer: Recognizer | None,
        tracker: Tracker,
        cfg: Any,  # firmware.config.PipelineConfig
        health: Health,
        on_read: Callable[[PlateRead], None] | None = None,
        illuminator: Any | None = None,  # drivers.illuminator.Illuminator
        max_frames: int | None = None,
    ) -> None:
        self.camera, self.recognizer, self.tracker, self.cfg = camera, recognizer, tracker, cfg
        self.health, self.on_read, self.illuminator = health, on_read, illuminator
        self.gate = MotionGate(cfg)
        self.max_frames = max_frames
        self.queue: queue.Queue[Frame | None] = queue.Queue(maxsize=cfg.queue_size)
        self.stop_event = threading.Event()
        self.ended = threading.Event()  # the source has no more frames
        self.error: BaseException | None = None
        self.heartbeat = time.monotonic()
        self._threads: list[threading.Thread] = []
        self._told = self._tracker_counts()  # of the tracker's counts, what health has been told

    # -- one frame (also used directly, single-threaded, by tests and `simulate`) ---------
    def step(self, frame: Frame) -> list[PlateRead]:
        t0 = time.perf_counter()
        go, brightness, _ = self.gate.check(frame.image)
        if self.illuminator is not None:
            self.illuminator.observe(brightness, frame.gain, frame.monotonic)
        if not go or self.recognizer is None:  # no recognizer: degraded, camera and illuminator only
            self.health.count("frames_skipped")
            reads = self.tracker.expire(frame.monotonic)
        else:
            try:
                results = self.recognizer.read_frame(frame.image)
            except ValueError as exc:  # RecognitionError: one bad frame, not a reason to stop the pole
                log.warning("frame %d not recognised: %s", frame.number, exc)
                self.health.count("errors")
                results = []
            self.health.latency(time.perf_counter() - t0)
            self.health.count("frames_processed")
            reads = self.tracker.update(frame, results)
        self._deliver(reads)
        return reads

    def finish(self) -> list[PlateRead]:
        """End of stream: close every open track."""
        reads = self.tracker.flush()
        self._deliver(reads)
        return reads

    def _tracker_counts(self) -> dict[str, int]:
        """The tracker's running counts, by their health names: passes it knew for a read made already
        (no read, but counted) and passes whose O against 0 it measured on a fused plate."""
        return {"reads_repeated": self.tracker.repeats, "passes_fused": self.tracker.fused}

    def _deliver(self, reads: list[PlateRead]) -> None:
        now = self._tracker_counts()
        for name, n in now.items():
            if n > self._told[name]:
                self.health.count(name, n - self._told[name])
        self._told = now
        for r in reads:
            self.health.read_made()
            if self.on_read is not None:
                self.on_read(r)

    # -- threaded operation ----------------------------------------------------------------
    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._guard(self._capture_loop), name="capture", daemon=True),
            threading.Thread(target=self._guard(self._worker_loop), name="recognize", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout)

    def alive(self, max_silence_s: float = 10.0) -> bool:
        """For the watchdog: both threads running and the worker looped recently."""
        return (
            self.error is None
            and all(t.is_alive() for t in self._threads)
            and time.monotonic() - self.heartbeat < max_silence_s
        )

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the app, which fails safe
                log.exception("pipeline thread %s crashed", threading.current_thread().name)
                self.error = exc
                self.health.count("errors")
                self.stop_event.set()

        return run

    def _capture_loop(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            try:
                frame = self.camera.read(0.5)
            except EndOfStream as exc:
                log.info("camera: %s", exc)
                break
            if frame is None:
                continue
            n += 1
            self.health.count("frames_in")
            if self.camera.live:
                try:
                    self.queue.put_nowait(frame)
                except queue.Full:
                    self.health.count("frames_dropped")
            else:
                while not self.stop_event.is_set():
                    try:
                        self.queue.put(frame, timeout=0.5)
                        break
                    except queue.Full:
                        continue
            if self.max_frames is not None and n >= self.max_frames:
                break
        self.ended.set()

    def _worker_loop(self) -> None:
        while not self.stop_event.is_set():
            self.heartbeat = time.monotonic()
            try:
                frame = self.queue.get(timeout=0.25)
            except queue.Empty:
                if self.ended.is_set():
                    break
                if self.illuminator is not None and self.camera.live:
                    self.illuminator.tick(time.monotonic())
                continue
            self.step(frame)
            if self.illuminator is not None and self.camera.live:
                self.illuminator.tick(time.monotonic())
        self.finish()
