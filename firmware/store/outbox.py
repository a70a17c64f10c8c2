"""The sealed outbox: every read, alert and audit mirror entry, sealed before
it touches the disk, kept until the department acknowledges it.

SQLite in WAL mode with synchronous=FULL: `add_*` returns only after the
record is committed and on disk, so a power cut after a read was accepted
loses nothing. Clear columns hold only what routing needs (id, sequence,
kind, priority, part, size, state, times); plate text and images exist only
inside sealed envelopes the device cannot open.

Capacity policy (`StoreConfig.capacity_bytes`, counted over stored
envelopes): first delivered parts still in their grace period go, then
vehicle images, then plate crops, then the text of plain reads, oldest
first. Alerts and audit entries are never evicted. Every eviction is
reported through the `audit(action, detail)` callback.

Sequence numbers are per device and gapless: the counter lives in the same
transaction as the insert. A side file (`<db>.seqfloor`) reserves blocks of
sequence numbers so that a store rebuilt after corruption continues above
every number ever issued; the gap is then explained by the audit entry.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from firmware.records import PlateRead
from firmware.seal import SealedRecord, Sealer, normalise_hit, utc_iso
from firmware.store.ids import uuid7

log = logging.getLogger("polewatch.store")

AuditCallback = Callable[[str, dict[str, Any]], None]

PART_NAMES = ("text", "plate_jpeg", "vehicle_jpeg")
PART_NO = {n: i for i, n in enumerate(PART_NAMES)}
PRIORITY = {"alert": 0, "audit": 1, "read": 2}
PENDING, DELIVERED = 0, 1
SEQ_BLOCK = 1024
SCHEMA_VERSION = 1


class StoreError(Exception):
    """The outbox cannot do what was asked; the message says why."""


class StoreFull(StoreError):
    """The disk (or the file system quota) is full: the new record was not
    stored, every record stored before is intact."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One part waiting to be sent."""

    seq: int
    part: str
    id: str
    kind: str
    priority: int
    data: bytes

    @property
    def key(self) -> tuple[int, int]:
        return (self.seq, PART_NO[self.part])


def site_location(site: Any) -> dict[str, Any]:
    """The sealed location for a fixed pole, from `cfg.site`."""
    desc = f"{site.name}: {site.description}" if getattr(site, "description", "") else site.name
    return {"latitude": float(site.latitude), "longitude": float(site.longitude), "description": desc[:512]}


def event_location(event: Any) -> dict[str, Any]:
    """The sealed location for a special-event deployment, from `cfg.event`."""
    return {
        "latitude": float(event.latitude),
        "longitude": float(event.longitude),
        "description": f"{event.name}: {event.location}"[:512],
    }


class Outbox:
    """The device's durable, sealed outbox (one SQLite file)."""

    def __init__(
        self,
        path: Path | str,
        cfg: Any,
        sealer: Sealer,
        location: dict[str, Any] | None = None,
        audit: AuditCallback | None = None,
        integrity_check: bool = True,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self.sealer = sealer
        self.device_id = sealer.device_id
        self.location = location
        self._audit = audit
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._pending_audit: list[tuple[str, dict[str, Any]]] = []
        self.recovered_from: Path | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seqfloor_path = self.path.with_name(self.path.name + ".seqfloor")
        self._db = self._open(integrity_check)
        self._total = int(self._db.execute("SELECT coalesce(sum(bytes),0) FROM parts").fetchone()[0])
        self._next_seq = self._load_next_seq()
        self._seq_floor = self._read_seqfloor()
        if self.recovered_from is not None:
            self._next_seq = max(self._next_seq, self._seq_floor)
            self._set_meta("next_seq", self._next_seq)
            self._queue_audit(
                "store.corrupt_moved_aside",
                {"moved_to": str(self.recovered_from), "seq_resumes_at": self._next_seq},
            )
        self._flush_audit()

    # -- opening and recovery -------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=16777216")  # the WAL file shrinks back after checkpoints
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _open(self, integrity_check: bool) -> sqlite3.Connection:
        try:
            conn = self._connect()
            if integrity_check:
                row = conn.execute("PRAGMA quick_check").fetchone()
                if not row or row[0] != "ok":
                    raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
            self._create_schema(conn)
            return conn
        except sqlite3.DatabaseError as exc:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the handle may be half-open
                pass
            if isinstance(exc, sqlite3.OperationalError):
                # locked, unreadable, disk full: the file may be healthy, never move it aside
                if _is_full(exc):
                    raise StoreFull(f"{self.path}: disk full while opening the outbox: {exc}") from None
                raise StoreError(f"{self.path}: cannot open the outbox: {exc}") from None
            self.recovered_from = self._move_aside(str(exc))
            conn = self._connect()
            self._create_schema(conn)
            return conn

    def _move_aside(self, reason: str) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        dest = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 0
        while dest.exists():
            n += 1
            dest = self.path.with_name(f"{self.path.name}.corrupt-{stamp}.{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(dest) + suffix))
        log.error("outbox %s is corrupt (%s); moved aside intact to %s, starting a fresh store", self.path, reason, dest)
        return dest

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        db = sqlite_utils.Database(conn)
        if "parts" not in db.table_names():
            # idempotent steps: a crash half-way through is finished on the next start
            db["meta"].create({"key": str, "value": int}, pk="key", if_not_exists=True)
            db["parts"].create(
                {
                    "seq": int, "part": int, "id": str, "kind": str, "priority": int,
                    "lane": int, "created": float, "bytes": int, "state": int,
                    "delivered_at": float, "data": bytes,
                },
                not_null={"seq", "part", "id", "kind", "priority", "lane", "created", "bytes", "state"},
                if_not_exists=True,
            )
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS parts_key ON parts(seq, part)")
        conn.execute("CREATE INDEX IF NOT EXISTS parts_send ON parts(state, lane, priority, seq, part)")
        conn.execute("CREATE INDEX IF NOT EXISTS parts_id ON parts(id)")
        conn.execute("CREATE INDEX IF NOT EXISTS parts_age ON parts(state, created)")
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?), ('next_seq', 1), ('evicted_parts', 0)",
            (SCHEMA_VERSION,),
        )
        ver = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if not ver or ver[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"unknown outbox schema version {ver[0] if ver else None}")

    def _load_next_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        top = self._db.execute("SELECT coalesce(max(seq),0) FROM parts").fetchone()[0]
        return max(int(row[0]) if row else 1, int(top) + 1)

    def _read_seqfloor(self) -> int:
        try:
            return int(self._seqfloor_path.read_text().strip() or 1)
        except (OSError, ValueError):
            return 1

    def _reserve_seq(self, seq: int) -> None:
        """Persist a floor above `seq` before it is used (one fsync per block)."""
        if seq < self._seq_floor:
            return
        floor = seq + SEQ_BLOCK
        tmp = self._seqfloor_path.with_name(self._seqfloor_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{floor}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._seqfloor_path)
        self._seq_floor = floor

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- adding records ---------------------------------------------------------
    def add_read(self, read: PlateRead, location: dict[str, Any] | None = None) -> str:
        """Seal and store one read; returns its record id once it is on disk."""
        return self._add_plate("read", read, location, None)

    def add_alert(self, read: PlateRead, hit: dict[str, Any], location: dict[str, Any] | None = None) -> str:
        """Seal and store an alert (a read plus the matched hot-list entry)."""
        return self._add_plate("alert", read, location, normalise_hit(hit))

    def add_audit(self, entry: dict[str, Any]) -> str:
        """Seal and store an audit mirror entry (never evicted)."""
        return self._add("audit", {"entry": dict(entry)}, None, None)

    def _add_plate(
        self, kind: str, read: PlateRead, location: dict[str, Any] | None, hit: dict[str, Any] | None
    ) -> str:
        loc = location if location is not None else self.location
        if loc is None:
            raise StoreError("no location: pass one or give the Outbox the site location")
        fields: dict[str, Any] = {
            "capture_time": utc_iso(read.capture_time),
            "clock_synced": bool(read.clock_synced),
            "location": {
                "latitude": loc["latitude"],
                "longitude": loc["longitude"],
                "description": loc.get("description", ""),
            },
            "plate": read.plate,
            "confidence": float(read.confidence),
            "candidates": [{"plate": c.plate, "confidence": float(c.confidence)} for c in read.candidates],
        }
        if hit is not None:
            fields["hit"] = hit
        return self._add(kind, fields, read.plate_jpeg or None, read.vehicle_jpeg or None)

    def _add(self, kind: str, fields: dict[str, Any], plate_jpeg: bytes | None, vehicle_jpeg: bytes | None) -> str:
        with self._lock:
            seq = self._next_seq
            rec = {"id": uuid7(), "device": self.device_id, "seq": seq, "kind": kind, **fields}
            sealed = self.sealer.seal(rec, plate_jpeg, vehicle_jpeg)
            size = sum(len(b) for b in sealed.parts.values())
            try:
                self._make_room(size, kind)
                self._reserve_seq(seq)
                self._insert(sealed)
            except OSError as exc:
                raise StoreFull(
                    f"{self._seqfloor_path}: cannot write ({exc.strerror}); {kind} {sealed.id} NOT stored, "
                    "earlier records intact"
                ) from None
            except sqlite3.OperationalError as exc:
                if self._batch_depth:
                    raise  # the batch rolls back as a whole
                self._rollback()
                if _is_full(exc):
                    raise StoreFull(
                        f"{self.path}: disk full; {kind} {sealed.id} NOT stored, earlier records intact ({exc})"
                    ) from None
                raise StoreError(f"{self.path}: cannot store {kind}: {exc}") from None
            self._next_seq = seq + 1
            self._total += size
        if not self._batch_depth:
            self._flush_audit()
        return sealed.id

    def _insert(self, sealed: SealedRecord) -> None:
        now = time.time()
        pr = PRIORITY[sealed.kind]
        rows = [
            (sealed.seq, PART_NO[name], sealed.id, sealed.kind, pr, 0 if name == "text" else 1, now, len(data), data)
            for name, data in sealed.parts.items()
        ]
        db = self._db
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO parts(seq, part, id, kind, priority, lane, created, bytes, state, data) "
            "VALUES (?,?,?,?,?,?,?,?,0,?)",
            rows,
        )
        db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (sealed.seq + 1,))
        if not self._batch_depth:
            db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group several `add_*` calls into one durable commit (one fsync).

        Ids returned inside the block are on disk only when the block exits
        without an exception; on an exception none of them is stored."""
        with self._lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield
                finally:
                    self._batch_depth -= 1
                return
            start_seq, start_total = self._next_seq, self._total
            self._batch_depth = 1
            try:
                yield
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                self._next_seq, self._total = start_seq, start_total
                if isinstance(exc, sqlite3.OperationalError) and _is_full(exc):
                    raise StoreFull(f"{self.path}: disk full; batch NOT stored, earlier records intact ({exc})") from None
                raise
            finally:
                self._batch_depth = 0
        self._flush_audit()

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # no transaction was open

    # -- capacity ----------------------------------------------------------------
    def _disk_short(self, incoming: int) -> int:
        """Bytes to free so that, after this insert, the file system keeps
        `min_free_bytes` (pages SQLite already freed count as available)."""
        reserve = int(getattr(self.cfg, "min_free_bytes", 0) or 0)
        if not reserve:
            return 0
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return 0
        free_pages, page_size = (
            self._db.execute("PRAGMA freelist_count").fetchone()[0],
            self._db.execute("PRAGMA page_size").fetchone()[0],
        )
        available = st.f_bavail * st.f_frsize + free_pages * page_size
        return max(0, reserve - (available - 2 * incoming))  # WAL + page copy of the insert

    def _make_room(self, incoming: int, kind: str) -> None:
        """Capacity may cost a plain read its text (the policy's last step); the
        free-space reserve only ever takes delivered parts and images: when the
        disk is full for other reasons the new record is refused instead
        (StoreFull), and nothing already stored is lost."""
        need_cap = self._total + incoming - self.cfg.capacity_bytes
        need_disk = self._disk_short(incoming)
        if need_cap <= 0 and need_disk <= 0:
            return
        steps = [
            ("store.purge_delivered_early", "state=1", None),
            ("store.evict", "state=0 AND kind='read' AND part=2", "vehicle_jpeg"),
            ("store.evict", "state=0 AND kind='read' AND part=1", "plate_jpeg"),
            ("store.evict", "state=0 AND kind='read' AND part=0", "text"),
        ]
        for action, where, part in steps:
            while True:
                need = need_cap if part == "text" else max(need_cap, need_disk)
                if need <= 0:
                    break
                reason = "capacity" if need_cap > 0 else "disk_reserve"
                victims = self._db.execute(
                    f"SELECT rowid, seq, part, id, bytes FROM parts WHERE {where} ORDER BY seq LIMIT 256"
                ).fetchall()
                if not victims:
                    break
                chosen, freed = [], 0
                for v in victims:
                    chosen.append(v)
                    freed += v[4]
                    if freed >= need:
                        break
                self._delete_rows([v[0] for v in chosen], evicted=part is not None)
                need_cap -= freed
                need_disk -= freed
                detail: dict[str, Any] = {
                    "reason": reason,
                    "capacity_bytes": self.cfg.capacity_bytes,
                    "bytes_freed": freed,
                    "parts": [{"id": v[3], "seq": v[1], "part": PART_NAMES[v[2]]} for v in chosen],
                }
                if part is not None:
                    log.warning("outbox %s: evicted %d %s part(s)", reason, len(chosen), part)
                self._queue_audit(action, detail)
        if need_cap > 0:
            log.error("outbox over capacity by %d bytes with only alerts/audit left; storing the %s anyway",
                      need_cap, kind)
        elif need_disk > 0:
            log.warning("free space below store.min_free_bytes with no image left to drop; trying the %s", kind)

    def _delete_rows(self, rowids: list[int], evicted: bool) -> None:
        db = self._db
        freed = 0
        nested = db.in_transaction
        if not nested:
            db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in _chunks(rowids, 500):
                marks = ",".join("?" * len(chunk))
                freed += db.execute(f"SELECT coalesce(sum(bytes),0) FROM parts WHERE rowid IN ({marks})", chunk).fetchone()[0]
                db.execute(f"DELETE FROM parts WHERE rowid IN ({marks})", chunk)
            if evicted:
                db.execute("UPDATE meta SET value=value+? WHERE key='evicted_parts'", (len(rowids),))
            if not nested:
                db.execute("COMMIT")
        except sqlite3.Error:
            if not nested:
                self._rollback()
            raise
        self._total -= int(freed)

    # -- audit callback ------------------------------------------------------------
    def _queue_audit(self, action: str, detail: dict[str, Any]) -> None:
        self._pending_audit.append((action, detail))

    def _flush_audit(self) -> None:
        """Call the audit callback outside the lock (it may add an audit record)."""
        while self._pending_audit:
            action, detail = self._pending_audit.pop(0)
            if self._audit is None:
                log.info("audit (no callback): %s %s", action, detail)
                continue
            try:
                self._audit(action, detail)
            except Exception:  # noqa: BLE001 - auditing must not stop the store
                log.exception("audit callback failed for %s", action)

    # -- the uplink's side -------------------------------------------------------------
    def pending(self, limit: int, exclude: Iterable[tuple[int, int]] = (), lane: int | None = None) -> list[OutboxItem]:
        """Next parts to send: text before images, alerts before audit before reads,
        then by sequence. `exclude` holds keys already in flight."""
        skip = set(exclude)
        chosen: list[tuple[int, int, int, str, str, int]] = []
        lanes = (0, 1) if lane is None else (lane,)
        with self._lock:
            # keys first (from the index), blobs only for what will be sent
            for ln in lanes:
                cur = self._db.execute(
                    "SELECT rowid, seq, part, id, kind, priority FROM parts WHERE state=0 AND lane=? "
                    "ORDER BY priority, seq, part LIMIT ?",
                    (ln, limit + len(skip)),
                )
                for row in cur:
                    if (row[1], row[2]) in skip:
                        continue
                    chosen.append(row)
                    if len(chosen) >= limit:
                        break
                if len(chosen) >= limit:
                    break
            out = []
            for rowid, seq, part, rid, kind, pr in chosen:
                blob = self._db.execute("SELECT data FROM parts WHERE rowid=?", (rowid,)).fetchone()
                if blob is not None:
                    out.append(OutboxItem(seq, PART_NAMES[part], rid, kind, pr, blob[0]))
        return out

    def mark_delivered(self, acks: Iterable[tuple[str, str]]) -> int:
        """Mark (record id, part name) pairs delivered; returns how many changed."""
        now = time.time()
        rows = [(now, rid, PART_NO[p]) for rid, p in acks if p in PART_NO]
        if not rows:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany("UPDATE parts INDEXED BY parts_id SET state=1, delivered_at=? WHERE id=? AND part=? AND state=0", rows)
                changed = db.total_changes - before
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if _is_full(exc):
                    log.error("disk full while marking %d parts delivered; they will be sent again", len(rows))
                    return 0
                raise
        return changed

    def key_of(self, record_id: str, part: str) -> tuple[int, int] | None:
        with self._lock:
            row = self._db.execute("SELECT seq FROM parts WHERE id=? LIMIT 1", (record_id,)).fetchone()
        return (row[0], PART_NO[part]) if row and part in PART_NO else None

    # -- retention -------------------------------------------------------------------------
    def maintain(self, now: float | None = None) -> dict[str, int]:
        """Purge delivered parts after the grace period and undelivered ones past
        the maximum age (audited). Call every few minutes."""
        now = time.time() if now is None else now
        grace = now - self.cfg.delivered_grace_hours * 3600
        oldest = now - self.cfg.undelivered_max_age_days * 86400
        with self._lock:
            delivered = [
                r[0] for r in self._db.execute("SELECT rowid FROM parts WHERE state=1 AND delivered_at < ?", (grace,))
            ]
            if delivered:
                self._delete_rows(delivered, evicted=False)
            expired = self._db.execute(
                "SELECT rowid, seq, part, id, kind FROM parts WHERE state=0 AND created < ?", (oldest,)
            ).fetchall()
            if expired:
                self._delete_rows([r[0] for r in expired], evicted=False)
                self._queue_audit(
                    "store.expire_undelivered",
                    {
                        "reason": "max_age",
                        "max_age_days": self.cfg.undelivered_max_age_days,
                        "parts": [{"id": r[3], "seq": r[1], "part": PART_NAMES[r[2]], "kind": r[4]} for r in expired],
                    },
                )
        self._flush_audit()
        return {"purged_delivered": len(delivered), "expired_undelivered": len(expired)}

    def purge_delivered(self) -> int:
        """Delete every delivered part now, ignoring the grace period (end of a
        special event, or an operator's purge); undelivered parts are untouched."""
        with self._lock:
            rows = [r[0] for r in self._db.execute("SELECT rowid FROM parts WHERE state=1")]
            if rows:
                self._delete_rows(rows, evicted=False)
        return len(rows)

    # -- figures ------------------------------------------------------------------------------
    def backlog(self, now: float | None = None) -> dict[str, Any]:
        """Backlog for telemetry: undelivered records/bytes, oldest age, alerts."""
        now = time.time() if now is None else now
        with self._lock:
            n, nbytes, oldest, alerts = self._db.execute(
                "SELECT count(DISTINCT seq), coalesce(sum(bytes),0), min(created), "
                "count(DISTINCT CASE WHEN kind='alert' THEN seq END) FROM parts WHERE state=0"
            ).fetchone()
            evicted = self._db.execute("SELECT value FROM meta WHERE key='evicted_parts'").fetchone()[0]
        return {
            "backlog_records": int(n),
            "backlog_bytes": int(nbytes),
            "backlog_oldest_age_s": round(now - oldest, 1) if oldest else 0.0,
            "backlog_alerts": int(alerts),
            "store_bytes": self._total,
            "store_capacity_bytes": int(self.cfg.capacity_bytes),
            "evicted_parts": int(evicted),
            "next_seq": self._next_seq,
        }

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_full(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "full" in msg or "no space" in msg or getattr(exc, "sqlite_errorcode", None) == 13


def _chunks(items: list[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
