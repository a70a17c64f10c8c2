"""The policy controls wired together for the app: one object, few calls.

`Policy(cfg, keys, outbox)` opens the audit log (mirrored to the department
through the outbox's `audit` records), the hot lists, the alerter, remote
commands, evidence holds, usage counters and the special-event window.
The app then calls:

    policy.register(uplink)        # cmd and hotlist handlers
    policy.allows_reading(now)     # False outside a special event's window
    policy.on_frame(frame, results)  # early alert from a confident frame (before the pass ends)
    policy.on_read(read)           # hot-list check, alerts sealed first, counters
    policy.tick(now)               # every minute: uptime, end-of-event purge
    policy.status()                # for telemetry (no plate data)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware.audit import AuditLog
from firmware.config import Config
from firmware.event import EventSupervisor, window_for
from firmware.hotlist import Alerter, HotlistManager, storage_key
from firmware.records import PlateRead, PlateResult
from firmware.remote import CommandProcessor, Handlers, NonceStore, admin_keys_from_dir, journal_logs, key_rotation
from firmware.report import UsageCounters
from firmware.retention import EvidenceHolds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyPaths:
    keys: Path
    audit: Path
    hotlists: Path
    nonces: Path
    access: Path
    holds: Path
    usage: Path


def paths(cfg: Config) -> PolicyPaths:
    d = Path(cfg.device.data_dir)
    return PolicyPaths(
        keys=Path(cfg.keys.dir) if cfg.keys.dir else d / "keys",
        audit=d / "audit" / "audit.log",
        hotlists=d / "hotlists",
        nonces=d / "nonces.db",
        access=d / "access.db",
        holds=d / "holds.db",
        usage=d / "usage.db",
    )


def hotlist_keys(keydir: Path | str) -> Callable[[], dict[str, Ed25519PublicKey]]:
    """The department's hot-list signing keys, `<keydir>/hotlist/*.pub`, by key id; re-read on use."""
    from firmware import keys as K
    from firmware.envelope import key_id

    def load() -> dict[str, Ed25519PublicKey]:
        out = {}
        for f in sorted((Path(keydir) / "hotlist").glob("*.pub")):
            k = K.load_public(f, Ed25519PublicKey)
            out[key_id(k)] = k  # type: ignore[arg-type]
        return out

    return load


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Policy:
    def __init__(
        self,
        cfg: Config,
        keys: Any,  # firmware.keys.DeviceKeys
        outbox: Any = None,
        relay: Any = None,
        handlers: Handlers | None = None,
        telemetry: Callable[[], dict[str, Any]] | None = None,
        capture: Callable[[], Any] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.cfg, self.clock, self.outbox = cfg, clock, outbox
        p = self.paths = paths(cfg)
        mirror = outbox.add_audit if outbox is not None else None
        self.audit = AuditLog(p.audit, keys.signing_key, mirror=mirror, clock=clock)
        h = cfg.hotlist
        self.hotlists = HotlistManager(p.hotlists, storage_key(keys.signing_key), hotlist_keys(p.keys), self.audit,
                                       h.max_edit_distance, h.partial_edit_distance, h.confusions, clock)
        for problem in self.hotlists.load():
            log.error("stored hot list not loaded: %s", problem)
        ev = cfg.event
        if ev is not None:
            routes, pin = tuple(ev.alert_routes), ev.relay_pin
        else:
            pin = h.alert_relay_pin
            routes = ("department", "relay") if pin is not None else ("department",)
        self.alerter = Alerter(self.hotlists, outbox, self.audit, relay=relay, relay_pin=pin,
                               relay_hold_s=h.relay_hold_s, top_n=h.top_n, routes=routes,
                               early_min_confidence=h.early_alert_confidence, realert_s=h.realert_s)
        self.window = window_for(ev)
        self.usage = UsageCounters(p.usage)
        self.holds = EvidenceHolds(p.holds, outbox.path, self.audit, clock) if outbox is not None else None
        self.event = (EventSupervisor(ev, outbox, self.audit, Path(cfg.device.data_dir), self.hotlists)
                      if ev is not None and outbox is not None else None)
        self._telemetry = telemetry
        hd = handlers or Handlers()
        hd.status = hd.status or self._status_for_command
        hd.get_config = hd.get_config or (lambda: self.cfg)
        hd.hotlists = hd.hotlists or self.hotlists
        hd.rotate_keys = hd.rotate_keys or key_rotation(p.keys)
        hd.fetch_logs = hd.fetch_logs or journal_logs()
        hd.holds = hd.holds or self.holds
        if hd.snapshot is None and capture is not None:  # capture() -> the camera's latest Frame
            from firmware.snapshot import snapshot_handler

            hd.snapshot = snapshot_handler(capture, cfg.device.id, keys)
        self.commands = CommandProcessor(cfg.device.id, cfg.device.agency, admin_keys_from_dir(p.keys),
                                         NonceStore(p.nonces), self.audit, hd, clock=clock)
        self._last_tick: datetime | None = None

    def register(self, uplink: Any) -> None:
        uplink.on_message("cmd", self.commands.handle)
        uplink.on_message("hotlist", self.hotlists.on_message)
        self.alerter.notify = uplink.wake

    def allows_reading(self, now: datetime | None = None) -> bool:
        return self.window.allows(now or self.clock())

    def on_frame(self, frame: Any, results: Sequence[PlateResult], clock_synced: bool = True) -> list[str]:
        """Early alerts: check a frame's confident plates as soon as recognition returns
        (`frame` has .image and .utc, like drivers.camera.Frame)."""
        return self.alerter.on_frame(frame.image, frame.utc, results, clock_synced)

    def on_read(self, read: PlateRead) -> list[str]:
        """Check one read against the hot lists; returns alert record ids (sealed ahead of reads)."""
        ids = self.alerter.on_read(read)
        self.usage.add(reads=1, alerts=len(ids))
        return ids

    def tick(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Count uptime since the last tick; run the end-of-event duties."""
        now = now or self.clock()
        if self._last_tick is not None and now > self._last_tick:
            self.usage.add(uptime_s=min((now - self._last_tick).total_seconds(), 3600.0), when=now)
        self._last_tick = now
        return self.event.tick(now) if self.event is not None else None

    def status(self) -> dict[str, Any]:
        ev = self.cfg.event
        return {
            "hotlists": self.hotlists.status(),
            "reading_allowed": self.allows_reading(),
            "event": None if ev is None else {"name": ev.name, "start": ev.start.isoformat(),
                                              "end": ev.end.isoformat(), "purged": bool(self.event and
                                                                                       self.event.done())},
            "evidence_holds": len(self.holds.held()) if self.holds is not None else 0,
        }

    def _status_for_command(self) -> dict[str, Any]:
        from firmware import __version__

        out: dict[str, Any] = {"version": __version__, "pid": os.getpid(), "policy": self.status()}
        if self._telemetry is not None:
            out.update(self._telemetry())
        return out
