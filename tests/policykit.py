"""Helpers for the policy tests (hot lists, remote commands, access, audit, events, report):
real Ed25519 keys, real audit logs, signed hot lists and commands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.audit import AuditLog
from firmware.envelope import key_id
from firmware.hotlist import sign_hotlist

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A settable clock the code under test reads instead of the wall clock."""

    def __init__(self, t: datetime = NOW) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def entry(pattern: str, purpose: str = "stolen_vehicle", case: str = "24-0001", days: float = 30) -> dict[str, Any]:
    return {"pattern": pattern, "purpose": purpose, "case": case, "expires": (NOW + timedelta(days=days)).isoformat()}


def signed_list(key: Ed25519PrivateKey, entries: list[dict[str, Any]], version: int = 1, name: str = "main",
                days: float = 7, issued: datetime = NOW) -> bytes:
    return sign_hotlist(key, name, version, "demo-pd", issued - timedelta(hours=1), issued + timedelta(days=days),
                        entries)


def trusted(*keys: Ed25519PrivateKey) -> dict:
    return {key_id(k): k.public_key() for k in keys}


def audit_log(tmp: Path, key: Ed25519PrivateKey | None = None, clock=None) -> AuditLog:
    kw = {"clock": clock} if clock else {}
    return AuditLog(tmp / "audit.log", key or Ed25519PrivateKey.generate(), **kw)


def actions(log: AuditLog) -> list[str]:
    return [e["action"] for e in log.entries()]
