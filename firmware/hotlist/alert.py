"""Turn hits into alerts: sealed ahead of every read, audited, optionally a relay or light.

The store seals the alert body (`Hit.to_alert()`) with `Outbox.add_alert`,
which queues it before reads so it leaves first at QoS 1. A special event
may route alerts to a local GPIO relay (a beacon in the command post); the
relay is any object with `.output(pin, value)` (drivers.gpio backends).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import Any, Protocol

from firmware.hotlist.manager import Auditor, HotlistManager
from firmware.records import PlateRead

log = logging.getLogger(__name__)


class AlertOutbox(Protocol):
    def add_alert(self, read: PlateRead, hit: dict[str, Any]) -> str: ...


class Relay(Protocol):
    def output(self, pin: int, value: bool) -> None: ...


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
    ) -> None:
        self.hotlists, self.outbox, self.audit = hotlists, outbox, audit
        self.relay, self.relay_pin, self.relay_hold_s = relay, relay_pin, relay_hold_s
        self.top_n, self.routes = top_n, set(routes)
        self._timer = timer or _start_timer
        self._relay_lock = threading.Lock()
        self._relay_until = 0

    def on_read(self, read: PlateRead) -> list[str]:
        """Match one read; return the record ids of the alerts queued (empty when no hit)."""
        hits = self.hotlists.match(read_candidates(read, self.top_n))
        ids: list[str] = []
        for hit in hits:
            body = hit.to_alert()
            rid = ""
            if "department" in self.routes and self.outbox is not None:
                rid = str(self.outbox.add_alert(read, body))
                ids.append(rid)
            if self.audit is not None:
                self.audit.record(
                    "device", "hit", purpose=hit.entry.purpose, case=hit.entry.case,
                    detail={"record": rid, "list": hit.entry.list_name, "version": hit.entry.list_version,
                            "kind": hit.kind, "score": round(hit.score, 4)},
                )
        if hits and "relay" in self.routes:
            self._pulse()
        return ids

    def _pulse(self) -> None:
        if self.relay is None or self.relay_pin is None:
            return
        pin = self.relay_pin
        with self._relay_lock:
            self._relay_until += 1
            token = self._relay_until
        self.relay.output(pin, True)

        def off() -> None:
            with self._relay_lock:
                if token != self._relay_until:
                    return  # a later hit extended the pulse
            self.relay.output(pin, False)

        self._timer(self.relay_hold_s, off)


def _start_timer(delay: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()
    return t
