"""Special-event deployments: read only inside the event window, purge after it.

The policy allows a trailer or pole at a special event only for its
duration: `EventWindow.allows(now)` gates reading (a fixed pole has no
window and always reads). After the end, `EventSupervisor.tick(now)` drops
the event hot list, waits until every record has been delivered to the
department (nothing is lost), then purges the delivered data at once (no
grace period) and reports the purge once, in the audit log that is
mirrored to the department and in the returned dict for telemetry.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from firmware.config import EventConfig
from firmware.envelope import iso
from firmware.hotlist.manager import Auditor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventWindow:
    start: datetime
    end: datetime

    def allows(self, now: datetime) -> bool:
        """True while the event runs: [start, end)."""
        return self.start <= now < self.end

    def ended(self, now: datetime) -> bool:
        return now >= self.end


class AlwaysOpen:
    """The window of a fixed pole: reading is always allowed."""

    def allows(self, now: datetime) -> bool:
        return True

    def ended(self, now: datetime) -> bool:
        return False


def window_for(event: EventConfig | None) -> EventWindow | AlwaysOpen:
    return AlwaysOpen() if event is None else EventWindow(event.start, event.end)


class PurgeableOutbox(Protocol):
    cfg: Any

    def backlog(self, now: float | None = None) -> dict[str, Any]: ...
    def maintain(self, now: float | None = None) -> dict[str, int]: ...


def purge_delivered(outbox: PurgeableOutbox) -> int:
    """Purge every delivered part now, ignoring the grace period; returns the parts purged.

    Runs the outbox's own retention pass with its clock moved past the grace
    period. Only called with an empty backlog, so nothing undelivered is at
    risk, and it refuses when the shift would reach the undelivered maximum age.
    """
    if hasattr(outbox, "purge_delivered"):
        return int(outbox.purge_delivered())  # type: ignore[attr-defined]
    grace_s = float(outbox.cfg.delivered_grace_hours) * 3600 + 1
    if grace_s >= float(outbox.cfg.undelivered_max_age_days) * 86400:
        raise RuntimeError("delivered grace period is not shorter than the undelivered maximum age")
    return int(outbox.maintain(now=time.time() + grace_s)["purged_delivered"])


class EventSupervisor:
    """Runs the end-of-event duties once; call `tick` every few minutes."""

    def __init__(self, event: EventConfig, outbox: PurgeableOutbox, audit: Auditor,
                 state_dir: Path | str, hotlists: Any = None) -> None:
        self.event, self.outbox, self.audit, self.hotlists = event, outbox, audit, hotlists
        self.window = EventWindow(event.start, event.end)
        self._state = Path(state_dir) / f"event-{_slug(event.name)}-{int(event.end.timestamp())}.json"

    def done(self) -> bool:
        return self._state.exists()

    def tick(self, now: datetime) -> dict[str, Any] | None:
        """None while the event runs or after the purge was reported; else the end-of-event status."""
        if not self.window.ended(now) or self.done():
            return None
        if self.hotlists is not None and self.event.hotlist:
            self.hotlists.remove(self.event.hotlist, actor="device", reason=f"event {self.event.name} ended")
        backlog = self.outbox.backlog()
        if backlog["backlog_records"]:
            return {"event": self.event.name, "state": "waiting_for_delivery",
                    "undelivered_records": backlog["backlog_records"]}
        purged = purge_delivered(self.outbox)
        report = {"event": self.event.name, "state": "purged", "ended": iso(self.event.end),
                  "purged_at": iso(now), "purged_parts": purged,
                  "store_bytes_after": self.outbox.backlog()["store_bytes"]}
        self.audit.record("device", "event_purge", purpose="event_protection", case=None, detail=report)
        tmp = self._state.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(report))
        os.replace(tmp, self._state)
        log.info("event %s ended: purged %d delivered parts", self.event.name, purged)
        return report


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)[:48]
