"""Department acknowledgements: which record parts headquarters has stored.

An ack is canonical JSON `{"v":1,"device":...,"acks":[[id, part], ...]}`
followed by a 64-byte Ed25519 signature by the receiver's key. The device
marks parts delivered (and later purges them) only on a valid ack, so a
forged ack would destroy evidence: unsigned or wrongly signed acks are
dropped with a logged reason.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIG_LEN = 64
MAX_ACKS = 10000
PARTS = ("text", "plate_jpeg", "vehicle_jpeg")


class AckError(ValueError):
    """A message on `ack` that is not a valid, signed acknowledgement."""


def encode_ack(device: str, acks: list[tuple[str, str]], key: Ed25519PrivateKey) -> bytes:
    body = json.dumps({"v": 1, "device": device, "acks": [list(a) for a in acks]}, separators=(",", ":")).encode()
    return body + key.sign(body)


def decode_ack(payload: bytes, device: str, keys: dict[str, Ed25519PublicKey]) -> list[tuple[str, str]]:
    """Verify and parse an ack for `device`; raise AckError naming the problem."""
    if len(payload) <= SIG_LEN:
        raise AckError("too short to carry a signature")
    body, sig = payload[:-SIG_LEN], payload[-SIG_LEN:]
    if not keys:
        raise AckError("no receiver public key installed; cannot trust any ack")
    for pub in keys.values():
        try:
            pub.verify(sig, body)
            break
        except InvalidSignature:
            continue
    else:
        raise AckError("signature does not verify with any installed receiver key")
    try:
        msg: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AckError("body is not JSON") from None
    if not isinstance(msg, dict) or set(msg) != {"v", "device", "acks"} or msg["v"] != 1:
        raise AckError("not an ack body (fields)")
    if msg["device"] != device:
        raise AckError(f"ack addressed to {msg['device']!r}, not this device")
    acks = msg["acks"]
    if not isinstance(acks, list) or len(acks) > MAX_ACKS:
        raise AckError("acks: expected a list")
    out: list[tuple[str, str]] = []
    for a in acks:
        if not (isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and a[1] in PARTS and len(a[0]) <= 64):
            raise AckError(f"acks: bad entry {a!r:.80}")
        out.append((a[0], a[1]))
    return out
