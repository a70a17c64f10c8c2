"""Replay of a video file or a folder of images, in real time or as fast as the pipeline goes.

For demos, regression checks on recorded footage, and the field engineer's
"what did the pole see" workflow. Corrupt images are skipped and counted.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2

from drivers.camera.base import (IMAGE_SUFFIXES, Camera, CameraError, CameraUnavailable, EndOfStream, Frame,
                                  IlluminatorState, check_image, wait_until)

log = logging.getLogger(__name__)


class ReplayCamera(Camera):
    name = "replay"

    def __init__(self, cfg: Any, illuminator_state: IlluminatorState | None = None) -> None:
        super().__init__(illuminator_state)
        self.cfg = cfg
        self.path = Path(cfg.source)
        self.realtime = cfg.replay_realtime
        self.live = False  # never drop replayed frames: the consumer sets the pace
        self.loop = cfg.replay_loop
        self.fps = cfg.fps
        self.skipped = 0
        self._images: list[Path] = []
        self._index = 0
        self._cap: cv2.VideoCapture | None = None
        self._t0 = 0.0

    def open(self) -> None:
        if not str(self.cfg.source):
            raise CameraUnavailable("camera.source is empty: set it to a video file or an image folder")
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise CameraUnavailable(f"{self.path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif self.path.is_file():
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise CameraUnavailable(f"{self.path}: OpenCV cannot open this video")
            fps = cap.get(cv2.CAP_PROP_FPS)
            if fps and fps > 0:
                self.fps = fps
            self._cap = cap
        else:
            raise CameraUnavailable(f"{self.path}: no such video file or image folder")
        self._index = 0
        self._t0 = time.monotonic()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "source": str(self.path), "position": self._index, "skipped": self.skipped}

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        if self._cap is None and not self._images:
            self.open()
        if self.realtime and not wait_until(self._t0 + self._index / self.fps, timeout_s):
            return None
        image = self._next_image()
        mono = None if self.realtime else self._mono0 + self._index / self.fps
        return self._frame(image, monotonic=mono, source_index=self._index - 1)

    def _next_image(self):
        while True:
            if self._cap is not None:
                ok, image = self._cap.read()
                if not ok:
                    if self.loop and self._index > 0:
                        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    raise EndOfStream(f"{self.path}: end of video after {self._index} frames")
                self._index += 1
                return check_image(image, str(self.path))
            if self._index >= len(self._images):
                if self.loop and len(self._images) > self.skipped:
                    self._index = 0
                    continue
                raise EndOfStream(f"{self.path}: end of {len(self._images)} images")
            p = self._images[self._index]
            self._index += 1
            image = cv2.imread(str(p), cv2.IMREAD_COLOR)
            try:
                return check_image(image, str(p))
            except CameraError:
                self.skipped += 1
                log.warning("replay: %s is not a readable image; skipped", p)
