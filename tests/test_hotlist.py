"""Hot lists: signature, versions, expiry, allowed purposes, encryption at rest, OCR-tolerant matching, alerts."""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.hotlist import Alerter, HotlistError, HotlistManager, storage_key
from firmware.hotlist.match import CLETS_NOTICE, Matcher, levenshtein, wild_distance
from firmware.hotlist.model import Entry
from firmware.records import Candidate
from tests.policykit import NOW, Clock, actions, audit_log, entry, signed_list, trusted

DEPT = Ed25519PrivateKey.generate()
DEVICE = Ed25519PrivateKey.generate()


@pytest.fixture()
def mgr(tmp_path):
    clock = Clock()
    log = audit_log(tmp_path, DEVICE, clock)
    m = HotlistManager(tmp_path / "hl", storage_key(DEVICE), trusted(DEPT), audit=log, clock=clock)
    return m


def hits(m, *cands):
    return [(h.entry.pattern, h.kind, h.edit_distance) for h in m.match([(c, 0.9) for c in cands])]


def test_install_and_match_exact_confusion_edit(mgr):
    res = mgr.install(signed_list(DEPT, [entry("ABC123"), entry("7XYZ?12", "missing_person", "AMBER-7")]))
    assert res["changed"] and res["entries"] == 2
    assert hits(mgr, "ABC123") == [("ABC123", "exact", 0)]
    assert hits(mgr, "A8C1Z3") == [("ABC123", "confusion", 0)]  # B/8 and 2/Z
    assert hits(mgr, "ABC12") == [("ABC123", "edit", 1)]
    assert hits(mgr, "7XY2Q12") == [("7XYZ?12", "confusion", 0)]  # Z/2 on a partial plate
    assert hits(mgr, "XYZ999", "QQQ111") == []


def test_short_plates_match_without_edits(mgr):
    mgr.install(signed_list(DEPT, [entry("AB12")]))
    assert hits(mgr, "A812") == [("AB12", "confusion", 0)]
    assert hits(mgr, "AB1") == [] and hits(mgr, "AB123") == []


def test_second_candidate_can_hit(mgr):
    mgr.install(signed_list(DEPT, [entry("8ABC234")]))
    got = mgr.match([("XYZ9870", 0.6), ("8ABC234", 0.3)])
    assert got[0].rank == 1 and got[0].kind == "exact" and got[0].score == pytest.approx(0.3)


def test_disallowed_purpose_is_refused_and_audited(mgr):
    res = mgr.install(signed_list(DEPT, [entry("ABC123"), entry("PARK1", "parking", "P-1"),
                                         entry("SPD99", "infraction", "T-9")]))
    assert res["entries"] == 1 and res["refused_entries"] == 2
    assert hits(mgr, "PARK1") == [] and hits(mgr, "SPD99") == []
    refused = [e for e in mgr.audit.entries() if e["action"] == "hotlist_entry_refused"]
    assert [e["purpose"] for e in refused] == ["parking", "infraction"]
    assert "not allowed by the ALPR policy" in refused[0]["detail"]["error"]


def test_many_refused_entries_are_audited_in_batches(mgr):
    bad = [entry(f"PARK{i:03d}", "parking", f"P-{i}") for i in range(120)]
    res = mgr.install(signed_list(DEPT, [entry("GOOD123")] + bad))
    assert res["entries"] == 1 and res["refused_entries"] == 120
    one = [e for e in mgr.audit.entries() if e["action"] == "hotlist_entry_refused"]
    batches = [e for e in mgr.audit.entries() if e["action"] == "hotlist_entries_refused"]
    assert len(one) == 50 and sum(len(b["detail"]["entries"]) for b in batches) == 70 and len(batches) == 3
    assert batches[0]["detail"]["entries"][0][1] == "parking" and mgr.audit.verify().ok


@pytest.mark.parametrize("pattern", ["*", "A*", "??1", "A", "ABC$12", "ABCDEFGHIJK"])
def test_bad_patterns_are_refused(mgr, pattern):
    res = mgr.install(signed_list(DEPT, [entry(pattern), entry("GOOD123")]))
    assert res["entries"] == 1 and res["refused_entries"] == 1


def test_unsigned_forged_unknown_key_expired_and_rollback_refused(mgr):
    other = Ed25519PrivateKey.generate()
    good = signed_list(DEPT, [entry("ABC123")], version=5)
    forged = good.replace(b"ABC123", b"ABC124")
    cases = {
        b'{"list": "main"}': "unsigned",
        forged: "bad signature",
        signed_list(other, [entry("ABC123")]): "does not trust",
        signed_list(DEPT, [entry("ABC123")], issued=NOW - timedelta(days=30), days=7): "expired",
    }
    for data, why in cases.items():
        with pytest.raises(HotlistError, match=why):
            mgr.install(data)
    mgr.install(good)
    with pytest.raises(HotlistError, match="no rollback"):
        mgr.install(signed_list(DEPT, [entry("OLD999")], version=4))
    assert mgr.install(good)["changed"] is False  # retained topic delivers it again: no-op
    assert actions(mgr.audit).count("hotlist_refused") == 5
    assert mgr.audit.verify().ok


def test_expiry_of_entries_and_lists(mgr):
    mgr.install(signed_list(DEPT, [entry("ABC123", days=1), entry("XYZ789", days=30)], days=7))
    assert hits(mgr, "ABC123")
    mgr.clock.advance(days=2)
    assert hits(mgr, "ABC123") == [] and hits(mgr, "XYZ789")
    mgr.clock.advance(days=6)
    assert hits(mgr, "XYZ789") == []  # the whole list expired
    assert mgr.status()["lists"][0]["expired"] is True


def test_encrypted_at_rest_and_reloaded(tmp_path, mgr):
    mgr.install(signed_list(DEPT, [entry("SECRET7")]))
    files = list((tmp_path / "hl").iterdir())
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert b"SECRET7" not in files[0].read_bytes() and b"stolen_vehicle" not in files[0].read_bytes()
    again = HotlistManager(tmp_path / "hl", storage_key(DEVICE), trusted(DEPT), audit=mgr.audit, clock=mgr.clock)
    assert again.load() == [] and hits(again, "SECRET7")
    wrong = HotlistManager(tmp_path / "hl", os.urandom(32), trusted(DEPT), audit=mgr.audit, clock=mgr.clock)
    assert "cannot decrypt" in wrong.load()[0] and hits(wrong, "SECRET7") == []
    blob = bytearray(files[0].read_bytes())
    blob[-5] ^= 1
    files[0].write_bytes(bytes(blob))
    assert "cannot decrypt" in again.load()[0]


def test_event_list_removed(mgr):
    mgr.install(signed_list(DEPT, [entry("EVT123", "event_protection")], name="parade-2026"))
    assert mgr.remove("parade-2026", reason="event ended")
    assert hits(mgr, "EVT123") == [] and not list(mgr.dir.iterdir())


def test_matcher_agrees_with_brute_force():
    rng = np.random.default_rng(3)
    alphabet = list("ABCDEFGHJKMNPRTUVWXY0123456789OISZBDQ")
    exp = NOW + timedelta(days=1)
    plates = ["".join(rng.choice(alphabet, size=rng.integers(5, 8))) for _ in range(300)]
    m = Matcher([Entry(p, "stolen_vehicle", "c", exp) for p in plates], max_edit_distance=1)
    fold = m._fold
    for _ in range(300):
        base = plates[rng.integers(len(plates))] if rng.random() < 0.5 else "".join(rng.choice(alphabet, size=7))
        q = list(base)
        if rng.random() < 0.5:
            q[rng.integers(len(q))] = str(rng.choice(alphabet))
        q = "".join(q)
        want = {p for p in plates
                if levenshtein(q.translate(fold), p.translate(fold), 1) <= (1 if len(p) >= 5 else 0)}
        got = {h.entry.pattern for h in m.match([(q, 0.9)])}
        assert got == want, q


def test_wild_distance():
    assert wild_distance("ABC123", "AB?123", 0) == 0
    assert wild_distance("ABC123", "AB*", 0) == 0
    assert wild_distance("AB", "AB*", 0) == 0
    assert wild_distance("AXC123", "AB?123", 1) == 1
    assert wild_distance("ZZZ", "AB*", 1) == 2


class RecordingRelay:
    """Any object with .output(pin, value) also drives the relay."""

    def __init__(self):
        self.calls = []

    def output(self, pin, value):
        self.calls.append((pin, value))


def test_relay_duck_typed_and_a_later_hit_extends_the_pulse(mgr):
    mgr.install(signed_list(DEPT, [entry("7ABC123"), entry("8XYZ999")]))
    relay, timers = RecordingRelay(), []
    alerter = Alerter(mgr, None, relay=relay, relay_pin=5, routes=("relay",), realert_s=0,
                      timer=lambda s, fn: timers.append(fn))
    from tests.storekit import make_read

    alerter.on_read(make_read("7ABC123", images=False))
    alerter.on_read(make_read("8XYZ999", images=False))
    timers[0]()  # the first pulse's end: superseded by the second hit
    assert relay.calls == [(5, True), (5, True)]
    timers[1]()
    assert relay.calls[-1] == (5, False)


def test_alert_is_sealed_first_audited_and_pulses_relay(tmp_path, mgr):
    from firmware.config import StoreConfig
    from firmware.seal import Sealer
    from firmware.store import Outbox
    from tests.storekit import SITE, make_department, make_read, provision_device

    dept = make_department(tmp_path / "dept")
    dk = provision_device(tmp_path / "keys", "pole-1", dept, register_dir=tmp_path / "devs")
    outbox = Outbox(tmp_path / "outbox.db", StoreConfig(), Sealer.from_keys(dk, "pole-1"), location=SITE)
    mgr.install(signed_list(DEPT, [entry("7ABC123", "arrest_warrant", "W-99")]))
    from drivers.gpio.fake import FakeGpio

    relay, timers = FakeGpio(), []
    alerter = Alerter(mgr, outbox, audit=mgr.audit, relay=relay, relay_pin=17, relay_hold_s=3,
                      routes=("department", "relay"), timer=lambda s, fn: timers.append((s, fn)))
    assert alerter.on_read(make_read("XYZ9876")) == []
    outbox.add_read(make_read("XYZ9876"))
    read = make_read("7A8C123")
    read.candidates = [Candidate("7A8C123", 0.9), Candidate("7ABC123", 0.05)]
    ids = alerter.on_read(read)
    assert len(ids) == 1
    first = outbox.pending(10)[0]
    assert first.kind == "alert" and first.id == ids[0]  # alerts leave before the earlier read
    assert relay.read(17) is True and timers[0][0] == 3
    timers[0][1]()
    assert relay.read(17) is False
    assert [e.value for e in relay.history(17)] == [False, True, False]  # set up off, on for the hit, off
    hit_entry = [e for e in mgr.audit.entries() if e["action"] == "hit"][0]
    assert hit_entry["purpose"] == "arrest_warrant" and hit_entry["case"] == "W-99"
    assert hit_entry["detail"]["record"] == ids[0]
    rec = dept.opener(tmp_path / "devs").open_text(first.data)  # what headquarters sees
    assert rec["kind"] == "alert" and rec["plate"] == "7A8C123"
    assert rec["hit"]["pattern"] == "7ABC123" and rec["hit"]["purpose"] == "arrest_warrant"
    assert rec["hit"]["case"] == "W-99" and rec["hit"]["notice"] == CLETS_NOTICE
    assert rec["hit"]["match"].startswith("confusion:7A8C123") and 0 < rec["hit"]["quality"] <= 1
    outbox.close()


def test_early_alert_from_a_frame_then_no_second_alert_for_the_read(tmp_path, mgr):
    from firmware.config import StoreConfig
    from firmware.hotlist.alert import Alerter
    from firmware.records import PlateResult
    from firmware.seal import Sealer
    from firmware.store import Outbox
    from tests.storekit import SITE, make_department, make_read, provision_device

    dept = make_department(tmp_path / "dept")
    dk = provision_device(tmp_path / "keys", "pole-1", dept, register_dir=tmp_path / "devs")
    outbox = Outbox(tmp_path / "outbox.db", StoreConfig(), Sealer.from_keys(dk, "pole-1"), location=SITE)
    mgr.install(signed_list(DEPT, [entry("7ABC123", "stolen_vehicle", "S-1")]))
    t = [100.0]
    woken = []
    alerter = Alerter(mgr, outbox, audit=mgr.audit, early_min_confidence=0.8, realert_s=60, clock=lambda: t[0],
                      notify=lambda: woken.append(1))
    image = (np.random.default_rng(0).random((720, 1280, 3)) * 255).astype(np.uint8)
    unsure = PlateResult((600, 400, 120, 40), 0.9, "7ABC123", 0.5, [Candidate("7ABC123", 0.5)])
    assert alerter.on_frame(image, NOW, [unsure]) == []  # not confident enough for an early alert
    sure = PlateResult((600, 400, 120, 40), 0.9, "7ABC123", 0.93, [Candidate("7ABC123", 0.93)])
    ids = alerter.on_frame(image, NOW, [sure])
    assert len(ids) == 1 and woken == [1]
    rec = dept.opener(tmp_path / "devs").open_text(outbox.pending(1)[0].data)
    assert rec["kind"] == "alert" and rec["images"]["plate_jpeg"]["bytes"] > 0  # crop sealed with it
    assert alerter.on_frame(image, NOW, [sure]) == []  # next frame, same pass: no second alert
    assert alerter.on_read(make_read("7ABC123")) == []  # the pass's read: already alerted
    t[0] += 61
    assert len(alerter.on_read(make_read("7ABC123"))) == 1  # a later pass alerts again
    early = [e["detail"]["early"] for e in mgr.audit.entries() if e["action"] == "hit"]
    assert early == [True, False]
    outbox.close()


def test_gzip_transport_and_bomb_refused(mgr):
    import gzip

    from firmware.hotlist.model import MAX_LIST_BYTES

    data = signed_list(DEPT, [entry(f"GZ{i:05d}") for i in range(2000)])
    res = mgr.install(gzip.compress(data))
    assert res["entries"] == 2000 and hits(mgr, "GZ01234")
    with pytest.raises(HotlistError, match="over"):
        mgr.install(gzip.compress(b" " * (MAX_LIST_BYTES + 10)))
    with pytest.raises(HotlistError, match="truncated|damaged"):
        mgr.install(gzip.compress(data)[:-20])


def test_alert_survives_a_broken_audit_log(tmp_path, mgr):
    from firmware.audit import AuditLog
    from tests.storekit import make_department, make_read, outbox_for, provision_device

    dk = provision_device(tmp_path / "keys", "pole-1", make_department(tmp_path / "dept"))
    outbox = outbox_for(tmp_path / "outbox.db", dk, "pole-1")
    mgr.install(signed_list(DEPT, [entry("7ABC123")]))
    (tmp_path / "blocked").mkdir()  # the audit log path is unusable, as on a broken disk
    alerter = Alerter(mgr, outbox, audit=AuditLog(tmp_path / "blocked", DEVICE))
    ids = alerter.on_read(make_read("7ABC123", images=False))
    assert len(ids) == 1 and outbox.pending(5)[0].id == ids[0]  # the alert is sealed and queued regardless
    mgr.audit = AuditLog(tmp_path / "blocked", DEVICE)
    assert mgr.on_message(signed_list(DEPT, [entry("NEW1234")], version=2)) is None  # logged, not raised
    assert hits(mgr, "NEW1234") == []  # not installed without its audit record... and the old list stays
    assert hits(mgr, "7ABC123")
    outbox.close()


@pytest.mark.parametrize("payload", [b'{"a": ' + b"9" * 5000 + b"}", b"[" * 100000 + b"]" * 100000])
def test_pathological_json_list_refused(mgr, payload):
    with pytest.raises(HotlistError):
        mgr.install(payload)
