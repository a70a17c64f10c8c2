"""Sealed diagnostic snapshot for aiming: one camera frame the IT manager can ask for remotely,
readable only at the department.

A frame shows plates, so it is sealed like a read: JPEG, encrypted to the
department's current X25519 key (ephemeral key, HKDF-SHA256, ChaCha20-Poly1305)
and signed by the device key. The device cannot open what it sends; IT sees
exposure figures in the clear and the picture only through the department.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"PWSNAP1\n"
_INFO = b"polewatch/snapshot/v1"


class SnapshotError(ValueError):
    """A snapshot that cannot be opened or trusted."""


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=epk + recipient, info=_INFO).derive(shared)


def seal_snapshot(jpeg: bytes, header: dict[str, Any], recipient: X25519PublicKey, kid: str,
                  signer: Ed25519PrivateKey) -> bytes:
    """MAGIC | u32 header length | header JSON | ciphertext | 64-byte signature over all before it."""
    eph = X25519PrivateKey.generate()
    epk = _raw(eph.public_key())
    key = _key(eph.exchange(recipient), epk, _raw(recipient))
    head = json.dumps({**header, "kid": kid, "epk": base64.b64encode(epk).decode()}, sort_keys=True).encode()
    body = MAGIC + len(head).to_bytes(4, "big") + head
    body += ChaCha20Poly1305(key).encrypt(b"\0" * 12, jpeg, body)
    return body + signer.sign(body)


def open_snapshot(blob: bytes, department_keys: dict[str, X25519PrivateKey],
                  device_key: Ed25519PublicKey) -> tuple[dict[str, Any], bytes]:
    """The department's side: check the device signature, decrypt; (header, JPEG)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4 + 64:
        raise SnapshotError("not a sealed snapshot")
    body, sig = blob[:-64], blob[-64:]
    try:
        device_key.verify(sig, body)
    except InvalidSignature:
        raise SnapshotError("snapshot signature does not verify with the device key") from None
    n = int.from_bytes(body[len(MAGIC): len(MAGIC) + 4], "big")
    head_end = len(MAGIC) + 4 + n
    header = json.loads(body[len(MAGIC) + 4: head_end])
    priv = department_keys.get(header.get("kid"))
    if priv is None:
        raise SnapshotError(f"sealed to unknown department key {header.get('kid')!r}")
    epk = base64.b64decode(header["epk"])
    key = _key(priv.exchange(X25519PublicKey.from_public_bytes(epk)), epk, _raw(priv.public_key()))
    try:
        jpeg = ChaCha20Poly1305(key).decrypt(b"\0" * 12, body[head_end:], body[:head_end])
    except InvalidTag:
        raise SnapshotError("snapshot does not decrypt") from None
    return header, jpeg


def snapshot_handler(capture: Callable[[], Any], device_id: str, keys: Any,
                     quality: int = 90) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The `snapshot` command: `capture()` returns a drivers.camera Frame (image, exposure_us, gain,
    illuminator); `keys` is a firmware.keys.DeviceKeys (current department key, device key)."""
    import cv2

    def take(args: dict[str, Any]) -> dict[str, Any]:
        frame = capture()
        image: np.ndarray = frame.image
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise SnapshotError("JPEG encoding failed")
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        clear = {  # what IT sees for aiming without seeing the picture
            "device": device_id,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "width": int(image.shape[1]), "height": int(image.shape[0]),
            "mean_brightness": round(float(grey.mean()), 1),
            "saturated_fraction": round(float((grey >= 250).mean()), 4),
            "exposure_us": getattr(frame, "exposure_us", None), "gain": getattr(frame, "gain", None),
            "illuminator": getattr(frame, "illuminator", None),
        }
        kid = keys.current_kid
        blob = seal_snapshot(buf.tobytes(), clear, keys.department_keys[kid], kid, keys.signing_key)
        return {**clear, "sealed": base64.b64encode(blob).decode(), "sha256": hashlib.sha256(blob).hexdigest()}

    return take
