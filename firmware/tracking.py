"""One read per vehicle pass: associate plates across frames, vote the text, keep the best frame.

A plate is seen in many frames as a vehicle passes; each frame's OCR can err.
The tracker follows each plate by motion (constant-velocity prediction) and text
(edit distance), sums each frame's candidate probabilities weighted by how big
the plate was (near frames read better), and when the plate has been gone for
`max_gap_s` emits exactly one PlateRead: the voted text, its confidence, the
best frame's plate crop and vehicle image, first/last seen and the direction
of travel. Short or unsure tracks (phantoms: a sign, a bumper sticker) are
dropped by `min_frames` and `min_confidence`. A plate hidden for longer than the gap
(the vehicle ahead drives over it in the picture) comes back as a new track; when
that pass votes the text and direction of a read made less than `repeat_window_s`
before it, it is the same vehicle and makes no second read (counted in `repeats`).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from drivers.camera.base import Frame
from firmware.records import Candidate, Direction, PlateRead, PlateResult
from firmware.recognition import fusion, glyphs

log = logging.getLogger(__name__)

KEEP_BEST = 3  # frames whose images a track keeps (by quality) for the read's photographs
VEHICLE_MAX_W = 800
MAX_GROWTH = 2.0  # |d(log width)/dt| per second
MOTION_WINDOW = 10  # observations the motion and growth estimates are fitted over (detector boxes jitter)
ROUND_FRAMES = 64  # frames whose O and 0 glyph widths a track keeps (PlateResult.round_widths)
ROUND_MIN_FRAMES = 5  # frames that must have measured a glyph before its pooled width settles O against 0
PART_MIN_CHARS = 3  # a read this long or longer, inside a track's plate and part of its text, is that plate


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def text_similarity(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))


def _slopes(points: deque) -> tuple[float, float, float]:
    """Least-squares d/dt of centre x, centre y and log width over recent observations."""
    n = len(points)
    tm = sum(p[0] for p in points) / n
    var = sum((p[0] - tm) ** 2 for p in points)
    if var <= 0:
        return 0.0, 0.0, 0.0
    out = []
    for i in (1, 2, 3):
        m = sum(p[i] for p in points) / n
        out.append(sum((p[0] - tm) * (p[i] - m) for p in points) / var)
    return out[0], out[1], out[2]


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass(slots=True)
class _Shot:
    """One frame's view of the plate, kept only for the best few frames."""

    quality: float
    plate: str
    utc: datetime
    box: tuple[int, int, int, int]
    plate_img: np.ndarray
    vehicle_img: np.ndarray


@dataclass(slots=True)
class Track:
    tid: int
    first_t: float
    first_utc: datetime
    last_t: float
    last_utc: datetime
    box: tuple[int, int, int, int]
    velocity: tuple[float, float] = (0.0, 0.0)  # px/s of the box centre
    growth: float = 0.0  # d(log width)/dt: positive while the plate approaches
    recent: deque = field(default_factory=lambda: deque(maxlen=MOTION_WINDOW))  # (t, cx, cy, log w)
    votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    weight: float = 0.0
    frames: int = 0
    widths: list[tuple[float, float, float]] = field(default_factory=list)  # (t, width, centre y)
    shots: list[_Shot] = field(default_factory=list)
    rounds: deque = field(default_factory=lambda: deque(maxlen=ROUND_FRAMES))  # (read, its O/0 glyph widths)
    truth: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    views: list[fusion.View] = field(default_factory=list)  # the nearest plate views, widest first
    emitted: bool = False

    @property
    def leader(self) -> str:
        return max(self.votes.items(), key=lambda kv: kv[1])[0] if self.votes else ""

    def predict(self, t: float) -> tuple[float, float, float]:
        """Predicted box centre and width at time t (constant velocity and growth rate),
        from the fitted track rather than the last, jittery, box."""
        x, y, w, h = self.box
        cx, cy, lw = x + w / 2, y + h / 2, math.log(max(w, 1))
        if len(self.recent) >= 2:
            n = len(self.recent)
            tm = sum(p[0] for p in self.recent) / n
            cx = sum(p[1] for p in self.recent) / n + self.velocity[0] * (self.last_t - tm)
            cy = sum(p[2] for p in self.recent) / n + self.velocity[1] * (self.last_t - tm)
            lw = sum(p[3] for p in self.recent) / n + self.growth * (self.last_t - tm)
        dt = t - self.last_t
        return cx + self.velocity[0] * dt, cy + self.velocity[1] * dt, math.exp(lw + self.growth * dt)

    def leader_share(self) -> float:
        return max(self.votes.values()) / self.weight if self.votes and self.weight > 0 else 0.0


# the text the glyphs of the plate at a box of an image say among a vote's texts, leader first, or None
# (Recognizer.settle_fused)
FusedSettle = Callable[[np.ndarray, tuple[int, int, int, int], list[str]], str | None]


def _trade(ranked: list[tuple[str, float]], j: int) -> list[tuple[str, float]]:
    """The ranked vote with its leader and its j-th text trading texts (each place keeps its score): how a
    settle rule puts the text the glyphs say first."""
    out = list(ranked)
    out[0], out[j] = (ranked[j][0], ranked[0][1]), (ranked[0][0], ranked[j][1])
    return out


class Tracker:
    """Feed every frame's PlateResults to `update`; it returns the reads of vehicles that left."""

    def __init__(self, cfg: Any, clock_synced: Callable[[], bool] = lambda: True, jpeg_quality: int | None = None,
                 settle: FusedSettle | None = None) -> None:
        self.cfg = cfg  # firmware.config.PipelineConfig
        self.settle = settle  # reads O/0 and a doubled I off a pass's fused plate; None: no fusion
        self.fused = 0  # passes whose nearest frames were fused to settle O against 0 or count an II
        self.clock_synced = clock_synced
        self.jpeg_quality = jpeg_quality or cfg.jpeg_quality
        self.tracks: list[Track] = []
        self._next_id = 1
        self.discarded = 0  # tracks too short or too unsure to be a read
        self.repeats = 0  # passes that were a read already made (a plate hidden a moment, then seen again)
        self._made: dict[str, tuple[float, Direction]] = {}  # text -> (when its last pass was seen, direction)

    # -- public -----------------------------------------------------------
    def update(self, frame: Frame, results: list[PlateResult]) -> list[PlateRead]:
        t = frame.monotonic
        out = self.expire(t)
        results = [r for r in results if not self._cut(r.box, frame.image.shape)]
        live = [k for k in self.tracks if t - k.last_t <= self.cfg.max_gap_s]
        pairs = []
        for ri, r in enumerate(results):
            if not r.plate and r.confidence <= 0:
                continue
            for k in live:
                cost = self._cost(k, r, t)
                if cost is not None:
                    pairs.append((cost, ri, id(k), k))
        pairs.sort(key=lambda p: p[0])
        used_r: set[int] = set()
        used_k: set[int] = set()
        for _, ri, kid, k in pairs:
            if ri in used_r or kid in used_k:
                continue
            used_r.add(ri)
            used_k.add(kid)
            self._add(k, frame, results[ri])
        for ri, r in enumerate(results):
            if ri not in used_r and (r.plate or r.confidence > 0):
                k = Track(self._next_id, t, frame.utc, t, frame.utc, r.box)
                self._next_id += 1
                self.tracks.append(k)
                self._add(k, frame, r, new=True)
        for k in self.tracks:  # a vehicle parked in view: one read, then silence
            if not k.emitted and k.last_t - k.first_t >= self.cfg.max_track_s:
                read = self._finish(k)
                k.emitted = True
                if read is not None:
                    out.append(read)
        return out

    def expire(self, now: float) -> list[PlateRead]:
        """Close tracks not seen for max_gap_s (call on frames the motion gate skipped too)."""
        out: list[PlateRead] = []
        keep: list[Track] = []
        for k in self.tracks:
            if now - k.last_t > self.cfg.max_gap_s:
                if not k.emitted:
                    read = self._finish(k)
                    if read is not None:
                        out.append(read)
            else:
                keep.append(k)
        self.tracks = keep
        return out

    def flush(self) -> list[PlateRead]:
        """End of stream: every open track becomes a read (or is discarded)."""
        out = [r for k in self.tracks if not k.emitted for r in [self._finish(k)] if r is not None]
        self.tracks = []
        return out

    def _cut(self, box: tuple[int, int, int, int], shape: tuple[int, ...]) -> bool:
        """A plate box at the frame's edge is a plate cut by it: what shows is part of the plate
        (the state name of a plate leaving at the bottom reads "INDIANA"), never its whole text.
        The vehicle is seen whole in the frames before, so these frames are not voted on."""
        m = self.cfg.edge_margin_px
        if m < 0:
            return False
        x, y, w, h = box
        return x <= m or y <= m or x + w >= shape[1] - m or y + h >= shape[0] - m

    # -- association ------------------------------------------------------
    def _cost(self, k: Track, r: PlateResult, t: float) -> float | None:
        """Association cost, or None when the plate cannot be this track's.

        Gates: distance to the predicted centre (in predicted plate widths), plate
        size against the predicted size (an approaching plate grows, a receding one
        shrinks: a plate of the wrong size is another vehicle, unless it is a box cut
        inside the plate reading part of its text: `_part`), and -- once both are
        sure of their text -- clearly different text.
        """
        px, py, pw = k.predict(t)
        x, y, w, h = r.box
        size = max(8.0, min(float(w), pw))
        d = math.hypot(x + w / 2 - px, y + h / 2 - py) / size
        sim = text_similarity(r.plate, k.leader)
        limit = self.cfg.match_distance * (2.0 if sim >= 0.7 else 1.0)
        if d > limit:
            return None
        if abs(math.log(max(w, 1) / max(pw, 1.0))) > math.log(1.6) and not self._part(k, r, px, py, pw):
            return None
        if sim < 0.3 and r.confidence >= 0.5 and k.frames >= 3 and k.leader_share() >= 0.5:
            return None
        return d + (1.0 - sim)

    @staticmethod
    def _part(k: Track, r: PlateResult, px: float, py: float, pw: float) -> bool:
        """A box cut inside the plate the track follows: its read is part of the track's (PART_MIN_CHARS
        or more of the leader's characters, in order, fewer than all) and it lies within the predicted
        plate. The detector boxes the plate's right half now and then (the simulated road: 8058 of
        YV18058, twice, at 0.95): too narrow for the size gate, it became a second read of the vehicle."""
        text, lead = r.plate, k.leader
        if len(text) < PART_MIN_CHARS or len(text) >= len(lead) or text not in lead or k.frames < 3:
            return False
        x, y, w, h = r.box
        slack = 0.15 * pw
        return (px - pw / 2 - slack <= x and x + w <= px + pw / 2 + slack
                and abs(y + h / 2 - py) <= 0.5 * pw * k.box[3] / max(k.box[2], 1))

    def _add(self, k: Track, frame: Frame, r: PlateResult, new: bool = False) -> None:
        t = frame.monotonic
        x, y, w, h = r.box
        k.recent.append((t, x + w / 2, y + h / 2, math.log(max(w, 1))))
        if len(k.recent) >= 2:
            vx, vy, g = _slopes(k.recent)
            # few jittery boxes say little about growth: trust the fit as observations accrue, and a
            # plate cannot double in size faster than ~0.35 s
            g *= min(1.0, (len(k.recent) - 1) / 5)
            k.velocity, k.growth = (vx, vy), max(-MAX_GROWTH, min(MAX_GROWTH, g))
        k.box, k.last_t, k.last_utc = r.box, t, frame.utc
        k.frames += 1
        weight = max(1.0, float(w)) * max(0.05, float(r.detection_score))
        k.weight += weight
        cands = r.candidates or [Candidate(r.plate, r.confidence)]
        seen: set[str] = set()
        for c in cands:
            if c.plate and c.plate not in seen:
                seen.add(c.plate)
                k.votes[c.plate] += weight * float(c.confidence)
        if r.round_widths:
            k.rounds.append((r.plate, r.round_widths))
        keep = self.cfg.fuse_frames if self.settle is not None else 0
        if keep and (len(k.views) < keep or w > k.views[-1].box[2]):
            k.views.append(fusion.cut_view(frame.image, r.box))
            k.views.sort(key=lambda v: -v.box[2])
            del k.views[keep:]
        k.widths.append((t, float(w), y + h / 2))
        if len(k.widths) > 64:
            del k.widths[1:-32]  # keep the first and the recent ones for the direction
        quality = float(r.confidence) * weight
        if len(k.shots) < KEEP_BEST or quality > k.shots[-1].quality:
            k.shots.append(self._shot(frame, r, quality))
            k.shots.sort(key=lambda s: -s.quality)
            del k.shots[KEEP_BEST:]
        if frame.truth:
            best = max(frame.truth, key=lambda g: _iou(g.plate_box, r.box))
            if _iou(best.plate_box, r.box) > 0.2:
                k.truth[best.plate] += 1
            else:
                k.truth[""] += 1

    @staticmethod
    def _shot(frame: Frame, r: PlateResult, quality: float) -> _Shot:
        img = frame.image
        H, W = img.shape[:2]
        x, y, w, h = r.box
        mx, my = int(w * 0.1), int(h * 0.15)
        plate = img[max(0, y - my) : min(H, y + h + my), max(0, x - mx) : min(W, x + w + mx)].copy()
        cx, cy = x + w / 2, y + h / 2
        vx0, vx1 = int(max(0, cx - 2.2 * w)), int(min(W, cx + 2.2 * w))
        vy0, vy1 = int(max(0, cy - 2.4 * w)), int(min(H, cy + 0.8 * w))
        vehicle = img[vy0:vy1, vx0:vx1]
        if vehicle.shape[1] > VEHICLE_MAX_W:
            s = VEHICLE_MAX_W / vehicle.shape[1]
            vehicle = cv2.resize(vehicle, (VEHICLE_MAX_W, max(1, int(vehicle.shape[0] * s))), interpolation=cv2.INTER_AREA)
        else:
            vehicle = vehicle.copy()
        return _Shot(quality, r.plate, frame.utc, r.box, plate, vehicle)

    # -- the read ---------------------------------------------------------
    def _finish(self, k: Track) -> PlateRead | None:
        if not k.votes or k.frames < self.cfg.min_frames:
            self.discarded += 1
            return None
        ranked = sorted(k.votes.items(), key=lambda kv: -kv[1])
        ranked = self._settle_fused(k, ranked) or self._settle_rounds(k, ranked)
        text, score = ranked[0]
        confidence = min(1.0, score / k.weight)
        if confidence < self.cfg.min_confidence:
            self.discarded += 1
            log.debug("track %d discarded: %s at %.2f < min_confidence", k.tid, text, confidence)
            return None
        direction = self._direction(k)
        if self._repeat(k, text, direction):
            return None
        shot = next((s for s in k.shots if s.plate == text), k.shots[0])
        truth = max(k.truth.items(), key=lambda kv: kv[1])[0] if k.truth else None
        return PlateRead(
            plate=text,
            confidence=round(confidence, 4),
            candidates=[Candidate(p, round(min(1.0, s / k.weight), 4)) for p, s in ranked[:5]],
            capture_time=shot.utc,
            first_seen=k.first_utc,
            last_seen=k.last_utc,
            clock_synced=bool(self.clock_synced()),
            box=shot.box,
            plate_jpeg=self._jpeg(shot.plate_img),
            vehicle_jpeg=self._jpeg(shot.vehicle_img),
            direction=direction,
            frames=k.frames,
            ground_truth=truth or None,
        )

    def _repeat(self, k: Track, text: str, direction: Direction) -> bool:
        """Whether this pass is a read made already: the same text, the same direction (or one of them
        unknown), its track starting less than `repeat_window_s` after that read's last sight. Remembers
        the pass either way, so a plate hidden twice is still one read."""
        window = self.cfg.repeat_window_s
        if window <= 0:
            return False
        self._made = {p: v for p, v in self._made.items() if k.first_t - v[0] <= window}  # forget old reads
        seen = self._made.get(text)
        self._made[text] = (k.last_t, direction)
        if seen is None or "unknown" not in (seen[1], direction) and seen[1] != direction:
            return False
        self.repeats += 1
        log.info("track %d is %s again, %.1f s after its read: no second read", k.tid, text, k.first_t - seen[0])
        return True

    def _settle_fused(self, k: Track, ranked: list[tuple[str, float]]) -> list[tuple[str, float]] | None:
        """The vote settled on the pass's fused plate, or None (not asked, or no answer).

        Asked only where the second or third text is the leader's O/0 twin or holds an II the leader reads
        as one I (`glyphs.fused_asks`): the nearest views are aligned and averaged
        (recognition.fusion) and the glyphs read once on that (`glyphs.fused_choice`). O against 0: frame
        by frame the widths are noisy (the pooled rule below dares only O -> 0); on the fused plate an O of
        the fonts that issue one measures 1.3-1.4 times the plate's digits and a 0 about 1.0. The II: a
        bar the frames' path passed over beside another I is one more bare bar than the leader has Is
        there. The text the glyphs say, where some frame voted for it, takes the leader's place and
        score."""
        views, k.views = k.views, []
        if self.settle is None or len(ranked) < 2:
            return None
        lead = ranked[0][0]
        if not glyphs.fused_asks([t for t, _ in ranked]):
            return None
        made = fusion.fuse(views)
        if made is None:
            return None
        try:
            text = self.settle(made.image, made.box, [t for t, _ in ranked])
        except ValueError as e:  # an image the glyphs cannot be read on: the frames' vote stands
            log.warning("track %d: fused plate not read: %s", k.tid, e)
            return None
        self.fused += 1
        log.debug("track %d: %d views fused, the glyphs of %s say %s", k.tid, made.views, lead, text)
        if text is None or text == lead or text not in k.votes:
            return None
        return _trade(ranked, next(j for j, (t, _) in enumerate(ranked) if t == text))

    @staticmethod
    def _settle_rounds(k: Track, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """The vote with O against 0 settled by the glyphs' widths pooled over the track's frames
        (`glyphs.pooled_choice`: an O whose glyph is narrower than the plate's digits is a 0): where the
        second or third text differs from the leader only there and the pooled widths say so, the two
        swap places and scores. Frames split their votes between such readings (THH0713: 27 frames
        against 33), and the nearer frames do not read them better."""
        if len(ranked) < 2 or not k.rounds:
            return ranked
        seen = list(k.rounds)
        for j in range(1, min(3, len(ranked))):
            if glyphs.pooled_choice(ranked[0][0], ranked[j][0], seen, ROUND_MIN_FRAMES):
                return _trade(ranked, j)
        return ranked

    def _jpeg(self, img: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return buf.tobytes() if ok else b""

    @staticmethod
    def _direction(k: Track) -> Direction:
        """Approaching plates grow (and move down the frame); receding ones shrink."""
        if len(k.widths) < 2:
            return "unknown"
        n = max(1, len(k.widths) // 3)
        first, last = k.widths[:n], k.widths[-n:]
        w0 = sum(w for _, w, _ in first) / n
        w1 = sum(w for _, w, _ in last) / n
        if w0 > 0 and abs(math.log(max(w1, 1) / max(w0, 1))) > 0.1:
            return "approaching" if w1 > w0 else "receding"
        y0 = sum(y for _, _, y in first) / n
        y1 = sum(y for _, _, y in last) / n
        if abs(y1 - y0) > 0.5 * w0:
            return "approaching" if y1 > y0 else "receding"
        return "unknown"
