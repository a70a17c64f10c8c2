"""Sealed records: encryption to the department, device signatures, closed schema."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from firmware.seal import CLETS_NOTICE, Opener, SchemaError, SealError, Sealer, normalise_hit, parse_envelope


def record(**kw):
    rec = {
        "id": "01900000-0000-7000-8000-000000000001", "device": "pole-1", "seq": 1, "kind": "read",
        "capture_time": "2026-11-28T17:00:00.123456+00:00", "clock_synced": True,
        "location": {"latitude": 37.7, "longitude": -122.4, "description": "Main St"},
        "plate": "8XYZ123", "confidence": 0.97, "candidates": [{"plate": "8XYZ123", "confidence": 0.97}],
    }
    rec.update(kw)
    return rec


@pytest.fixture
def pair():
    dept = X25519PrivateKey.generate()
    dev = Ed25519PrivateKey.generate()
    sealer = Sealer("pole-1", dev, {"k1": dept.public_key()}, "k1")
    opener = Opener({"k1": dept}, {"pole-1": dev.public_key()})
    return sealer, opener


def test_round_trip_with_images(pair):
    sealer, opener = pair
    sealed = sealer.seal(record(), b"plate-jpeg-bytes", b"vehicle-jpeg-bytes")
    assert set(sealed.parts) == {"text", "plate_jpeg", "vehicle_jpeg"}
    rec = opener.open_text(sealed.parts["text"])
    assert rec["plate"] == "8XYZ123" and rec["images"]["plate_jpeg"]["bytes"] == 16
    assert opener.open_image(sealed.parts["plate_jpeg"], rec) == ("plate_jpeg", b"plate-jpeg-bytes")
    assert opener.open_image(sealed.parts["vehicle_jpeg"], rec) == ("vehicle_jpeg", b"vehicle-jpeg-bytes")
    for blob in sealed.parts.values():
        assert b"8XYZ123" not in blob and b"jpeg-bytes" not in blob


def test_clear_header_holds_only_routing_fields(pair):
    sealer, _ = pair
    env = parse_envelope(sealer.seal(record()).parts["text"])
    assert set(env.header) == {"v", "dev", "id", "seq", "kind", "part", "kid", "epk"}


@pytest.mark.parametrize(
    "change",
    [
        {"owner_name": "J. Doe"},  # unknown field
        {"location": {"latitude": 1, "longitude": 2, "description": "x", "address": "y"}},
        {"candidates": [{"plate": "A", "confidence": 0.5, "make": "Ford"}]},
        {"confidence": 1.5},
        {"capture_time": "2026-11-28T17:00:00"},  # not UTC-qualified
        {"kind": "sighting"},
        {"seq": 0},
    ],
)
def test_closed_schema_refuses(pair, change):
    sealer, _ = pair
    with pytest.raises(SchemaError):
        sealer.seal(record(**change))


def test_alert_carries_hit_with_clets_notice(pair):
    sealer, opener = pair
    hit = normalise_hit({"pattern": "8XYZ12?", "purpose": "stolen-vehicle", "match": "partial",
                         "case": "26-004411", "quality": 0.9})
    rec = opener.open_text(sealer.seal(record(kind="alert", hit=hit)).parts["text"])
    assert rec["hit"]["notice"] == CLETS_NOTICE and rec["hit"]["case"] == "26-004411"
    with pytest.raises(SchemaError):
        sealer.seal(record(kind="alert", hit={**hit, "suspect": "x"}))


def test_tampering_and_forgery_are_detected(pair):
    sealer, opener = pair
    sealed = sealer.seal(record(), b"p", b"v")
    text = bytearray(sealed.parts["text"])
    text[-80] ^= 1  # flip a ciphertext bit
    with pytest.raises(SealError, match="signature"):
        opener.open_text(bytes(text))
    # a record signed by another key claiming to be pole-1
    other = Sealer("pole-1", Ed25519PrivateKey.generate(), {"k1": opener._keys["k1"].public_key()}, "k1")
    with pytest.raises(SealError, match="signature"):
        opener.open_text(other.seal(record()).parts["text"])
    # an image swapped in from another record does not match the signed digest
    rec = opener.open_text(sealed.parts["text"])
    alien = sealer.seal(record(id="01900000-0000-7000-8000-000000000002", seq=2), b"p2", b"v2")
    with pytest.raises(SealError, match="does not match"):
        opener.open_image(alien.parts["plate_jpeg"], rec)
    with pytest.raises(SealError):
        parse_envelope(b"PWS1\xff\xffgarbage")
    with pytest.raises(SealError, match="unknown device"):
        Opener(opener._keys, {}).open_text(sealed.parts["text"])


def test_header_must_match_sealed_content(pair):
    sealer, opener = pair
    blob = sealer.seal(record()).parts["text"]
    env = parse_envelope(blob)
    forged_header = json.dumps({**env.header, "seq": 99}, sort_keys=True, separators=(",", ":")).encode()
    # re-signing is impossible without the device key, so a changed header fails the signature
    forged = b"PWS1" + len(forged_header).to_bytes(2, "big") + forged_header + env.ciphertext + env.signature
    with pytest.raises(SealError):
        opener.open_text(forged)


def test_key_rotation_old_records_still_open():
    dev = Ed25519PrivateKey.generate()
    k1, k2 = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    old = Sealer("pole-1", dev, {"k1": k1.public_key()}, "k1").seal(record())
    new = Sealer("pole-1", dev, {"k1": k1.public_key(), "k2": k2.public_key()}, "k2").seal(
        record(id="01900000-0000-7000-8000-000000000002", seq=2))
    assert parse_envelope(new.parts["text"]).header["kid"] == "k2"
    both = Opener({"k1": k1, "k2": k2}, {"pole-1": dev.public_key()})
    assert both.open_text(old.parts["text"])["seq"] == 1
    assert both.open_text(new.parts["text"])["seq"] == 2
    with pytest.raises(SealError, match="unknown department key"):
        Opener({"k1": k1}, {"pole-1": dev.public_key()}).open_text(new.parts["text"])
    with pytest.raises(SealError):
        Sealer("pole-1", dev, {"k1": k1.public_key()}, "k9")
