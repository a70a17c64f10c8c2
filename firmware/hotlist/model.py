"""Hot lists as the department signs them: versioned, expiring, one purpose per entry.

A list is refused whole when its envelope, signature, version or dates are
wrong; an entry is refused alone (and reported, so the caller can audit it)
when its pattern, purpose, case number or expiry is wrong. Entries whose
purpose the policy does not allow never reach the matcher.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.envelope import EnvelopeError, iso, open_envelope, parse_time, seal
from firmware.purposes import HOTLIST_PURPOSES, PurposeRefused, check_hotlist_purpose

FORMAT = "polewatch-hotlist/1"
MAX_ENTRIES = 1_000_000
MIN_LITERALS_PARTIAL = 3  # a partial plate must pin down at least this many characters
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PATTERN = re.compile(r"^[A-Z0-9?*]{1,10}$")
_CASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _./:#-]{0,63}$")
_STRIP = str.maketrans("", "", " -·.")


class HotlistError(ValueError):
    """A hot list refused as a whole; the message says why."""


def normalise_pattern(raw: str) -> str:
    """Upper case without spaces or dashes, collapse runs of `*`."""
    p = raw.upper().translate(_STRIP)
    return re.sub(r"\*+", "*", p)


@dataclass(frozen=True, slots=True)
class Entry:
    pattern: str  # normalised: A-Z 0-9, `?` one character, `*` any run
    purpose: str
    case: str
    expires: datetime
    list_name: str = ""
    list_version: int = 0

    @property
    def partial(self) -> bool:
        return "?" in self.pattern or "*" in self.pattern


@dataclass(frozen=True, slots=True)
class Refusal:
    """One entry the device would not load, with the reason for the audit log."""

    index: int
    purpose: str | None
    case: str | None
    reason: str


@dataclass(slots=True)
class HotList:
    name: str
    version: int
    agency: str
    issued: datetime
    expires: datetime
    entries: list[Entry]
    refused: list[Refusal] = field(default_factory=list)
    expired_entries: int = 0

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def summary(self) -> dict[str, Any]:
        """What IT may see: no plate data."""
        by_purpose: dict[str, int] = {}
        for e in self.entries:
            by_purpose[e.purpose] = by_purpose.get(e.purpose, 0) + 1
        return {
            "name": self.name,
            "version": self.version,
            "agency": self.agency,
            "issued": iso(self.issued),
            "expires": iso(self.expires),
            "entries": len(self.entries),
            "partial_entries": sum(e.partial for e in self.entries),
            "by_purpose": by_purpose,
            "refused_entries": len(self.refused),
            "expired_entries": self.expired_entries,
        }


def parse_entry(raw: object, index: int, list_expires: datetime, now: datetime) -> Entry:
    """Validate one entry; raise ValueError (PurposeRefused for a purpose) naming the field."""
    if not isinstance(raw, dict):
        raise ValueError(f"entry {index}: must be an object")
    extra = sorted(set(raw) - {"pattern", "purpose", "case", "expires"})
    if extra:
        raise ValueError(f"entry {index}: unknown fields {extra}")
    purpose = raw.get("purpose")
    try:
        check_hotlist_purpose(purpose)
    except PurposeRefused as exc:
        raise PurposeRefused(f"entry {index}: {exc}") from None
    pat = raw.get("pattern")
    if not isinstance(pat, str):
        raise ValueError(f"entry {index}: pattern must be a string")
    pattern = normalise_pattern(pat)
    if not _PATTERN.match(pattern):
        raise ValueError(f"entry {index}: pattern {pat[:20]!r} must be 1-10 of A-Z, 0-9, ? and *")
    literals = sum(ch not in "?*" for ch in pattern)
    if ("?" in pattern or "*" in pattern) and literals < MIN_LITERALS_PARTIAL:
        raise ValueError(
            f"entry {index}: partial pattern {pattern!r} has {literals} known characters; "
            f"at least {MIN_LITERALS_PARTIAL} are needed"
        )
    if literals < 2:
        raise ValueError(f"entry {index}: pattern {pattern!r} is too short")
    case = raw.get("case")
    if not isinstance(case, str) or not _CASE.match(case):
        raise ValueError(f"entry {index}: case must be a case or reference number (1-64 characters)")
    try:
        expires = parse_time(raw.get("expires"), f"entry {index}: expires")
    except EnvelopeError as exc:
        raise ValueError(str(exc)) from None
    return Entry(pattern=pattern, purpose=purpose, case=case, expires=min(expires, list_expires))


def parse_hotlist(payload: Mapping[str, Any], now: datetime) -> HotList:
    """Build a HotList from a verified payload; refuse the whole list on list-level faults."""
    extra = sorted(set(payload) - {"list", "version", "agency", "issued", "expires", "entries"})
    if extra:
        raise HotlistError(f"hot list has unknown fields {extra}")
    name = payload.get("list")
    if not isinstance(name, str) or not _NAME.match(name):
        raise HotlistError("list: name must be 1-64 of letters, digits, _ . -")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**53:
        raise HotlistError(f"version: {version!r} must be a positive integer")
    agency = payload.get("agency")
    if not isinstance(agency, str) or not _NAME.match(agency):
        raise HotlistError("agency: must be 1-64 of letters, digits, _ . -")
    try:
        issued = parse_time(payload.get("issued"), "issued")
        expires = parse_time(payload.get("expires"), "expires")
    except EnvelopeError as exc:
        raise HotlistError(str(exc)) from None
    if expires <= issued:
        raise HotlistError("expires must be after issued")
    if now >= expires:
        raise HotlistError(f"hot list {name} v{version} expired at {iso(expires)}")
    raw_entries = payload.get("entries")
    if not isinstance(raw_entries, list):
        raise HotlistError("entries: must be a list")
    if len(raw_entries) > MAX_ENTRIES:
        raise HotlistError(f"entries: {len(raw_entries)} is over the {MAX_ENTRIES} limit")
    hl = HotList(name, version, agency, issued, expires, [])
    for i, raw in enumerate(raw_entries):
        try:
            e = parse_entry(raw, i, expires, now)
        except ValueError as exc:
            purpose = raw.get("purpose") if isinstance(raw, dict) else None
            case = raw.get("case") if isinstance(raw, dict) else None
            hl.refused.append(
                Refusal(i, str(purpose)[:64] if purpose is not None else None,
                        str(case)[:64] if case is not None else None, str(exc))
            )
            continue
        if e.expires <= now:
            hl.expired_entries += 1
            continue
        hl.entries.append(
            Entry(e.pattern, e.purpose, e.case, e.expires, list_name=name, list_version=version)
        )
    return hl


MAX_LIST_BYTES = 64 * 1024 * 1024


def unwrap(data: bytes) -> bytes:
    """A list may travel gzip-compressed (100,000 entries: ~12 MB of JSON, ~1 MB gzipped, under
    the broker's message limit). The signature covers the JSON inside, so compression is transport
    only; decompression is capped so a small bomb cannot fill memory."""
    import zlib

    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:2]) == b"\x1f\x8b":
        return data
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(bytes(data), MAX_LIST_BYTES + 1)
    except zlib.error as exc:
        raise HotlistError(f"hot list refused: damaged gzip data ({exc})") from None
    if len(out) > MAX_LIST_BYTES or d.unconsumed_tail:
        raise HotlistError(f"hot list refused: over {MAX_LIST_BYTES} bytes when decompressed")
    if not d.eof:
        raise HotlistError("hot list refused: gzip data is truncated")
    return out


def verify_hotlist(data: bytes, trusted: Mapping[str, Ed25519PublicKey], now: datetime) -> HotList:
    """Verify the department's signature and parse; HotlistError on any list-level fault."""
    try:
        payload = open_envelope(unwrap(data), trusted, FORMAT, MAX_LIST_BYTES)
    except EnvelopeError as exc:
        raise HotlistError(f"hot list refused: {exc}") from None
    return parse_hotlist(payload, now)


def sign_hotlist(
    key: Ed25519PrivateKey,
    name: str,
    version: int,
    agency: str,
    issued: datetime,
    expires: datetime,
    entries: list[dict[str, Any]],
) -> bytes:
    """The department's side: sign a list (used by `polewatch hotlist sign` and tests)."""
    payload = {
        "list": name,
        "version": version,
        "agency": agency,
        "issued": iso(issued),
        "expires": iso(expires),
        "entries": entries,
    }
    return seal(payload, key, FORMAT)


PURPOSE_TEXT = HOTLIST_PURPOSES
