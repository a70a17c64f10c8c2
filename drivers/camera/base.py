"""The camera interface: frames as numpy arrays with their capture metadata."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

# image files OpenCV decodes: what a folder of images is read for (the replay camera, `polewatch recognize`)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
                            ".jp2", ".avif", ".pbm", ".pgm", ".ppm", ".pnm"})


class CameraError(Exception):
    """The camera failed (unplugged, stream dropped, bad frame); reconnecting may help."""


class CameraUnavailable(CameraError):
    """The backend cannot run here (vendor package missing, no such device); the message says why."""


class EndOfStream(Exception):
    """A finite source (replay, bounded simulation) has no more frames."""


@dataclass(frozen=True, slots=True)
class TruthPlate:
    """Simulator ground truth for one vehicle in one frame."""

    vehicle_id: int
    plate: str
    plate_box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    vehicle_box: tuple[int, int, int, int]
    direction: str  # approaching / receding
    plate_visible: bool


@dataclass(slots=True)
class Frame:
    image: np.ndarray  # HxWx3 BGR uint8 (or HxW grey)
    number: int
    monotonic: float  # seconds, time.monotonic() clock (the simulated clock when not real time)
    utc: datetime
    exposure_us: float | None = None
    gain: float | None = None
    illuminator: str = "unknown"  # on / off / unknown at capture
    truth: list[TruthPlate] | None = None  # simulator only
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.image.shape


IlluminatorState = Callable[[], str]


def _unknown() -> str:
    return "unknown"


class Camera(ABC):
    """One frame source. `live` sources keep running whether or not we keep up (frames
    are dropped when the queue is full); non-live sources wait for the consumer."""

    live: bool = True
    name: str = "camera"

    def __init__(self, illuminator_state: IlluminatorState | None = None) -> None:
        self.illuminator_state = illuminator_state or _unknown
        self._number = 0
        self._mono0 = time.monotonic()
        self._utc0 = datetime.now(UTC)

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or stream; CameraError/CameraUnavailable when that fails."""

    @abstractmethod
    def read(self, timeout_s: float = 1.0) -> Frame | None:
        """Next frame; None when none came within `timeout_s`; CameraError on failure; EndOfStream at the end."""

    @abstractmethod
    def close(self) -> None: ...

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "live": self.live}

    def _frame(
        self,
        image: np.ndarray,
        exposure_us: float | None = None,
        gain: float | None = None,
        monotonic: float | None = None,
        **extra: Any,
    ) -> Frame:
        """Stamp an image with number, clocks and the illuminator state at capture."""
        self._number += 1
        mono = time.monotonic() if monotonic is None else monotonic
        utc = self._utc0 + timedelta(seconds=mono - self._mono0)
        return Frame(
            image=image,
            number=self._number,
            monotonic=mono,
            utc=utc if monotonic is not None else datetime.now(UTC),
            exposure_us=exposure_us,
            gain=gain,
            illuminator=self.illuminator_state(),
            extra=extra,
        )


def wait_until(due: float, timeout_s: float) -> bool:
    """Sleep until monotonic time `due` for real-time pacing; False when that is
    beyond `timeout_s` (the caller's read times out after sleeping `timeout_s`)."""
    wait = due - time.monotonic()
    if wait > timeout_s:
        time.sleep(timeout_s)
        return False
    if wait > 0:
        time.sleep(wait)
    return True


def shutter_limit_us(speed_mph: float) -> float:
    """Longest exposure that freezes a plate at `speed_mph`: 1/(18 x mph) s (rule of thumb)."""
    return 1e6 / (18.0 * speed_mph)


def check_image(image: Any, source: str) -> np.ndarray:
    """Refuse corrupt frames with a message naming the source, instead of crashing later."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise CameraError(f"{source}: corrupt frame ({getattr(image, 'shape', type(image).__name__)})")
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise CameraError(f"{source}: unexpected channel count {image.shape[2]}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return image
