"""Signed JSON envelopes: how the department and administrators speak to a pole.

Hot lists and remote commands travel as `{"format", "key_id", "payload",
"signature"}` where `payload` is a JSON text and `signature` is the Ed25519
signature (lower-case hex) of its UTF-8 bytes. Signing the exact bytes, not a
re-serialisation, means no canonicalisation bugs can let two readings of one
message disagree. Every failure raises `EnvelopeError` with a message that
says what was wrong, so callers can refuse and audit it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_HEX = re.compile(r"^[0-9a-f]*$")


class EnvelopeError(ValueError):
    """A signed message that cannot be trusted or understood; the message says why."""


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Short, stable name of a public key: first 16 hex digits of SHA-256 of its raw bytes."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(data: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM or 64 hex digits."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise EnvelopeError("public key is not an Ed25519 key")
            return key
        if len(text) == 64 and _HEX.match(text.lower()):
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"cannot read public key: {exc}") from None
    raise EnvelopeError("public key must be PEM or 64 hex digits")


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from unencrypted PEM (the admin's or department's signing key)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"cannot read private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EnvelopeError("private key is not an Ed25519 key")
    return key


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def canonical(obj: Any) -> str:
    """Deterministic JSON text (sorted keys, no spaces, ASCII)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def seal(payload: Mapping[str, Any], key: Ed25519PrivateKey, fmt: str) -> bytes:
    """Sign `payload` into an envelope of format `fmt`."""
    text = canonical(payload)
    sig = key.sign(text.encode("utf-8")).hex()
    return canonical({"format": fmt, "key_id": key_id(key), "payload": text, "signature": sig}).encode()


def open_envelope(
    data: bytes, trusted: Mapping[str, Ed25519PublicKey], fmt: str, max_bytes: int = 64 * 1024 * 1024
) -> dict[str, Any]:
    """Verify an envelope against the trusted keys and return its payload object."""
    if not isinstance(data, (bytes, bytearray)):
        raise EnvelopeError("message must be bytes")
    if len(data) > max_bytes:
        raise EnvelopeError(f"message is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        env = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 5000-digit numbers
        raise EnvelopeError(f"not a JSON envelope: {exc}") from None
    if not isinstance(env, dict):
        raise EnvelopeError("envelope must be a JSON object")
    missing = [k for k in ("format", "key_id", "payload", "signature") if k not in env]
    if missing:
        raise EnvelopeError(f"envelope lacks {', '.join(missing)} (unsigned?)")
    extra = sorted(set(env) - {"format", "key_id", "payload", "signature"})
    if extra:
        raise EnvelopeError(f"envelope has unknown fields {extra}")
    if env["format"] != fmt:
        raise EnvelopeError(f"envelope format {env['format']!r} is not {fmt!r}")
    kid, text, sig = env["key_id"], env["payload"], env["signature"]
    if not isinstance(kid, str) or not isinstance(text, str) or not isinstance(sig, str):
        raise EnvelopeError("key_id, payload and signature must be strings")
    if kid not in trusted:
        raise EnvelopeError(f"signed by key {kid[:32]!r}, which this device does not trust")
    if len(sig) != 128 or not _HEX.match(sig):
        raise EnvelopeError("signature must be 128 lower-case hex digits")
    try:
        trusted[kid].verify(bytes.fromhex(sig), text.encode("utf-8"))
    except InvalidSignature:
        raise EnvelopeError(f"bad signature for key {kid}") from None
    except UnicodeEncodeError:
        raise EnvelopeError("payload is not valid text") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError(f"signed payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise EnvelopeError("signed payload must be a JSON object")
    return payload


def parse_time(value: object, name: str) -> datetime:
    """An ISO-8601 time with an explicit zone, as UTC; EnvelopeError naming the field otherwise."""
    if not isinstance(value, str):
        raise EnvelopeError(f"{name}: expected an ISO-8601 time string, got {type(value).__name__}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise EnvelopeError(f"{name}: {value[:40]!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        raise EnvelopeError(f"{name}: {value[:40]!r} has no time zone")
    return t.astimezone(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
