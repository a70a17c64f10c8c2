"""Special events: no reading outside the window; after it, purge once delivered, reported once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware import config as C
from firmware.event import AlwaysOpen, EventSupervisor, EventWindow, window_for
from firmware.hotlist import HotlistManager, storage_key
from tests.policykit import NOW, Clock, actions, audit_log, entry, signed_list, trusted

EVENT = {"name": "Stadium concert", "start": (NOW - timedelta(hours=4)).isoformat(),
         "end": (NOW + timedelta(hours=1)).isoformat(), "location": "Lot C", "latitude": 37.4,
         "longitude": -121.9, "hotlist": "concert-2026", "alert_routes": ["department", "relay"], "relay_pin": 21}


def test_window_allows_only_during_event():
    cfg = C.parse({"event": EVENT})
    w = window_for(cfg.event)
    assert isinstance(w, EventWindow)
    assert not w.allows(cfg.event.start - timedelta(seconds=1))
    assert w.allows(cfg.event.start) and w.allows(NOW)
    assert not w.allows(cfg.event.end) and w.ended(cfg.event.end)
    assert isinstance(window_for(None), AlwaysOpen) and window_for(None).allows(NOW)


@pytest.mark.parametrize("bad,why", [
    ({"start": "2026-12-05T16:00:00"}, "time zone"),
    ({"end": (NOW - timedelta(days=1)).isoformat()}, "end must be after start"),
    ({"relay_pin": None}, "relay_pin"),
    ({"alert_routes": ["sms"]}, "alert_routes"),
])
def test_bad_event_config_is_named(bad, why):
    with pytest.raises(C.ConfigError, match=why):
        C.parse({"event": {**EVENT, **bad}})


def test_end_of_event_waits_for_delivery_then_purges_once(tmp_path):
    from firmware.seal import Sealer
    from firmware.store import Outbox, event_location
    from tests.storekit import make_department, make_read, provision_device

    cfg = C.parse({"event": EVENT})
    clock = Clock()
    device_key = Ed25519PrivateKey.generate()
    audit = audit_log(tmp_path, device_key, clock)
    dept_hl = Ed25519PrivateKey.generate()
    hl = HotlistManager(tmp_path / "hl", storage_key(device_key), trusted(dept_hl), audit, clock=clock)
    hl.install(signed_list(dept_hl, [entry("EVT1234", "event_protection")], name="concert-2026"))
    dk = provision_device(tmp_path / "keys", "pole-1", make_department(tmp_path / "dept"))
    outbox = Outbox(tmp_path / "outbox.db", cfg.store, Sealer.from_keys(dk, "pole-1"),
                    location=event_location(cfg.event))
    for p in ("EVT1234", "ABC123", "XYZ789"):
        outbox.add_read(make_read(p))
    sup = EventSupervisor(cfg.event, outbox, audit, tmp_path / "state", hotlists=hl)
    assert sup.tick(NOW) is None  # event still running
    clock.advance(hours=2)
    waiting = sup.tick(clock())
    assert waiting["state"] == "waiting_for_delivery" and waiting["undelivered_records"] == 3
    assert hl.match([("EVT1234", 0.9)]) == []  # the event hot list is gone at the end
    before = outbox.backlog()["store_bytes"]
    outbox.mark_delivered([(i.id, i.part) for i in outbox.pending(100)])
    done = sup.tick(clock())
    assert done["state"] == "purged" and done["purged_parts"] == 9  # 3 reads x text, plate, vehicle
    assert outbox.backlog()["store_bytes"] == 0 < before
    assert sup.tick(clock()) is None and sup.done()  # reported once
    purge = [e for e in audit.entries() if e["action"] == "event_purge"]
    assert len(purge) == 1 and purge[0]["detail"]["purged_parts"] == 9
    assert "hotlist_removed" in actions(audit) and audit.verify().ok
    outbox.close()
