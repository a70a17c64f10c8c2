"""A stolen pole: a copy of the device's files (outbox, keys, config) reveals
no plate text or image, and no key on the device opens a record."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from firmware.seal import Opener, SealError, parse_envelope
from storekit import make_department, make_read, outbox_for, provision_device

PLATES = ["7QZX913", "4MNB552", "CA1LIFE", "8HOT404"]


def candidate_x25519_keys(files) -> list[X25519PrivateKey]:
    """Every X25519 key an attacker could make from private material on the device."""
    out = []
    for path in files:
        data = path.read_bytes()
        try:
            key = serialization.load_pem_private_key(data, None)
        except (ValueError, TypeError):
            continue
        raw = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        blobs = [raw[-32:], hashlib.sha256(raw).digest()]
        try:  # Ed25519 seed, and the X25519 scalar derived from it (RFC 8032 / birational map)
            seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
            blobs += [seed, hashlib.sha512(seed).digest()[:32]]
        except ValueError:
            pass
        out += [X25519PrivateKey.from_private_bytes(b) for b in blobs]
        assert not isinstance(key, X25519PrivateKey), f"{path}: an X25519 private key on the device"
    return out


def test_copied_device_files_reveal_no_plate_and_no_key_opens_records(tmp_path):
    dept = make_department(tmp_path / "dept")
    data = tmp_path / "var-lib-polewatch"
    dk = provision_device(data / "keys", "pole-stolen", dept, register_dir=tmp_path / "devices")
    (data / "polewatch.toml").write_text('[device]\nid = "pole-stolen"\n[uplink]\nenabled = true\n')
    ob = outbox_for(data / "outbox.db", dk, "pole-stolen")
    rng = np.random.default_rng(9)
    for p in PLATES[:3]:
        ob.add_read(make_read(p, rng))
    ob.add_alert(make_read(PLATES[3], rng), {"pattern": PLATES[3], "purpose": "stolen-vehicle",
                                             "match": "exact", "case": "26-000777"})
    ob.add_audit({"actor": "officer.lee", "action": "search", "query": PLATES[0]})
    # the thief copies the files while the service runs (WAL not yet checkpointed) ...
    live = tmp_path / "copy-live"
    shutil.copytree(data, live)
    ob.close()
    # ... and again after a clean shutdown
    cold = tmp_path / "copy-cold"
    shutil.copytree(data, cold)

    files = [f for d in (live, cold) for f in d.rglob("*") if f.is_file()]
    assert any(f.name == "outbox.db" for f in files)
    for f in files:
        blob = f.read_bytes()
        for p in PLATES + ["26-000777", "officer.lee"]:
            for needle in (p.encode(), p.lower().encode(), p.encode("utf-16-le")):
                assert needle not in blob, f"{p!r} found in {f}"
        assert b"JFIF" not in blob, f"a clear JPEG in {f}"

    # the records are there, sealed; every key the device holds fails to open them
    import sqlite3

    con = sqlite3.connect(cold / "outbox.db")
    blobs = [r[0] for r in con.execute("SELECT data FROM parts")]
    con.close()
    assert len(blobs) == 4 * 3 + 1
    keys = candidate_x25519_keys(files)
    assert len(keys) >= 4
    devices = {"pole-stolen": dk.public_key}
    for blob in blobs:
        kid = parse_envelope(blob).header["kid"]
        for k in keys:
            opener = Opener({kid: k}, devices)
            with pytest.raises(SealError):
                if parse_envelope(blob).part == "text":
                    opener.open_text(blob)
                else:
                    opener.open_image(blob, {"images": {parse_envelope(blob).part: {
                        "sha256": hashlib.sha256(blob).hexdigest(), "bytes": 0}}})
    # the department's key does open them (the test would pass vacuously otherwise)
    real = dept.opener(tmp_path / "devices")
    texts = [real.open_text(b) for b in blobs if parse_envelope(b).part == "text"]
    assert sorted(t["plate"] for t in texts if t["kind"] != "audit") == sorted(PLATES)
