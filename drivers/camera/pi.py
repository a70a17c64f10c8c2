"""Raspberry Pi cameras (Camera Module 3, HQ, Global Shutter) through picamera2.

Exposure is manual: the shutter is fixed at the longest time that still freezes a
plate at the speed limit (1/(18 x mph) s, never longer than the frame time),
and only the analogue gain follows the scene, up to a ceiling so noise stays
readable. ScalerCrop selects the sensor region (the lane) before scaling.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from drivers.camera.base import Camera, CameraError, CameraUnavailable, Frame, IlluminatorState, check_image, shutter_limit_us

log = logging.getLogger(__name__)


class GainControl:
    """Gain-only exposure loop: shutter fixed for motion, gain steers brightness to a target."""

    def __init__(self, target: float, ceiling: float, step: float = 0.5) -> None:
        self.target, self.ceiling, self.step = target, ceiling, step
        self.gain = 1.0

    def update(self, brightness: float) -> float | None:
        """New gain to request, or None when the change is too small to bother the sensor."""
        ratio = self.target / max(brightness, 1.0)
        new = min(self.ceiling, max(1.0, self.gain * ratio**self.step))
        if abs(new - self.gain) / self.gain < 0.05:
            return None
        self.gain = new
        return new


class Picamera2Camera(Camera):
    name = "picamera2"

    def __init__(self, cfg: Any, illuminator_state: IlluminatorState | None = None) -> None:
        super().__init__(illuminator_state)
        self.cfg = cfg
        self.index = int(cfg.source or 0)
        self.frame_us = int(1e6 / cfg.fps)
        self.exposure_us = int(min(shutter_limit_us(cfg.speed_limit_mph), self.frame_us))
        self.gain = GainControl(cfg.target_brightness, cfg.max_analogue_gain)
        self._cam: Any = None

    def controls(self) -> dict[str, Any]:
        """The libcamera controls we set: manual shutter, fixed frame rate, gain, sensor crop."""
        c: dict[str, Any] = {
            "AeEnable": False,
            "ExposureTime": self.exposure_us,
            "AnalogueGain": float(self.gain.gain),
            "FrameDurationLimits": (self.frame_us, self.frame_us),
        }
        if self.cfg.sensor_crop is not None:
            c["ScalerCrop"] = tuple(int(v) for v in self.cfg.sensor_crop)
        return c

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraUnavailable(
                f"camera backend 'picamera2' needs the picamera2 package: `apt install python3-picamera2` "
                f"and a venv with --system-site-packages ({exc})"
            ) from None
        try:
            cam = Picamera2(self.index)
            config = cam.create_video_configuration(
                main={"size": (self.cfg.width, self.cfg.height), "format": "RGB888"},  # numpy order B, G, R
                controls=self.controls(),
                buffer_count=4,
            )
            cam.configure(config)
            cam.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise CameraUnavailable(f"picamera2 camera {self.index}: {exc}") from None
        self._cam = cam
        log.info("picamera2: shutter %d us (speed limit %.0f mph), gain ceiling %.1f",
                 self.exposure_us, self.cfg.speed_limit_mph, self.cfg.max_analogue_gain)

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        if self._cam is None:
            raise CameraError("picamera2: not open")
        try:
            job = self._cam.capture_request(wait=False)
            request = self._cam.wait(job, timeout=timeout_s)
        except TimeoutError:
            return None
        except RuntimeError as exc:
            raise CameraError(f"picamera2: capture failed: {exc}") from None
        try:
            image = request.make_array("main")
            md = request.get_metadata()
        finally:
            request.release()
        image = check_image(image, "picamera2")
        new_gain = self.gain.update(float(np.mean(image[::8, ::8])))
        if new_gain is not None:
            self._cam.set_controls({"AnalogueGain": new_gain})
        return self._frame(
            image,
            exposure_us=md.get("ExposureTime", self.exposure_us),
            gain=md.get("AnalogueGain", self.gain.gain),
            sensor_timestamp_ns=md.get("SensorTimestamp"),
        )

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "exposure_us": self.exposure_us, "gain": round(self.gain.gain, 2)}
