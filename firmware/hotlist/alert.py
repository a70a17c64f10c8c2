"""Turn hits into alerts: sealed ahead of every read, audited, optionally a relay or light.

The store seals the alert body (`Hit.to_alert()`) with `Outbox.add_alert`,
which queues it before reads so it leaves first at QoS 1. A special event
may route alerts to a local GPIO relay (a beacon in the command post); the
relay is any object with `.output(pin, value)` (drivers.gpio backends).

Two entry points: `on_frame` checks each confident plate in a frame as soon
as recognition returns, so an alert does not wait for the vehicle to leave
the scene (the tracker emits its read only then); `on_read` checks the
voted read of the whole pass. An entry alerted for one pass is not alerted
again within `realert_s`, so the read that follows an early alert does not
page the officers twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from firmware.hotlist.manager import Auditor, HotlistManager
from firmware.records import Candidate, PlateRead, PlateResult

log = logging.getLogger(__name__)


class AlertOutbox(Protocol):
    def add_alert(self, read: PlateRead, hit: dict[str, Any]) -> str: ...


class Relay(Protocol):
    """A drivers.gpio backend (`setup_output`, `write`) or anything with `.output(pin, value)`."""


def read_candidates(read: PlateRead, top_n: int) -> list[tuple[str, float]]:
    """The voted text first, then the OCR's alternatives, without repeats."""
    out = [(read.plate, float(read.confidence))]
    seen = {read.plate}
    for c in read.candidates:
        if c.plate not in seen:
            out.append((c.plate, float(c.confidence)))
            seen.add(c.plate)
    return out[:top_n]


class Alerter:
    def __init__(
        self,
        hotlists: HotlistManager,
        outbox: AlertOutbox | None,
        audit: Auditor | None = None,
        relay: Relay | None = None,
        relay_pin: int | None = None,
        relay_hold_s: float = 5.0,
        top_n: int = 5,
        routes: Collection[str] = ("department",),
        timer: Callable[[float, Callable[[], None]], Any] | None = None,
        early_min_confidence: float = 0.8,
        realert_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.hotlists, self.outbox, self.audit = hotlists, outbox, audit
        self.relay, self.relay_pin, self.relay_hold_s = relay, relay_pin, relay_hold_s
        self.top_n, self.routes = top_n, set(routes)
        self._timer = timer or _start_timer
        self._relay_lock = threading.Lock()
        self._relay_until = 0
        self._relay_ready = False
        self.early_min_confidence, self.realert_s, self._clock = early_min_confidence, realert_s, clock
        self._recent: dict[tuple[str, int, str, str], float] = {}
        self._recent_lock = threading.Lock()
        self.notify = notify  # e.g. Uplink.wake: send the alert now, not at the next poll

    def on_frame(self, image: np.ndarray, utc: datetime, results: Sequence[PlateResult],
                 clock_synced: bool = True) -> list[str]:
        """Early alerts from one frame's confident plates; returns the alert record ids."""
        ids: list[str] = []
        for r in results:
            if r.confidence < self.early_min_confidence:
                continue
            cands = [(r.plate, float(r.confidence))] + [(c.plate, float(c.confidence)) for c in r.candidates
                                                         if c.plate != r.plate]
            hits = self._fresh(self.hotlists.match(cands[: self.top_n]))
            if hits:
                read = frame_read(image, utc, r, clock_synced)
                ids += self._alert(read, hits, early=True)
        return ids

    def on_read(self, read: PlateRead) -> list[str]:
        """Match one read; return the record ids of the alerts queued (empty when no hit)."""
        return self._alert(read, self._fresh(self.hotlists.match(read_candidates(read, self.top_n))), early=False)

    def _fresh(self, hits: list[Any]) -> list[Any]:
        """Hits whose entry was not alerted within realert_s (the same pass seen again)."""
        now = self._clock()
        out = []
        with self._recent_lock:
            for key, t in list(self._recent.items()):
                if now - t > self.realert_s:
                    del self._recent[key]
            for h in hits:
                e = h.entry
                key = (e.list_name, e.list_version, e.pattern, e.case)
                if key not in self._recent:
                    self._recent[key] = now
                    out.append(h)
        return out

    def _alert(self, read: PlateRead, hits: list[Any], early: bool) -> list[str]:
        """Seal every alert first (they leave before any read), wake the uplink, light the relay,
        then audit: the slow fsyncs of the audit log never delay an alert."""
        ids: list[str] = []
        if "department" in self.routes and self.outbox is not None:
            ids = [str(self.outbox.add_alert(read, hit.to_alert())) for hit in hits]
            if ids and self.notify is not None:
                self.notify()
        if hits and "relay" in self.routes:
            self._pulse()
        if self.audit is not None:
            for i, hit in enumerate(hits):
                self._record_hit(hit, ids[i] if i < len(ids) else "", early)
        return ids

    def _record_hit(self, hit: Any, rid: str, early: bool) -> None:
        """Audit a hit; a failing audit log is logged, never stops alerts (the sealed alert holds the hit)."""
        try:
            self.audit.record(  # type: ignore[union-attr]
                "device", "hit", purpose=hit.entry.purpose, case=hit.entry.case,
                detail={"record": rid, "list": hit.entry.list_name, "version": hit.entry.list_version,
                        "kind": hit.kind, "score": round(hit.score, 4), "early": early},
            )
        except Exception:
            log.exception("audit of hit %s failed", rid)

    def _drive(self, pin: int, value: bool) -> None:
        relay = self.relay
        if hasattr(relay, "write"):  # drivers.gpio.Gpio
            if not self._relay_ready:
                relay.setup_output(pin, False)  # type: ignore[union-attr]
                self._relay_ready = True
            relay.write(pin, value)  # type: ignore[union-attr]
        else:
            relay.output(pin, value)  # type: ignore[union-attr]

    def _pulse(self) -> None:
        if self.relay is None or self.relay_pin is None:
            return
        pin = self.relay_pin
        with self._relay_lock:
            self._relay_until += 1
            token = self._relay_until
            try:
                self._drive(pin, True)
            except Exception:  # a broken beacon must not stop alerts reaching the department
                log.exception("alert relay on pin %s failed", pin)
                return

        def off() -> None:
            with self._relay_lock:
                if token != self._relay_until:
                    return  # a later hit extended the pulse
                try:
                    self._drive(pin, False)
                except Exception:
                    log.exception("alert relay on pin %s failed to switch off", pin)

        self._timer(self.relay_hold_s, off)


def frame_read(image: np.ndarray, utc: datetime, r: PlateResult, clock_synced: bool = True) -> PlateRead:
    """A one-frame read for an early alert: the plate crop and the vehicle around it, as JPEG."""
    import cv2

    H, W = image.shape[:2]
    x, y, w, h = (int(v) for v in r.box)
    mx, my = int(w * 0.1), int(h * 0.15)
    plate = image[max(0, y - my): min(H, y + h + my), max(0, x - mx): min(W, x + w + mx)]
    cx, cy = x + w / 2, y + h / 2
    vehicle = image[int(max(0, cy - 2.4 * w)): int(min(H, cy + 0.8 * w)), int(max(0, cx - 2.2 * w)):
                    int(min(W, cx + 2.2 * w))]

    def jpeg(img: np.ndarray) -> bytes:
        if img.size == 0:
            return b""
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return buf.tobytes() if ok else b""

    cands = r.candidates or [Candidate(r.plate, r.confidence)]
    return PlateRead(plate=r.plate, confidence=float(r.confidence), candidates=list(cands)[:50], capture_time=utc,
                     first_seen=utc, last_seen=utc, clock_synced=clock_synced, box=(x, y, w, h),
                     plate_jpeg=jpeg(plate), vehicle_jpeg=jpeg(vehicle), frames=1)


def _start_timer(delay: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()
    return t
