"""The sealed outbox on real SQLite files."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from firmware.config import StoreConfig
from firmware.seal import Sealer
from firmware.store import Outbox, StoreError, StoreFull
from storekit import SITE, jpeg, make_department, make_read, outbox_for, provision_device

HERE = Path(__file__).resolve().parent


@pytest.fixture
def dev(tmp_path):
    dept = make_department(tmp_path / "dept")
    dk = provision_device(tmp_path / "keys", "pole-store", dept, register_dir=tmp_path / "devices")
    return dict(dept=dept, dk=dk, tmp=tmp_path, opener=dept.opener(tmp_path / "devices"))


def seqs(path: Path) -> list[int]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT DISTINCT seq FROM parts ORDER BY seq")]
    finally:
        con.close()


def test_records_sealed_gapless_and_continue_after_reopen(dev):
    db = dev["tmp"] / "outbox.db"
    ob = outbox_for(db, dev["dk"], "pole-store")
    ids = [ob.add_read(make_read(f"6ABC{i:03d}")) for i in range(3)]
    ids.append(ob.add_alert(make_read("HOT999"), {"pattern": "HOT999", "purpose": "amber-alert", "match": "exact"}))
    ids.append(ob.add_audit({"actor": "officer.smith", "action": "query", "purpose": "stolen-vehicle"}))
    assert ids == sorted(ids)  # UUIDv7: time ordered
    ob.close()
    ob = outbox_for(db, dev["dk"], "pole-store")
    ob.add_read(make_read("6ABC999"))
    assert seqs(db) == [1, 2, 3, 4, 5, 6]
    texts = {it.seq: dev["opener"].open_text(it.data) for it in ob.pending(100, lane=0)}
    assert texts[4]["kind"] == "alert" and texts[4]["hit"]["purpose"] == "amber-alert"
    assert texts[5]["kind"] == "audit" and texts[5]["entry"]["actor"] == "officer.smith"
    assert texts[1]["location"]["description"].startswith("Test pole")
    ob.close()


def test_pending_order_alerts_first_then_text_then_images(dev):
    ob = outbox_for(dev["tmp"] / "o.db", dev["dk"], "pole-store")
    for i in range(3):
        ob.add_read(make_read(f"R{i}"))
    ob.add_alert(make_read("A1"), {"pattern": "A1", "purpose": "stolen-vehicle", "match": "exact"})
    order = [(it.kind, it.part, it.seq) for it in ob.pending(100)]
    assert order[0] == ("alert", "text", 4)
    assert [o[1] for o in order[:4]] == ["text"] * 4
    assert order[4][:2] == ("alert", "plate_jpeg")
    assert ob.pending(2, exclude=[(4, 0)])[0].seq == 1
    ob.close()


def test_delivery_grace_and_max_age_purges_are_audited(dev):
    events = []
    ob = outbox_for(dev["tmp"] / "o.db", dev["dk"], "pole-store", audit=lambda a, d: events.append((a, d)),
                    delivered_grace_hours=1, undelivered_max_age_days=1)
    a = ob.add_read(make_read("DLV1"))
    ob.add_read(make_read("OLD1"))
    assert ob.mark_delivered([(a, "text"), (a, "plate_jpeg"), (a, "vehicle_jpeg"), ("bogus", "text")]) == 3
    assert ob.backlog()["backlog_records"] == 1
    now = time.time()
    assert ob.maintain(now + 600) == {"purged_delivered": 0, "expired_undelivered": 0}
    b = ob.add_read(make_read("DLV2"))
    ob.mark_delivered([(b, "text")])
    assert ob.purge_delivered() == 4  # grace ignored: a's three parts and b's text; b's images stay
    ob.mark_delivered([(b, "plate_jpeg"), (b, "vehicle_jpeg")])
    assert ob.maintain(now + 2 * 3600) == {"purged_delivered": 2, "expired_undelivered": 0}
    assert ob.maintain(now + 2 * 86400) == {"purged_delivered": 0, "expired_undelivered": 3}
    assert events[-1][0] == "store.expire_undelivered" and events[-1][1]["parts"][0]["seq"] == 2
    assert "OLD1" not in repr(events)
    ob.close()


def test_capacity_eviction_order_never_alerts_and_audited(dev):
    events = []
    rng = np.random.default_rng(5)
    ob = outbox_for(dev["tmp"] / "o.db", dev["dk"], "pole-store", audit=lambda a, d: events.append((a, d)),
                    capacity_bytes=1024 * 1024)
    big = bytes(rng.integers(0, 255, 150_000, dtype=np.uint8))
    crop = bytes(rng.integers(0, 255, 20_000, dtype=np.uint8))
    alert = ob.add_alert(make_read("HOT1", plate_jpeg=crop, vehicle_jpeg=big),
                         {"pattern": "HOT1", "purpose": "stolen-vehicle", "match": "exact"})
    for i in range(12):
        ob.add_read(make_read(f"CAP{i}", plate_jpeg=crop, vehicle_jpeg=big))
    con = sqlite3.connect(ob.path)
    rows = con.execute("SELECT seq, part FROM parts ORDER BY seq, part").fetchall()
    con.close()
    have = {}
    for seq, part in rows:
        have.setdefault(seq, set()).add(part)
    assert have[1] == {0, 1, 2}  # the alert keeps everything
    assert ob.backlog()["store_bytes"] <= 1024 * 1024
    # the oldest reads lost their vehicle image first, but kept crop and text
    assert have[2] == {0, 1} and have[13] == {0, 1, 2}
    assert all(0 in p for p in have.values())
    evictions = [d for a, d in events if a == "store.evict"]
    assert evictions and all(p["part"] == "vehicle_jpeg" for d in evictions for p in d["parts"])
    assert all(p["id"] != alert for d in evictions for p in d["parts"])
    # with images gone, plate crops go next, then text of plain reads; alerts never
    small = outbox_for(dev["tmp"] / "o2.db", dev["dk"], "pole-store", audit=lambda a, d: events.append((a, d)),
                       capacity_bytes=1024 * 1024)
    small.add_alert(make_read("HOT2", plate_jpeg=crop, vehicle_jpeg=big),
                    {"pattern": "HOT2", "purpose": "stolen-vehicle", "match": "exact"})
    for i in range(60):
        small.add_read(make_read(f"T{i}", plate_jpeg=crop, vehicle_jpeg=big))
    parts_evicted = [p["part"] for a, d in events[-40:] if a == "store.evict" for p in d["parts"]]
    assert "plate_jpeg" in parts_evicted
    con = sqlite3.connect(small.path)
    assert con.execute("SELECT count(*) FROM parts WHERE kind='alert'").fetchone()[0] == 3
    con.close()
    assert ob.backlog()["evicted_parts"] >= 1
    ob.close()
    small.close()


def test_corrupt_database_moved_aside_and_reported(dev):
    db = dev["tmp"] / "o.db"
    ob = outbox_for(db, dev["dk"], "pole-store")
    for i in range(5):
        ob.add_read(make_read(f"C{i}"))
    ob.close()
    raw = bytearray(db.read_bytes())
    raw[0:16] = b"garbage garbage!"  # destroy the SQLite header
    db.write_bytes(bytes(raw))
    events = []
    ob = outbox_for(db, dev["dk"], "pole-store", audit=lambda a, d: events.append((a, d)))
    assert ob.recovered_from is not None and ob.recovered_from.exists()
    assert ob.recovered_from.read_bytes()[:16] == b"garbage garbage!"  # moved intact
    assert events[0][0] == "store.corrupt_moved_aside"
    # numbering continues above every sequence number ever issued
    assert ob.next_seq > 5 and events[0][1]["seq_resumes_at"] == ob.next_seq
    ob.add_read(make_read("AFTER1"))
    assert ob.backlog()["backlog_records"] == 1
    ob.close()


def test_locked_database_is_not_mistaken_for_corruption(dev):
    db = dev["tmp"] / "o.db"
    ob = outbox_for(db, dev["dk"], "pole-store")
    ob.add_read(make_read("LOCK1"))
    ob.close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="cannot open"):
            Outbox(db, StoreConfig(), Sealer.from_keys(dev["dk"], "pole-store"), location=SITE, busy_timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(dev["tmp"].glob("o.db.corrupt-*"))
    ob = outbox_for(db, dev["dk"], "pole-store")
    assert ob.backlog()["backlog_records"] == 1
    ob.close()


def test_disk_full_refuses_cleanly_and_keeps_stored_records(dev):
    db = dev["tmp"] / "o.db"
    ob = outbox_for(db, dev["dk"], "pole-store")
    first = [ob.add_read(make_read(f"F{i}")) for i in range(3)]
    pages = ob._db.execute("PRAGMA page_count").fetchone()[0]
    ob._db.execute(f"PRAGMA max_page_count={pages + 2}")  # SQLite's own "disk full" (SQLITE_FULL)
    with pytest.raises(StoreFull, match="disk full"):
        for i in range(50):
            ob.add_read(make_read(f"X{i}"))
    assert ob.backlog()["backlog_records"] >= 3
    ob._db.execute("PRAGMA max_page_count=1073741823")
    ob.add_read(make_read("AFTER"))
    ob.close()
    got = seqs(db)
    assert got == list(range(1, len(got) + 1))  # still gapless
    ob = outbox_for(db, dev["dk"], "pole-store")
    ids = {it.id for it in ob.pending(1000, lane=0)}
    assert set(first) <= ids
    ob.close()


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real, small file system (tmpfs of `size`) mounted at `where`; needs root."""
    if os.geteuid() != 0 or not Path("/bin/mount").exists():
        pytest.skip("needs root to mount a tmpfs")
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)])


def test_real_enospc_on_a_full_filesystem(dev, tmp_path):
    with small_tmpfs(tmp_path / "small", "1m") as mnt:
        ob = outbox_for(mnt / "o.db", dev["dk"], "pole-store", min_free_bytes=0)  # no reserve: hit ENOSPC
        stored = []
        with pytest.raises(StoreFull):
            for i in range(1000):
                stored.append(ob.add_read(make_read(f"N{i}")))
        assert len(stored) > 3
        ids = {it.id for it in ob.pending(10_000, lane=0)}
        assert set(stored) <= ids
        ob.close()


def test_disk_reserve_evicts_images_before_the_disk_fills(dev, tmp_path):
    events = []
    with small_tmpfs(tmp_path / "small", "16m") as mnt:
        ob = outbox_for(mnt / "o.db", dev["dk"], "pole-store", audit=lambda a, d: events.append((a, d)),
                        min_free_bytes=6 * 1024 * 1024)  # above the WAL's size between checkpoints
        rng = np.random.default_rng(8)
        plate, vehicle = jpeg(rng, 120, 60), jpeg(rng, 320, 240)
        ids = [ob.add_read(make_read(f"RS{i}", plate_jpeg=plate, vehicle_jpeg=vehicle)) for i in range(600)]
        ob.add_alert(make_read("RSHOT", rng), {"pattern": "RSHOT", "purpose": "stolen-vehicle", "match": "exact"})
        reasons = {d["reason"] for a, d in events if a == "store.evict"}
        assert reasons == {"disk_reserve"}
        texts = {it.id for it in ob.pending(10_000, lane=0)}
        assert set(ids) <= texts  # only images went; every read's text is still there
        st = os.statvfs(mnt)
        assert st.f_bavail * st.f_frsize > 0
        ob.close()


def test_sigkill_during_capture_loses_no_committed_read(dev):
    """A real process adding reads is SIGKILLed at random moments (5 times)."""
    db = dev["tmp"] / "o.db"
    committed: dict[int, str] = {}
    rnd = random.Random(7)
    for run in range(5):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "fault_device.py"), "--keys", str(dev["tmp"] / "keys"), "--db", str(db),
             "--device", "pole-store", "--count", "100000", "--prefix", f"K{run}-", "--images"],
            stdout=subprocess.PIPE, text=True,
        )
        first = proc.stdout.readline()  # the first committed read: capture is under way
        lines = [first]
        time.sleep(0.2 + 0.6 * rnd.random())
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in lines + out.splitlines():
            if line.startswith("C "):
                _, seq, plate = line.split()
                committed[int(seq)] = plate
    assert len(committed) > 10
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    got = seqs(db)
    assert got == list(range(1, len(got) + 1)), "sequence has a gap"
    assert set(committed) <= set(got)
    ob = outbox_for(db, dev["dk"], "pole-store")
    plates = {dev["opener"].open_text(it.data)["seq"]: dev["opener"].open_text(it.data)["plate"]
              for it in ob.pending(100_000, lane=0)}
    assert all(plates[s] == p for s, p in committed.items())
    ob.close()
