"""Append-only, hash-chained, device-signed audit log of every access and policy event.

Civil Code 1798.90.52 requires a record of every access to ALPR data
(name, date, time, purpose); the department's policy extends it to settings.
Each line is canonical JSON holding a sequence number, the SHA-256 of the
previous line and an Ed25519 signature by the device key, so an edit,
deletion, insertion or reordering anywhere breaks verification, and
re-serialising each line byte-for-byte catches even a changed byte of
whitespace or hex case. A signed head file records the last entry so that
cutting entries off the end is caught too; the mirror to the department on
the `audit` topic is the copy a local attacker cannot reach.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)
GENESIS = "0" * 64
FIELDS = ("seq", "time", "actor", "action", "purpose", "case", "detail", "prev", "sig")
MAX_DETAIL_CHARS = 4096


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...
    def public_key(self) -> Ed25519PublicKey: ...


class AuditError(Exception):
    """The audit log cannot be written; callers must refuse the access it would record."""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "errors": self.errors}


class AuditLog:
    def __init__(
        self,
        path: Path | str,
        signer: Signer,
        mirror: Callable[[dict[str, Any]], Any] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.signer = signer
        self.mirror = mirror
        self.clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        actor: str,
        action: str,
        purpose: str | None = None,
        case: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one signed entry and mirror it; AuditError if it cannot be written."""
        # any value becomes JSON (paths, times: their text), so a caller's odd detail never loses the entry
        detail_json = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
        if len(detail_json) > MAX_DETAIL_CHARS:
            detail_json = _canonical({"truncated": detail_json[:MAX_DETAIL_CHARS]})
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise AuditError(f"cannot open audit log {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # the CLI and the service may both write
                seq, prev = self._tail(fd)
                entry: dict[str, Any] = {
                    "seq": seq + 1,
                    "time": self.clock().astimezone(timezone.utc).isoformat(timespec="microseconds"),
                    "actor": str(actor)[:128],
                    "action": str(action)[:128],
                    "purpose": None if purpose is None else str(purpose)[:128],
                    "case": None if case is None else str(case)[:128],
                    "detail": json.loads(detail_json),
                    "prev": prev,
                }
                entry["sig"] = self.signer.sign(_canonical(entry).encode()).hex()
                line = _canonical(entry).encode()
                os.write(fd, line + b"\n")
                os.fsync(fd)
                self._write_head(entry["seq"], hashlib.sha256(line).hexdigest())
            except OSError as exc:
                raise AuditError(f"cannot write audit log {self.path}: {exc.strerror}") from None
            finally:
                os.close(fd)
        if self.mirror is not None:
            try:
                self.mirror(entry)
            except Exception:  # the local chain is the record; the mirror catches up from it
                log.exception("audit mirror failed for entry %s", entry["seq"])
        return entry

    def _tail(self, fd: int) -> tuple[int, str]:
        """(last seq, hash of last line) read from the file itself, so other writers are seen."""
        size = os.lseek(fd, 0, os.SEEK_END)
        if size == 0:
            return 0, GENESIS
        chunk, pos, buf = 8192, size, b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            buf = os.pread(fd, step, pos) + buf
            if buf.count(b"\n") >= 2 or pos == 0:
                break
        lines = buf.rstrip(b"\n").split(b"\n")
        last = lines[-1]
        try:
            seq = int(json.loads(last)["seq"])
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"audit log {self.path} ends in a damaged entry; run `polewatch audit verify`")
        return seq, hashlib.sha256(last).hexdigest()

    def _write_head(self, seq: int, digest: str) -> None:
        head = {"seq": seq, "hash": digest}
        head["sig"] = self.signer.sign(_canonical(head).encode()).hex()
        tmp = self.head_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(_canonical(head) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.head_path)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Entries as written (unverified; call verify first when it matters)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except (ValueError, RecursionError):
                    continue

    def verify(self, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
        return verify_log(self.path, public_key or self.signer.public_key(), self.head_path)


def verify_log(path: Path | str, public_key: Ed25519PublicKey, head_path: Path | str | None = None) -> VerifyResult:
    """Check every line: exact canonical bytes, sequence, chain and signature; then the head."""
    path = Path(path)
    head_path = Path(head_path) if head_path else path.with_name(path.name + ".head")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        return VerifyResult(False, 0, [f"cannot read {path}: {exc.strerror}"])
    errors: list[str] = []
    if data and not data.endswith(b"\n"):
        errors.append("log does not end with a newline: last entry cut or altered")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    prev, n = GENESIS, 0
    for i, line in enumerate(lines, 1):
        n = i
        problem = _check_line(line, i, prev, public_key)
        if problem:
            errors.append(f"line {i}: {problem}")
        prev = hashlib.sha256(line).hexdigest()
    errors += _check_head(head_path, n, prev, public_key)
    return VerifyResult(not errors, n, errors)


def _check_line(line: bytes, seq: int, prev: str, key: Ed25519PublicKey) -> str | None:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd numbers
        return "not valid JSON (edited or damaged)"
    if not isinstance(entry, dict) or tuple(sorted(entry)) != tuple(sorted(FIELDS)):
        return "fields are not those of an audit entry"
    if _canonical(entry).encode() != line:
        return "bytes differ from the signed form (edited)"
    if entry["seq"] != seq:
        return f"sequence {entry['seq']!r} where {seq} was expected (deleted, inserted or reordered)"
    if entry["prev"] != prev:
        return "previous-entry hash does not match (deleted, inserted or reordered)"
    sig = entry.pop("sig")
    try:
        key.verify(_sig_bytes(sig), _canonical(entry).encode())
    except (InvalidSignature, ValueError, TypeError):
        return "signature does not verify with the device key (edited or forged)"
    return None


def _sig_bytes(sig: object) -> bytes:
    """Exactly 128 lower-case hex digits: bytes.fromhex alone would accept 'A' for 'a'."""
    if not isinstance(sig, str) or len(sig) != 128 or sig.strip("0123456789abcdef"):
        raise ValueError("signature is not 128 lower-case hex digits")
    return bytes.fromhex(sig)


def _check_head(head_path: Path, n: int, last_hash: str, key: Ed25519PublicKey) -> list[str]:
    try:
        raw = head_path.read_bytes()
    except FileNotFoundError:
        return [] if n == 0 else [f"head file {head_path.name} is missing"]
    try:
        head = json.loads(raw)
        if (_canonical(head) + "\n").encode() != raw:
            raise ValueError("not in signed form")
        key.verify(_sig_bytes(head.pop("sig")), _canonical(head).encode())
    except (ValueError, RecursionError, InvalidSignature, TypeError, KeyError, AttributeError):
        return [f"head file {head_path.name} is damaged or not signed by the device"]
    if head.get("seq") != n:
        return [f"head says {head.get('seq')} entries, log has {n} (entries cut off or added)"]
    if head.get("hash") != last_hash:
        return ["head hash does not match the last entry"]
    return []
