"""Evidence hold: named records survive the retention purge, still sealed; release is audited."""

from __future__ import annotations

import time

import pytest

from firmware import config as C
from firmware.retention import EvidenceHolds, HoldError
from tests.policykit import audit_log


def test_held_record_survives_purge(tmp_path):
    from firmware.seal import Sealer
    from firmware.store import Outbox
    from tests.storekit import SITE, make_department, make_read, provision_device

    dept = make_department(tmp_path / "dept")
    dk = provision_device(tmp_path / "keys", "pole-1", dept, register_dir=tmp_path / "devs")
    cfg = C.parse({"store": {"delivered_grace_hours": 1}})
    outbox = Outbox(tmp_path / "outbox.db", cfg.store, Sealer.from_keys(dk, "pole-1"), location=SITE)
    keep, other = outbox.add_read(make_read("EVID123")), outbox.add_read(make_read("ABC999"))
    outbox.mark_delivered([(i.id, i.part) for i in outbox.pending(100)])
    audit = audit_log(tmp_path)
    holds = EvidenceHolds(tmp_path / "holds.db", outbox.path, audit)
    res = holds.hold([keep, "0190d3a2-0000-7000-8000-000000000000"], "24-0042", "dept:records-unit")
    assert res["held"] == [keep] and res["missing"] == ["0190d3a2-0000-7000-8000-000000000000"] and res["parts"] == 3
    assert outbox.maintain(now=time.time() + 2 * 3600)["purged_delivered"] == 6
    assert outbox.key_of(keep, "text") is None  # gone from the outbox...
    sealed = holds.sealed(keep)
    rec = dept.opener(tmp_path / "devs").open_text(sealed["text"])  # ...but held, still sealed, intact
    assert rec["plate"] == "EVID123" and rec["id"] == keep
    assert holds.held()[0]["case"] == "24-0042"
    assert holds.release([keep], "24-0042", "dept:records-unit")["released_parts"] == 3
    assert holds.held() == [] and [e["action"] for e in audit.entries()] == ["evidence_hold", "evidence_release"]
    outbox.close()


@pytest.mark.parametrize("ids,case", [([], "24-1"), ("abc", "24-1"), (["'; DROP TABLE parts;--"], "24-1"),
                                      (["0190d3a2-0000-7000-8000-000000000000"], "")])
def test_bad_hold_requests(tmp_path, ids, case):
    holds = EvidenceHolds(tmp_path / "holds.db", tmp_path / "none.db", audit_log(tmp_path))
    with pytest.raises(HoldError):
        holds.hold(ids, case, "x")
