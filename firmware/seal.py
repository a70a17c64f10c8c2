"""Sealed records: encrypted to the department, signed by the device.

Construction (an HPKE-style base mode built from `cryptography` primitives,
RFC 9180 is not yet in the library): per record one ephemeral X25519 key
pair; shared secret with the department's public key for the current key
id; per part a 256-bit key from HKDF-SHA256 (salt = ephemeral public key ||
recipient public key, info = "polewatch/seal/v1/<part>"); ChaCha20-Poly1305
with a zero nonce (each key seals exactly one message) and the clear header
as associated data. The ephemeral private key is discarded, so the device
holds nothing that opens its own records.

A record has up to three parts, each its own envelope, so the store can drop
a vehicle image before a plate crop before the text (eviction) and the uplink
can send text first on a thin link, all without opening anything:

    text          the closed-schema record, signed (Ed25519) by the device;
                  it carries the SHA-256 of each image envelope
    plate_jpeg    plate crop, bound to the text by that digest
    vehicle_jpeg  vehicle image, likewise

Envelope bytes: b"PWS1" | u16 header length | header JSON | ciphertext
[| 64-byte signature over all before it, text part only]. The header is
clear routing data only: version, device, id, seq, kind, part, kid, epk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"PWS1"
SIG_LEN = 64
NONCE = b"\x00" * 12
PARTS = ("text", "plate_jpeg", "vehicle_jpeg")
IMAGE_PARTS = ("plate_jpeg", "vehicle_jpeg")
KINDS = ("read", "alert", "audit")
CLETS_NOTICE = (
    "Hot-list hit: verify the plate and the hot-list entry via CLETS before any enforcement action."
)
MAX_AUDIT_ENTRY_BYTES = 64 * 1024

HEADER_KEYS = {"v", "dev", "id", "seq", "kind", "part", "kid", "epk"}
READ_KEYS = {
    "id", "device", "seq", "kind", "capture_time", "clock_synced", "location",
    "plate", "confidence", "candidates", "images",
}
ALERT_KEYS = READ_KEYS | {"hit"}
AUDIT_KEYS = {"id", "device", "seq", "kind", "entry"}
LOCATION_KEYS = {"latitude", "longitude", "description"}
CANDIDATE_KEYS = {"plate", "confidence"}
HIT_REQUIRED = {"pattern", "purpose", "match"}
HIT_KEYS = HIT_REQUIRED | {"case", "quality", "list", "notice"}
IMAGE_REF_KEYS = {"bytes", "sha256"}


class SealError(Exception):
    """A record that cannot be sealed or an envelope that cannot be trusted."""


class SchemaError(SealError):
    """A record outside the closed schema (unknown, missing or mistyped field)."""


# -- schema ------------------------------------------------------------------------


def _keys(obj: Any, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise SchemaError(f"{where}: expected an object")
    unknown = set(obj) - allowed
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {sorted(unknown)} (the sealed schema is closed)")
    missing = required - set(obj)
    if missing:
        raise SchemaError(f"{where}: missing field(s) {sorted(missing)}")


def _num(v: Any, where: str, lo: float | None = None, hi: float | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SchemaError(f"{where}: expected a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SchemaError(f"{where}: {v!r} outside [{lo}, {hi}]")


def _str(v: Any, where: str, max_len: int = 256, optional: bool = False) -> None:
    if v is None and optional:
        return
    if not isinstance(v, str) or len(v) > max_len:
        raise SchemaError(f"{where}: expected a string of at most {max_len} characters")


def check_record(rec: dict[str, Any]) -> None:
    """Refuse anything outside the closed schema for its kind."""
    kind = rec.get("kind") if isinstance(rec, dict) else None
    if kind not in KINDS:
        raise SchemaError(f"kind: expected one of {KINDS}, got {kind!r}")
    allowed = {"read": READ_KEYS, "alert": ALERT_KEYS, "audit": AUDIT_KEYS}[kind]
    _keys(rec, allowed, allowed, kind)
    _str(rec["id"], "id", 36)
    _str(rec["device"], "device", 64)
    if isinstance(rec["seq"], bool) or not isinstance(rec["seq"], int) or rec["seq"] < 1:
        raise SchemaError("seq: expected a positive integer")
    if kind == "audit":
        entry = rec["entry"]
        if not isinstance(entry, dict):
            raise SchemaError("entry: expected an object")
        if len(json.dumps(entry, default=str)) > MAX_AUDIT_ENTRY_BYTES:
            raise SchemaError(f"entry: larger than {MAX_AUDIT_ENTRY_BYTES} bytes")
        return
    _str(rec["capture_time"], "capture_time", 40)
    try:
        t = datetime.fromisoformat(rec["capture_time"])
    except ValueError:
        raise SchemaError("capture_time: not an ISO 8601 time") from None
    if t.utcoffset() is None or t.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise SchemaError("capture_time: must be UTC")
    if not isinstance(rec["clock_synced"], bool):
        raise SchemaError("clock_synced: expected true or false")
    loc = rec["location"]
    _keys(loc, LOCATION_KEYS, LOCATION_KEYS, "location")
    _num(loc["latitude"], "location.latitude", -90, 90)
    _num(loc["longitude"], "location.longitude", -180, 180)
    _str(loc["description"], "location.description", 512)
    _str(rec["plate"], "plate", 16)
    _num(rec["confidence"], "confidence", 0, 1)
    if not isinstance(rec["candidates"], list) or len(rec["candidates"]) > 50:
        raise SchemaError("candidates: expected a list of at most 50")
    for i, c in enumerate(rec["candidates"]):
        _keys(c, CANDIDATE_KEYS, CANDIDATE_KEYS, f"candidates[{i}]")
        _str(c["plate"], f"candidates[{i}].plate", 16)
        _num(c["confidence"], f"candidates[{i}].confidence", 0, 1)
    imgs = rec["images"]
    _keys(imgs, set(IMAGE_PARTS), set(), "images")
    for name, ref in imgs.items():
        if ref is None:
            continue
        _keys(ref, IMAGE_REF_KEYS, IMAGE_REF_KEYS, f"images.{name}")
        if not isinstance(ref["bytes"], int) or ref["bytes"] < 0:
            raise SchemaError(f"images.{name}.bytes: expected a size")
        _str(ref["sha256"], f"images.{name}.sha256", 64)
    if kind == "alert":
        hit = rec["hit"]
        _keys(hit, HIT_KEYS, HIT_REQUIRED | {"notice"}, "hit")
        _str(hit["pattern"], "hit.pattern", 32)
        _str(hit["purpose"], "hit.purpose", 64)
        _str(hit["match"], "hit.match", 32)
        _str(hit.get("case"), "hit.case", 64, optional=True)
        _str(hit.get("list"), "hit.list", 128, optional=True)
        _str(hit["notice"], "hit.notice", 512)
        if hit.get("quality") is not None:
            _num(hit["quality"], "hit.quality", 0, 1)


def normalise_hit(hit: dict[str, Any]) -> dict[str, Any]:
    """The hit as sealed: the closed hit schema, with the CLETS notice added."""
    out = dict(hit)
    out.setdefault("notice", CLETS_NOTICE)
    out.setdefault("case", None)
    out.setdefault("quality", None)
    out.setdefault("list", None)
    return out


def utc_iso(t: datetime) -> str:
    if t.tzinfo is None:
        raise SchemaError("capture_time: a naive datetime; the pipeline must give UTC")
    return t.astimezone(timezone.utc).isoformat()


# -- envelopes --------------------------------------------------------------------


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _derive(shared: bytes, epk: bytes, recipient: bytes, part: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=epk + recipient, info=b"polewatch/seal/v1/" + part.encode()
    ).derive(shared)


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Envelope:
    header: dict[str, Any]
    aad: bytes  # magic + length + header bytes
    ciphertext: bytes
    signature: bytes | None

    @property
    def part(self) -> str:
        return str(self.header["part"])


def parse_envelope(blob: bytes, max_bytes: int | None = None) -> Envelope:
    """Split an envelope; refuse anything malformed before any crypto runs."""
    if not isinstance(blob, (bytes, bytearray)):
        raise SealError("envelope: not bytes")
    if max_bytes is not None and len(blob) > max_bytes:
        raise SealError(f"envelope: {len(blob)} bytes exceeds the limit {max_bytes}")
    if len(blob) < 6 or blob[:4] != MAGIC:
        raise SealError("envelope: bad magic (not a Polewatch sealed record)")
    (hlen,) = struct.unpack(">H", blob[4:6])
    if 6 + hlen > len(blob):
        raise SealError("envelope: truncated header")
    try:
        header = json.loads(bytes(blob[6 : 6 + hlen]))
    except (ValueError, UnicodeDecodeError):
        raise SealError("envelope: header is not JSON") from None
    if not isinstance(header, dict) or set(header) != HEADER_KEYS:
        raise SealError("envelope: header fields are not the sealed-record header")
    if header["v"] != 1 or header["part"] not in PARTS or header["kind"] not in KINDS:
        raise SealError("envelope: unknown version, part or kind")
    if not isinstance(header["seq"], int) or not all(
        isinstance(header[k], str) for k in ("dev", "id", "kid", "epk")
    ):
        raise SealError("envelope: header field of the wrong type")
    rest = bytes(blob[6 + hlen :])
    sig = None
    if header["part"] == "text":
        if len(rest) < SIG_LEN + 16:
            raise SealError("envelope: text part without a signature")
        rest, sig = rest[:-SIG_LEN], rest[-SIG_LEN:]
    elif len(rest) < 16:
        raise SealError("envelope: truncated ciphertext")
    return Envelope(header=header, aad=bytes(blob[: 6 + hlen]), ciphertext=rest, signature=sig)


@dataclass(frozen=True)
class SealedRecord:
    """What the store keeps: one envelope per present part."""

    id: str
    seq: int
    kind: str
    parts: dict[str, bytes]


class Sealer:
    """Seals records for one device, to the department key `kid`."""

    def __init__(
        self,
        device_id: str,
        signing_key: Ed25519PrivateKey,
        department_keys: dict[str, X25519PublicKey],
        kid: str | None,
    ) -> None:
        if not kid or kid not in department_keys:
            raise SealError(
                f"no current department key (kid {kid!r}; installed: {sorted(department_keys)}); "
                "run `polewatch keys install-department`"
            )
        self.device_id = device_id
        self._sign = signing_key
        self.kid = kid
        self._recipient = department_keys[kid]
        self._recipient_raw = _raw(self._recipient)

    @classmethod
    def from_keys(cls, keys: Any, device_id: str) -> Sealer:
        """From a `firmware.keys.DeviceKeys`."""
        return cls(device_id, keys.signing_key, keys.department_keys, keys.current_kid)

    def seal(
        self, record: dict[str, Any], plate_jpeg: bytes | None = None, vehicle_jpeg: bytes | None = None
    ) -> SealedRecord:
        """Seal `record` (all schema fields except `images`) and its images."""
        if "images" in record:
            raise SchemaError("images: filled in by the sealer, not the caller")
        eph = X25519PrivateKey.generate()
        epk = _raw(eph.public_key())
        shared = eph.exchange(self._recipient)
        del eph
        base = {
            "v": 1,
            "dev": self.device_id,
            "id": record.get("id"),
            "seq": record.get("seq"),
            "kind": record.get("kind"),
            "kid": self.kid,
            "epk": _b64(epk),
        }
        parts: dict[str, bytes] = {}
        images: dict[str, Any] = {}
        if record.get("kind") != "audit":
            for name, data in (("plate_jpeg", plate_jpeg), ("vehicle_jpeg", vehicle_jpeg)):
                if data:
                    env = self._envelope(base, name, shared, epk, bytes(data))
                    parts[name] = env
                    images[name] = {"bytes": len(data), "sha256": hashlib.sha256(env).hexdigest()}
                else:
                    images[name] = None
            record = {**record, "images": images}
        elif plate_jpeg or vehicle_jpeg:
            raise SchemaError("audit records carry no images")
        if record.get("device") != self.device_id:
            raise SchemaError(f"device: {record.get('device')!r} is not this device ({self.device_id!r})")
        check_record(record)
        text = self._envelope(base, "text", shared, epk, _canonical(record))
        parts["text"] = text + self._sign.sign(text)
        return SealedRecord(id=record["id"], seq=record["seq"], kind=record["kind"], parts=parts)

    def _envelope(self, base: dict[str, Any], part: str, shared: bytes, epk: bytes, plaintext: bytes) -> bytes:
        header = _canonical({**base, "part": part})
        aad = MAGIC + struct.pack(">H", len(header)) + header
        key = _derive(shared, epk, self._recipient_raw, part)
        return aad + ChaCha20Poly1305(key).encrypt(NONCE, plaintext, aad)


class Opener:
    """The department's side: verifies device signatures and opens envelopes."""

    def __init__(
        self, department_keys: dict[str, X25519PrivateKey], device_keys: dict[str, Ed25519PublicKey]
    ) -> None:
        self._keys = department_keys
        self._pub = {kid: _raw(k.public_key()) for kid, k in department_keys.items()}
        self.device_keys = device_keys

    def _key(self, env: Envelope) -> bytes:
        kid = env.header["kid"]
        if kid not in self._keys:
            raise SealError(f"sealed to unknown department key id {kid!r}")
        try:
            epk = _unb64(env.header["epk"])
            shared = self._keys[kid].exchange(X25519PublicKey.from_public_bytes(epk))
        except ValueError:
            raise SealError("envelope: bad ephemeral key") from None
        return _derive(shared, epk, self._pub[kid], env.part)

    def verify(self, blob: bytes, env: Envelope | None = None) -> Envelope:
        """Check the device signature of a text envelope (no decryption)."""
        env = env or parse_envelope(blob)
        if env.part != "text" or env.signature is None:
            raise SealError("only text envelopes are signed")
        dev = env.header["dev"]
        pub = self.device_keys.get(dev)
        if pub is None:
            raise SealError(f"unknown device {dev!r}: no registered signing key")
        try:
            pub.verify(env.signature, env.aad + env.ciphertext)
        except InvalidSignature:
            raise SealError(f"bad signature for device {dev!r}") from None
        return env

    def open_text(self, blob: bytes) -> dict[str, Any]:
        """Verify, decrypt and schema-check a text envelope; returns the record."""
        env = self.verify(blob)
        try:
            plain = ChaCha20Poly1305(self._key(env)).decrypt(NONCE, env.ciphertext, env.aad)
        except InvalidTag:
            raise SealError("text envelope does not decrypt (tampered or wrong key)") from None
        try:
            rec = json.loads(plain)
        except ValueError:
            raise SealError("sealed text is not JSON") from None
        check_record(rec)
        h = env.header
        if (rec["id"], rec["seq"], rec["kind"], rec["device"]) != (h["id"], h["seq"], h["kind"], h["dev"]):
            raise SealError("clear header does not match the sealed record")
        return rec

    def open_image(self, blob: bytes, record: dict[str, Any]) -> tuple[str, bytes]:
        """Open an image envelope, checking it against the signed digest in `record`."""
        env = parse_envelope(blob)
        if env.part not in IMAGE_PARTS:
            raise SealError("not an image envelope")
        ref = (record.get("images") or {}).get(env.part)
        if not ref or ref["sha256"] != hashlib.sha256(blob).hexdigest():
            raise SealError(f"{env.part} for {env.header['id']} does not match the signed record")
        try:
            data = ChaCha20Poly1305(self._key(env)).decrypt(NONCE, env.ciphertext, env.aad)
        except InvalidTag:
            raise SealError("image envelope does not decrypt") from None
        return env.part, data
