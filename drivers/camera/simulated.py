"""Simulated road: vehicles carrying synthetic plates drive through the frame, with ground truth.

Used by `polewatch run` on its embedded default, by `polewatch simulate`, tests and
benchmarks. A camera looks down a two-lane road: approaching vehicles grow from
the far end (top) to the near end (bottom) showing their front plate, receding
ones shrink showing the rear plate. By day the scene is in colour; at night it
has the near-infrared look (monochrome, dark road, retroreflective plates and
lane paint) and only what the IR illuminator lights is visible.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from drivers.camera.base import Camera, EndOfStream, Frame, IlluminatorState, TruthPlate, shutter_limit_us, wait_until

ROAD_LENGTH_M = 22.0  # length of road between the far and the near edge of the view
CAR_W = 0.42  # vehicle width at the near edge, as a fraction of the frame width
SCALE_FAR = 0.38
CHARSET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def _fallback_plate(rng: np.random.Generator, night: bool) -> tuple[np.ndarray, str]:
    """A plain plate drawn with OpenCV, used only when models.synth.plates is unavailable."""
    text = str(rng.integers(1, 10)) + "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ"), 3)) + "".join(
        rng.choice(list("0123456789"), 3)
    )
    img = np.full((160, 320, 3), 245, np.uint8)
    cv2.rectangle(img, (4, 4), (315, 155), (60, 60, 60), 3)
    cv2.putText(img, "California", (95, 35), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (40, 40, 200), 2)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 2.1, 6)
    cv2.putText(img, text, ((320 - tw) // 2, 120), cv2.FONT_HERSHEY_DUPLEX, 2.1, (120, 40, 10), 6)
    return img, text


def plate_source(die_fonts: float, die_i: float):
    """models.synth.plates.render_plate when installed (Pillow), else the OpenCV fallback;
    `die_fonts` of the plates in plate-die lookalike fonts, `die_i` of those holding an I with a die's
    serifed I (the road's `[camera.simulated]` settings, whose defaults the config alone holds)."""
    try:
        from models.synth.plates import render_plate
    except ImportError:
        return lambda rng: _fallback_plate(rng, False)
    return lambda rng: render_plate(rng, None, False, degrade=False, die_font_share=die_fonts, die_i_share=die_i)


@dataclass(slots=True)
class _Vehicle:
    vid: int
    plate: str
    sprite: np.ndarray  # BGR at near-edge scale
    mask: np.ndarray  # uint8 0/255
    plate_rect: tuple[int, int, int, int]  # in sprite pixels
    direction: str
    lane: int
    t0: float
    speed_ms: float
    exited: bool = False

    def progress(self, t: float) -> float:
        """0 at the far edge, 1 at the near edge, whichever way it drives."""
        d = (t - self.t0) * self.speed_ms / ROAD_LENGTH_M
        return d if self.direction == "approaching" else 1.0 - d


class SimulatedRoad(Camera):
    name = "simulated"

    def __init__(
        self,
        cfg: Any,  # firmware.config.CameraConfig
        illuminator_state: IlluminatorState | None = None,
        max_vehicles: int | None = None,
        tail_s: float = 2.0,
    ) -> None:
        super().__init__(illuminator_state)
        self.cfg, self.road = cfg, cfg.simulated
        self.live = bool(self.road.realtime)
        self.max_vehicles, self.tail_s = max_vehicles, tail_s
        self.W, self.H = cfg.width, cfg.height
        self.rng = np.random.default_rng(self.road.seed)
        self._render_plate = plate_source(self.road.die_fonts, self.road.die_i)
        self.vehicles: list[_Vehicle] = []
        self.spawned = 0
        self.passed = 0
        self.plates: list[str] = []
        self.directions: dict[str, str] = {}  # plate -> approaching / receding (ground truth)
        self._used: set[str] = set()
        self._next_spawn = 0.5
        self._t = 0.0
        self._end_t: float | None = None
        self._opened = False

    # -- Camera -----------------------------------------------------------
    def open(self) -> None:
        night = self.road.night
        self._bg = self._background(night)
        a = max(1, int(self.road.noise * 2))
        shape = (self.H, self.W, 1) if night else (self.H, self.W, 3)  # IR sensor: monochrome noise
        self._noise = [np.ascontiguousarray(np.broadcast_to(self.rng.integers(0, a + 1, shape, dtype=np.uint8),
                                                            (self.H, self.W, 3))) for _ in range(3)]
        self._noise_off = a // 2
        self._wall0 = time.monotonic()
        self._opened = True

    def close(self) -> None:
        self._opened = False

    def info(self) -> dict[str, Any]:
        return {**super().info(), "night": self.road.night, "spawned": self.spawned, "passed": self.passed}

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        if not self._opened:
            self.open()
        n = self._number
        t = n / self.cfg.fps
        if self._end_t is not None and t >= self._end_t:
            raise EndOfStream(f"simulated road: {self.passed} vehicles passed")
        if self.live and not wait_until(self._wall0 + t, timeout_s):
            return None
        self._t = t
        self._step(t)
        ir_on = self.illuminator_state() == "on"
        img, truth = self._render(t, ir_on)
        exposure = min(shutter_limit_us(self.cfg.speed_limit_mph), 1e6 / self.cfg.fps)
        gain = min(self.cfg.max_analogue_gain, 12.0 if self.road.night else 1.5)
        frame = self._frame(img, exposure, gain, monotonic=None if self.live else self._mono0 + t)
        frame.truth = truth
        return frame

    # -- traffic ----------------------------------------------------------
    def _step(self, t: float) -> None:
        for v in self.vehicles:
            p = v.progress(t)
            if (v.direction == "approaching" and p > 1.25) or (v.direction == "receding" and p < -0.05):
                v.exited = True
                self.passed += 1
        self.vehicles = [v for v in self.vehicles if not v.exited]
        done_spawning = self.max_vehicles is not None and self.spawned >= self.max_vehicles
        if done_spawning:
            if not self.vehicles and self._end_t is None:
                self._end_t = t + self.tail_s
            return
        if t >= self._next_spawn:
            direction = "receding" if self.rng.random() < self.road.receding_fraction else "approaching"
            lane = 1 if direction == "approaching" else -1
            # one vehicle per lane section: never overlap the previous vehicle in the lane
            if all(abs(v.progress(t) - (0.0 if direction == "approaching" else 1.0)) > 0.6
                   for v in self.vehicles if v.lane == lane):
                self.vehicles.append(self._new_vehicle(t, direction, lane))
                mean_gap = 60.0 / self.road.vehicles_per_minute
                self._next_spawn = t + self.rng.exponential(mean_gap) + 0.2 * mean_gap
            else:
                self._next_spawn = t + 0.1

    def _new_vehicle(self, t: float, direction: str, lane: int) -> _Vehicle:
        rng = self.rng
        for _ in range(100):
            plate_img, text = self._render_plate(rng)
            if text not in self._used and len(text) >= 2:
                break
        self._used.add(text)
        self.plates.append(text)
        self.directions[text] = direction
        if self.max_vehicles is None and len(self.plates) > 5000:  # endless demo: bounded memory
            for old in self.plates[:2500]:
                self._used.discard(old)
                self.directions.pop(old, None)
            del self.plates[:2500]
        self.spawned += 1
        sprite, mask, rect = self._vehicle_sprite(plate_img, direction)
        speed = self.road.speed_mph * 0.44704 * (1 + rng.uniform(-1, 1) * self.road.speed_jitter)
        return _Vehicle(self.spawned, text, sprite, mask, rect, direction, lane, t, speed)

    # -- drawing ----------------------------------------------------------
    def _background(self, night: bool) -> np.ndarray:
        W, H, rng = self.W, self.H, self.rng
        if night:
            img = np.full((H, W, 3), 14, np.uint8)
        else:
            img = np.empty((H, W, 3), np.uint8)
            img[:] = (70, 140, 90)  # verge
        # road trapezoid narrowing towards the far edge
        top, bot = self._road_x(0.0), self._road_x(1.25)
        y_top, y_bot = int(self._y(0.0)) - 40, H
        poly = np.array([[top[0], y_top], [top[1], y_top], [bot[1], y_bot], [bot[0], y_bot]], np.int32)
        road_col = (22, 22, 22) if night else (112, 114, 116)
        cv2.fillPoly(img, [poly], road_col)
        tex = rng.normal(0, 4 if night else 9, (H // 4, W // 4)).astype(np.float32)
        tex = cv2.resize(tex, (W, H))
        img = np.clip(img.astype(np.float32) + tex[..., None], 0, 255).astype(np.uint8)
        paint = (70, 70, 70) if night else (235, 235, 235)
        for p0 in np.arange(0.0, 1.25, 0.12):  # dashed centre line
            y0, y1 = self._y(p0), self._y(p0 + 0.05)
            x0, x1 = self._road_centre(p0), self._road_centre(p0 + 0.05)
            cv2.line(img, (int(x0), int(y0)), (int(x1), int(y1)), paint, max(2, int(6 * self._scale(p0))))
        if not night:  # sky/trees band at the top for a plausible scene brightness
            img[: max(0, y_top), :] = (200, 180, 150)
        return img

    def _scale(self, p: float) -> float:
        return SCALE_FAR + (1.0 - SCALE_FAR) * p

    def _y(self, p: float) -> float:
        """Screen y of a vehicle's bottom edge at progress p."""
        return self.H * (0.30 + 0.78 * p)

    def _road_centre(self, p: float) -> float:
        return self.W / 2 + math.tan(math.radians(self.road.angle_deg)) * (self._y(p) - self.H / 2)

    def _road_x(self, p: float) -> tuple[int, int]:
        half = CAR_W * self.W * 1.25 * self._scale(p)
        c = self._road_centre(p)
        return int(c - half), int(c + half)

    def _vehicle_sprite(self, plate: np.ndarray, direction: str):
        rng = self.rng
        w = int(CAR_W * self.W)
        h = int(w * rng.uniform(0.68, 0.85))
        night = self.road.night
        body = tuple(int(c) for c in rng.integers(20, 230, 3))
        if night:
            g = int(rng.integers(25, 70))
            body = (g, g, g)
        img = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        roof = int(w * rng.uniform(0.12, 0.2))
        shape = np.array([[roof, 0], [w - roof, 0], [w - 4, int(h * 0.45)], [w - 1, h - 12], [0, h - 12],
                          [4, int(h * 0.45)]], np.int32)
        for target, col in ((img, body), (mask, 255)):
            cv2.fillPoly(target, [shape], col)
            cv2.rectangle(target, (int(w * 0.06), h - 30), (int(w * 0.2), h - 1), 10 if target is mask else 0, -1)
            cv2.rectangle(target, (int(w * 0.8), h - 30), (int(w * 0.94), h - 1), 10 if target is mask else 0, -1)
        mask[mask > 0] = 255
        glass = (40, 40, 40) if night else (90, 70, 60)
        cv2.fillPoly(img, [np.array([[roof + 12, 10], [w - roof - 12, 10], [w - 25, int(h * 0.4)],
                                     [25, int(h * 0.4)]], np.int32)], glass)
        lamp = (255, 255, 255) if direction == "approaching" else (40, 40, 220)
        if night:
            lamp = (255, 255, 255) if direction == "approaching" else (120, 120, 120)
        ly = int(h * 0.55)
        cv2.ellipse(img, (int(w * 0.14), ly), (int(w * 0.07), int(h * 0.05)), 0, 0, 360, lamp, -1)
        cv2.ellipse(img, (int(w * 0.86), ly), (int(w * 0.07), int(h * 0.05)), 0, 0, 360, lamp, -1)
        pw = int(w * 0.27)
        ph = int(pw * plate.shape[0] / plate.shape[1])
        px, py = (w - pw) // 2, int(h * 0.70) - ph // 2
        pl = cv2.resize(plate, (pw, ph), interpolation=cv2.INTER_AREA)
        if night:  # near infrared: dyes glow, black ink stays dark, retroreflective sheeting shines
            f = pl.astype(np.float32)
            g = f.max(axis=2) * 0.6 + f.mean(axis=2) * 0.4
            pl = np.repeat(np.clip(g * 1.1, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        img[py : py + ph, px : px + pw] = pl
        return img, mask, (px, py, pw, ph)

    def _render(self, t: float, ir_on: bool) -> tuple[np.ndarray, list[TruthPlate]]:
        img = self._bg.copy()
        truth: list[TruthPlate] = []
        night = self.road.night
        for v in sorted(self.vehicles, key=lambda v: v.progress(t)):
            p = v.progress(t)
            s = self._scale(p)
            sw, sh = max(4, int(v.sprite.shape[1] * s)), max(4, int(v.sprite.shape[0] * s))
            cx = self._road_centre(p) + v.lane * CAR_W * self.W * 0.62 * s
            x0, y1 = int(cx - sw / 2), int(self._y(p))
            y0 = y1 - sh
            # shadow under the vehicle
            cv2.ellipse(img, (int(cx), y1), (int(sw * 0.55), max(2, int(sh * 0.08))), 0, 0, 360,
                        (8, 8, 8) if night else (60, 62, 64), -1)
            sprite = cv2.resize(v.sprite, (sw, sh), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(v.mask, (sw, sh), interpolation=cv2.INTER_NEAREST)
            if night:
                sprite = cv2.convertScaleAbs(sprite, alpha=1.0 if ir_on else 0.3)
            fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(self.W, x0 + sw), min(self.H, y0 + sh)
            if fx1 <= fx0 or fy1 <= fy0:
                continue
            roi = img[fy0:fy1, fx0:fx1]
            cv2.copyTo(sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0], mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0], roi)
            px, py, pw, ph = v.plate_rect
            bx, by = x0 + int(px * s), y0 + int(py * s)
            bw, bh = max(1, int(pw * s)), max(1, int(ph * s))
            visible = bx >= 0 and by >= 0 and bx + bw <= self.W and by + bh <= self.H
            truth.append(TruthPlate(v.vid, v.plate, (bx, by, bw, bh), (x0, y0, sw, sh), v.direction, visible))
        n = self._noise[self._number % len(self._noise)]
        img = cv2.add(img, n)
        img = cv2.subtract(img, (self._noise_off,) * 3 + (0,))
        return img, truth

    def frames(self):
        """Iterate frames until EndOfStream (for tests and benchmarks)."""
        while True:
            try:
                f = self.read()
            except EndOfStream:
                return
            if f is not None:
                yield f
