"""OpenCV capture: V4L2 USB cameras (`/dev/video0` or an index) and RTSP/HTTP streams from IP cameras."""

from __future__ import annotations

import threading
from typing import Any

import cv2

from drivers.camera.base import Camera, CameraError, CameraUnavailable, Frame, IlluminatorState, check_image


def _is_stream(source: str) -> bool:
    return source.split("://", 1)[0].lower() in {"rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp"}


class OpenCvCamera(Camera):
    name = "opencv"

    def __init__(self, cfg: Any, illuminator_state: IlluminatorState | None = None) -> None:
        super().__init__(illuminator_state)
        self.cfg = cfg
        self.source = cfg.source or "/dev/video0"
        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        src = self.source
        if _is_stream(src):
            cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG)
        else:
            dev: int | str = int(src) if src.isdigit() else src
            cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
            if cap.isOpened():
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
                cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable(f"{src}: OpenCV cannot open the camera or stream (unplugged? wrong URL?)")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a stale backlog
        self._cap = cap

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"{self.source}: not open")
        ok, image = self._cap.read()  # blocks up to the backend's own timeout
        if not ok:
            raise CameraError(f"{self.source}: no frame (camera unplugged or stream dropped)")
        image = check_image(image, self.source)
        exposure = self._cap.get(cv2.CAP_PROP_EXPOSURE)
        gain = self._cap.get(cv2.CAP_PROP_GAIN)
        return self._frame(image, exposure_us=exposure or None, gain=gain or None)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "source": self.source}
