"""The data that flows between the pipeline stages.

`PlateResult` is what recognition finds in one frame; `PlateRead` is the one
read the tracker makes per vehicle pass, which hot lists check and the store
seals. Kept free of heavy imports so every module can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Direction = Literal["approaching", "receding", "unknown"]


@dataclass(frozen=True, slots=True)
class Candidate:
    plate: str
    confidence: float


@dataclass(slots=True)
class PlateResult:
    """One plate found in one frame: box in frame pixels (x, y, w, h), text, candidates."""

    box: tuple[int, int, int, int]
    detection_score: float
    plate: str
    confidence: float
    candidates: list[Candidate] = field(default_factory=list)
    # mean best-character probability over the OCR columns that read a character: how surely each
    # character was seen, whatever the alternatives for the whole text (verifies weak detections)
    char_confidence: float = 0.0
    # camera frames only: each O or 0 of the read (by position) with its glyph's width over the plate's digit
    # width (glyphs.round_widths), which the tracker pools over a vehicle's frames to settle O against 0
    round_widths: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "plate": self.plate,
            "confidence": round(float(self.confidence), 4),
            "box": [int(v) for v in self.box],
            "candidates": [
                {"plate": c.plate, "confidence": round(float(c.confidence), 4)} for c in self.candidates
            ],
        }


@dataclass(slots=True)
class PlateRead:
    """Exactly one read per vehicle pass: voted text, best frame's images, timing, direction."""

    plate: str
    confidence: float
    candidates: list[Candidate]
    capture_time: datetime  # UTC time of the best frame
    first_seen: datetime
    last_seen: datetime
    clock_synced: bool
    box: tuple[int, int, int, int]
    plate_jpeg: bytes
    vehicle_jpeg: bytes
    direction: Direction = "unknown"
    frames: int = 1
    ground_truth: str | None = None  # simulator only; never sealed or published
