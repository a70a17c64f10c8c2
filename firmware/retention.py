"""Evidence holds: records the department names are kept past the retention purge.

Retention itself runs in the outbox (`Outbox.maintain`: delivered data is
purged after `store.delivered_grace_hours`, undelivered data after
`store.undelivered_max_age_days`, both audited). When the department names
records as evidence for a case, `EvidenceHolds.hold` copies their sealed
parts, still sealed (the device cannot open them), into a separate SQLite
file that the purge never touches, until the department releases the hold.
Holding a copy rather than editing the outbox's purge keeps the store's
retention simple and makes a hold survive an outbox rebuilt after corruption.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from firmware.hotlist.manager import Auditor

_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
_CASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _./:#-]{0,63}$")
PART_NAMES = ("text", "plate_jpeg", "vehicle_jpeg")  # the outbox's part numbering


class HoldError(ValueError):
    """A hold request that cannot be honoured; the message says why."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class EvidenceHolds:
    def __init__(self, path: Path | str, outbox_path: Path | str, audit: Auditor,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.path, self.outbox_path = Path(path), Path(outbox_path)
        self.audit, self.clock = audit, clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS held (id TEXT NOT NULL, part TEXT NOT NULL, kind TEXT NOT NULL, "
            "seq INTEGER NOT NULL, data BLOB NOT NULL, case_no TEXT NOT NULL, held_by TEXT NOT NULL, "
            "held_at TEXT NOT NULL, PRIMARY KEY (id, part))")
        self._lock = threading.Lock()

    def hold(self, record_ids: Sequence[str], case: str, by: str) -> dict[str, Any]:
        """Copy the named records' sealed parts into the hold; report held and already-purged ids."""
        ids = _check_ids(record_ids)
        if not isinstance(case, str) or not _CASE.match(case):
            raise HoldError("case: a case or reference number is required for an evidence hold")
        src = sqlite3.connect(f"file:{self.outbox_path}?mode=ro", uri=True)
        try:
            marks = ",".join("?" * len(ids))
            rows = src.execute(f"SELECT id, part, kind, seq, data FROM parts WHERE id IN ({marks})", ids).fetchall()
        except sqlite3.Error as exc:
            raise HoldError(f"cannot read the outbox {self.outbox_path}: {exc}") from None
        finally:
            src.close()
        now = self.clock().isoformat()
        found = sorted({r[0] for r in rows})
        missing = sorted(set(ids) - set(found))
        result = {"held": found, "missing": missing, "parts": len(rows), "case": case}
        self.audit.record(by, "evidence_hold", purpose="investigation", case=case, detail=result)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO held VALUES (?,?,?,?,?,?,?,?)",
                [(rid, PART_NAMES[part], kind, seq, data, case, by, now) for rid, part, kind, seq, data in rows
                 if data is not None])
            self._db.execute("COMMIT")
        return result

    def release(self, record_ids: Sequence[str], case: str, by: str) -> dict[str, Any]:
        ids = _check_ids(record_ids)
        self.audit.record(by, "evidence_release", purpose="investigation", case=case, detail={"records": ids})
        with self._lock:
            marks = ",".join("?" * len(ids))
            cur = self._db.execute(f"DELETE FROM held WHERE case_no=? AND id IN ({marks})", [case, *ids])
        return {"released_parts": cur.rowcount, "case": case}

    def held(self) -> list[dict[str, Any]]:
        """What is held, without content: id, kind, parts, case, who, when."""
        rows = self._db.execute(
            "SELECT id, kind, count(*), sum(length(data)), case_no, held_by, held_at FROM held "
            "GROUP BY id, case_no ORDER BY held_at")
        return [{"id": r[0], "kind": r[1], "parts": r[2], "bytes": r[3], "case": r[4], "by": r[5], "at": r[6]}
                for r in rows]

    def sealed(self, record_id: str) -> dict[str, bytes]:
        """The held sealed parts of one record (for handing over; still sealed to the department)."""
        return {p: bytes(d) for p, d in self._db.execute("SELECT part, data FROM held WHERE id=?", (record_id,))}

    def close(self) -> None:
        self._db.close()


def _check_ids(record_ids: Sequence[str]) -> list[str]:
    if isinstance(record_ids, str) or not isinstance(record_ids, (list, tuple)) or not 1 <= len(record_ids) <= 500:
        raise HoldError("records: give a list of 1-500 record ids")
    for r in record_ids:
        if not isinstance(r, str) or not _ID.match(r):
            raise HoldError(f"records: {str(r)[:70]!r} is not a record id")
    return list(dict.fromkeys(record_ids))
