"""Cameras: one interface (`Camera.read() -> Frame`), one module per backend.

Backends: `simulated` (the simulated road), `replay` (video file or image folder),
`opencv` (V4L2 USB cameras, RTSP/HTTP IP cameras), `picamera2` (Raspberry Pi
camera modules), `jetson` (jetson-utils videoSource). `open_camera(cfg)` wraps
the chosen backend in `ReconnectingCamera` so a lost camera comes back by itself.
"""

from __future__ import annotations

from typing import Any

from drivers.camera.base import (
    Camera,
    CameraError,
    CameraUnavailable,
    EndOfStream,
    Frame,
    IlluminatorState,
    TruthPlate,
    shutter_limit_us,
)
from drivers.camera.reconnect import ReconnectingCamera

__all__ = [
    "Camera", "CameraError", "CameraUnavailable", "EndOfStream", "Frame", "TruthPlate",
    "ReconnectingCamera", "make_backend", "open_camera", "shutter_limit_us",
]


def make_backend(cfg: Any, illuminator_state: IlluminatorState | None = None, **kw: Any) -> Camera:
    """The bare backend `cfg.backend` names (`cfg` is firmware.config.CameraConfig)."""
    b = cfg.backend
    if b == "simulated":
        from drivers.camera.simulated import SimulatedRoad

        return SimulatedRoad(cfg, illuminator_state, **kw)
    if b == "replay":
        from drivers.camera.replay import ReplayCamera

        return ReplayCamera(cfg, illuminator_state)
    if b == "opencv":
        from drivers.camera.opencv import OpenCvCamera

        return OpenCvCamera(cfg, illuminator_state)
    if b == "picamera2":
        from drivers.camera.pi import Picamera2Camera

        return Picamera2Camera(cfg, illuminator_state)
    if b == "jetson":
        from drivers.camera.jetson import JetsonCamera

        return JetsonCamera(cfg, illuminator_state)
    raise CameraUnavailable(f"unknown camera backend {b!r}")


def open_camera(cfg: Any, illuminator_state: IlluminatorState | None = None, **kw: Any) -> ReconnectingCamera:
    """The configured backend behind reconnect-with-back-off. Opening is attempted at once;
    a camera that is not there yet is retried on each read."""
    cam = ReconnectingCamera(
        lambda: make_backend(cfg, illuminator_state, **kw),
        initial_s=cfg.reconnect_initial_s,
        max_s=cfg.reconnect_max_s,
        stall_timeout_s=cfg.stall_timeout_s,
    )
    cam.open()
    return cam
