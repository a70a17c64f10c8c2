"""Audit chain: any edit, deletion, reordering or single changed byte is caught."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.audit import AuditLog, verify_log


@pytest.fixture()
def key():
    return Ed25519PrivateKey.generate()


def _fill(path: Path, key, n: int = 5, mirror=None) -> AuditLog:
    log = AuditLog(path, key, mirror=mirror)
    for i in range(n):
        log.record(f"user{i}", "search", purpose="stolen_vehicle", case=f"24-{i:04d}", detail={"records": i})
    return log


def test_clean_log_verifies_and_mirrors(tmp_path, key):
    mirrored = []
    log = _fill(tmp_path / "audit.log", key, mirror=mirrored.append)
    res = log.verify()
    assert res.ok and res.entries == 5, res.errors
    assert [m["seq"] for m in mirrored] == [1, 2, 3, 4, 5]
    first = mirrored[0]
    assert first["actor"] == "user0" and first["purpose"] == "stolen_vehicle" and first["case"] == "24-0000"
    assert first["time"].endswith("+00:00")


def test_every_single_byte_change_is_caught(tmp_path, key):
    log = _fill(tmp_path / "audit.log", key, n=3)
    for path in (log.path, log.head_path):
        original = path.read_bytes()
        for pos in range(len(original)):
            # a letter changes case (the subtle edit hex parsers forgive), anything else by one bit
            flip = 0x20 if chr(original[pos]).isalpha() else 0x01
            bad = bytearray(original)
            bad[pos] ^= flip
            path.write_bytes(bytes(bad))
            res = verify_log(log.path, key.public_key())
            assert not res.ok, f"{path.name}: change at byte {pos} (^{flip:#x}) not caught"
        path.write_bytes(original)
    assert verify_log(log.path, key.public_key()).ok


def test_deletion_reordering_insertion_and_truncation(tmp_path, key):
    log = _fill(tmp_path / "audit.log", key, n=5)
    lines = log.path.read_bytes().splitlines(keepends=True)
    pub = key.public_key()
    cases = {
        "delete middle": lines[:2] + lines[3:],
        "swap": lines[:1] + [lines[2], lines[1]] + lines[3:],
        "duplicate": lines + [lines[-1]],
        "truncate last": lines[:-1],
        "empty": [],
    }
    for name, variant in cases.items():
        log.path.write_bytes(b"".join(variant))
        assert not verify_log(log.path, pub).ok, name
    log.path.write_bytes(b"".join(lines))
    assert verify_log(log.path, pub).ok


def test_forged_entry_with_other_key_is_caught(tmp_path, key):
    path = tmp_path / "audit.log"
    _fill(path, key, n=2)
    AuditLog(path, Ed25519PrivateKey.generate()).record("mallory", "search")
    res = verify_log(path, key.public_key())
    assert not res.ok and any("line 3" in e for e in res.errors)


def test_mirror_failure_keeps_local_entry(tmp_path, key):
    def broken(_):
        raise ConnectionError("broker down")

    log = AuditLog(tmp_path / "a.log", key, mirror=broken)
    log.record("ops", "login")
    assert log.verify().ok and log.verify().entries == 1


def test_detail_is_capped(tmp_path, key):
    log = AuditLog(tmp_path / "a.log", key)
    e = log.record("ops", "x", detail={"blob": "A" * 100_000})
    assert len(json.dumps(e)) < 6000 and log.verify().ok


def _writer(path: str, pem: bytes, who: str) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    log = AuditLog(path, load_pem_private_key(pem, None))
    for i in range(20):
        log.record(who, "access", detail={"i": i})


def test_two_processes_keep_one_chain(tmp_path, key):
    from firmware.envelope import private_key_pem

    path = str(tmp_path / "audit.log")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, private_key_pem(key), w)) for w in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    res = verify_log(path, key.public_key())
    assert res.ok and res.entries == 40, res.errors


def test_odd_detail_values_are_recorded_as_text(tmp_path, key):
    from datetime import datetime, timezone

    log = AuditLog(tmp_path / "a.log", key)
    e = log.record("ops", "x", detail={"path": tmp_path, "when": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    assert e["detail"]["path"] == str(tmp_path) and e["detail"]["when"].startswith("2026-01-01")
    assert log.verify().ok
