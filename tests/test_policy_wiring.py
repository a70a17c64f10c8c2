"""firmware.policy.Policy: the app's one object for the policy controls, with real parts."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware import config as C
from firmware.envelope import public_key_pem
from firmware.policy import Policy
from firmware.records import Candidate
from tests.policykit import NOW, Clock, entry, signed_list

DEPT_LIST = Ed25519PrivateKey.generate()


def test_policy_reads_alerts_counts_and_event_window(tmp_path):
    from drivers.gpio.fake import FakeGpio
    from firmware.store import event_location
    from tests.storekit import make_department, make_read, outbox_for, provision_device

    dk = provision_device(tmp_path / "keys", "pole-1", make_department(tmp_path / "dept"))
    (tmp_path / "keys" / "hotlist").mkdir()
    (tmp_path / "keys" / "hotlist" / "hq.pub").write_bytes(public_key_pem(DEPT_LIST))
    event = {"name": "Parade", "start": (NOW - timedelta(hours=1)).isoformat(),
             "end": (NOW + timedelta(hours=2)).isoformat(), "location": "Main St", "latitude": 37.0,
             "longitude": -122.0, "hotlist": "parade", "alert_routes": ["department", "relay"], "relay_pin": 12}
    cfg = C.parse({"device": {"id": "pole-1", "data_dir": str(tmp_path / "data")},
                   "keys": {"dir": str(tmp_path / "keys")}, "event": event})
    ob = outbox_for(tmp_path / "outbox.db", dk, "pole-1")
    ob.location = event_location(cfg.event)
    clock, gpio = Clock(), FakeGpio()
    policy = Policy(cfg, dk, ob, relay=gpio, clock=clock)
    policy.hotlists.install(signed_list(DEPT_LIST, [entry("PRD1234", "event_protection", "EV-1")], name="parade"))
    assert policy.allows_reading()
    assert not policy.allows_reading(NOW + timedelta(hours=3))
    read = make_read("PRD1Z34")
    read.candidates = [Candidate("PRD1Z34", 0.9)]
    ids = policy.on_read(read)
    assert len(ids) == 1 and gpio.read(12) is True  # department alert and the relay at the command post
    policy.on_read(make_read("XYZ987"))
    policy.tick()
    clock.advance(minutes=10)
    policy.tick()
    stats = policy.usage.year_stats(NOW.year)
    assert stats["reads"] == 2 and stats["alerts"] == 1 and stats["uptime_s"] == 600
    st = policy.status()
    assert st["event"]["name"] == "Parade" and st["hotlists"]["lists"][0]["entries"] == 1
    assert "PRD1234" not in str(st)  # status goes into telemetry: no plates
    # the audit log is mirrored into the outbox as sealed audit records
    assert any(i.kind == "audit" for i in ob.pending(1000))
    assert policy.audit.verify().ok
    ob.close()
