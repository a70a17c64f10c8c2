"""The device's hot lists: install signed lists, keep them encrypted at rest, match reads.

`HotlistManager` is the one class the app uses. It accepts a list from the
retained `hotlist` topic or a remote command, checks the department's
signature, refuses a version older than the installed one (no rollback to a
list that still carried since-cleared plates), audits every refused entry,
writes the signed bytes AES-256-GCM encrypted under a key derived from the
device key, and rebuilds the matcher. At start it decrypts and re-verifies
what it stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware.hotlist.match import DEFAULT_CONFUSIONS, Hit, Matcher
from firmware.hotlist.model import HotList, HotlistError, verify_hotlist

log = logging.getLogger(__name__)
_MAGIC = b"PWHL1\n"
INDIVIDUAL, BATCH = 50, 25
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

TrustedKeys = Mapping[str, Ed25519PublicKey] | Callable[[], Mapping[str, Ed25519PublicKey]]


class Auditor(Protocol):
    def record(self, actor: str, action: str, purpose: str | None = None, case: str | None = None,
               detail: dict[str, Any] | None = None) -> Any: ...


def storage_key(device_key: Ed25519PrivateKey) -> bytes:
    """AES-256 key for hot lists at rest, derived from the device key (no second secret to lose)."""
    raw = device_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"polewatch hotlist at rest v1").derive(raw)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class HotlistManager:
    def __init__(
        self,
        directory: Path | str,
        key: bytes,
        trusted: TrustedKeys,
        audit: Auditor | None = None,
        max_edit_distance: int = 1,
        partial_edit_distance: int = 0,
        confusions: Sequence[str] = DEFAULT_CONFUSIONS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if len(key) != 32:
            raise ValueError("hot-list storage key must be 32 bytes")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._aead = AESGCM(key)
        self._trusted = trusted
        self.audit = audit
        self._k, self._kp, self._conf = max_edit_distance, partial_edit_distance, tuple(confusions)
        self.clock = clock
        self._lock = threading.Lock()
        self.lists: dict[str, HotList] = {}
        self._digests: dict[str, str] = {}
        self._matcher = Matcher([], self._k, self._conf, self._kp)

    # -- trust and storage -------------------------------------------------
    def trusted(self) -> Mapping[str, Ed25519PublicKey]:
        return self._trusted() if callable(self._trusted) else self._trusted

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.hotlist.enc"

    def _write(self, name: str, data: bytes) -> None:
        nonce = os.urandom(12)
        blob = _MAGIC + nonce + self._aead.encrypt(nonce, data, name.encode())
        tmp = self._path(name).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(name))

    def _read(self, path: Path, name: str) -> bytes:
        blob = path.read_bytes()
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 28:
            raise HotlistError(f"{path.name}: not an encrypted hot list")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + 12]
        try:
            return self._aead.decrypt(nonce, blob[len(_MAGIC) + 12 :], name.encode())
        except InvalidTag:
            raise HotlistError(f"{path.name}: cannot decrypt (wrong device key or tampered file)") from None

    def load(self) -> list[str]:
        """Decrypt and re-verify stored lists at start; returns problems (each audited), loads the rest."""
        problems = []
        now = self.clock()
        for path in sorted(self.dir.glob("*.hotlist.enc")):
            name = path.name[: -len(".hotlist.enc")]
            try:
                data = self._read(path, name)
                hl = verify_hotlist(data, self.trusted(), now)
                if hl.name != name:
                    raise HotlistError(f"{path.name}: holds list {hl.name!r}")
            except (HotlistError, OSError) as exc:
                problems.append(str(exc))
                self._audit("hotlist_load_refused", detail={"file": path.name, "error": str(exc)})
                continue
            self.lists[name] = hl
            self._digests[name] = hashlib.sha256(data).hexdigest()
        self._rebuild()
        return problems

    # -- changes -----------------------------------------------------------
    def install(self, data: bytes, actor: str = "department", source: str = "hotlist") -> dict[str, Any]:
        """Verify, store and activate a signed list; HotlistError (audited) when refused.

        One install at a time (topic and command may race): the version check and
        the write happen under one lock. Matching is never blocked: it reads the
        current matcher, which is swapped in whole.
        """
        with self._lock:
            now = self.clock()
            digest = hashlib.sha256(data).hexdigest() if isinstance(data, (bytes, bytearray)) else ""
            try:
                hl = verify_hotlist(data, self.trusted(), now)
                cur = self.lists.get(hl.name)
                if cur is not None and self._digests.get(hl.name) == digest:
                    return {"list": hl.name, "version": hl.version, "changed": False}
                if cur is not None and hl.version <= cur.version:
                    raise HotlistError(
                        f"hot list {hl.name} v{hl.version} refused: v{cur.version} is installed (no rollback)"
                    )
            except HotlistError as exc:
                self._audit("hotlist_refused", actor, detail={"source": source, "error": str(exc)[:500]})
                raise
            # audited before it takes effect: no audit record, no change
            self._audit_refused(hl, actor)
            summary = hl.summary()
            self._audit("hotlist_installed", actor, detail={"source": source, **summary})
            try:
                self._write(hl.name, bytes(data))
            except OSError as exc:
                self._audit("hotlist_install_failed", actor, detail={"list": hl.name, "error": str(exc)[:300]})
                raise HotlistError(f"hot list {hl.name} v{hl.version} not stored: {exc.strerror}") from None
            self.lists[hl.name] = hl
            self._digests[hl.name] = digest
            self._rebuild()
        return {"list": hl.name, "version": hl.version, "changed": True, **summary}

    def _audit_refused(self, hl: HotList, actor: str) -> None:
        """One audit entry per refused entry (purpose and case in their own fields); past the
        first INDIVIDUAL, batches of BATCH, so a huge bad list cannot stall the device on fsyncs."""
        head, rest = hl.refused[:INDIVIDUAL], hl.refused[INDIVIDUAL:]
        for r in head:
            self._audit("hotlist_entry_refused", actor, r.purpose, r.case,
                        {"list": hl.name, "version": hl.version, "entry": r.index, "error": r.reason[:300]})
        for i in range(0, len(rest), BATCH):
            batch = rest[i : i + BATCH]
            self._audit("hotlist_entries_refused", actor, detail={
                "list": hl.name, "version": hl.version,
                "entries": [[r.index, r.purpose, r.case, r.reason[:60]] for r in batch]})

    def remove(self, name: str, actor: str = "device", reason: str = "") -> bool:
        """Drop a list (end of a special event); the encrypted file is deleted too."""
        if not _SAFE.match(name):
            raise HotlistError(f"bad list name {name[:64]!r}")
        with self._lock:
            found = name in self.lists
            if found:
                self._audit("hotlist_removed", actor, detail={"list": name, "reason": reason})
            self.lists.pop(name, None)
            self._digests.pop(name, None)
            self._path(name).unlink(missing_ok=True)
            self._rebuild()
        return found

    def on_message(self, payload: bytes) -> bytes | None:
        """Handler for the retained `hotlist` topic: refusals are audited and logged, never raised."""
        try:
            self.install(payload, source="hotlist topic")
        except HotlistError as exc:
            log.warning("hot list from broker refused: %s", exc)
        except Exception:  # e.g. the audit log cannot be written: keep the old list, say why
            log.exception("hot list from broker not installed")
        return None

    def _rebuild(self) -> None:
        entries = [e for hl in self.lists.values() for e in hl.entries]
        self._matcher = Matcher(entries, self._k, self._conf, self._kp)

    # -- use ---------------------------------------------------------------
    def match(self, candidates: Sequence[tuple[str, float]], now: datetime | None = None) -> list[Hit]:
        """Hits for one read's candidates; entries and lists past their expiry never hit."""
        return self._matcher.match(candidates, now or self.clock())

    def status(self) -> dict[str, Any]:
        """Versions and counts for telemetry and `fleet status`: no plate data."""
        now = self.clock()
        return {
            "lists": [dict(hl.summary(), expired=hl.expired(now)) for hl in self.lists.values()],
            "active_entries": len(self._matcher),
        }

    def _audit(self, action: str, actor: str = "device", purpose: str | None = None,
               case: str | None = None, detail: dict[str, Any] | None = None) -> None:
        if self.audit is not None:
            self.audit.record(actor, action, purpose=purpose, case=case, detail=detail)
        else:
            log.info("%s %s", action, json.dumps(detail, default=str)[:500])
