"""Signed remote commands: refused when unsigned, forged, expired, replayed, misaddressed or malformed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware import config as C
from firmware import keys as K
from firmware.envelope import public_key_pem
from firmware.hotlist import HotlistManager, storage_key
from firmware.remote import CommandProcessor, Handlers, NonceStore, admin_keys_from_dir, key_rotation, make_command
from tests.policykit import NOW, Clock, actions, audit_log, entry, signed_list, trusted

ADMIN = Ed25519PrivateKey.generate()
DEPT = Ed25519PrivateKey.generate()


class Device:
    """A device's command side with real nonce store, audit log, config and hot lists."""

    def __init__(self, tmp, healthy=True):
        self.clock = Clock()
        self.device_key = Ed25519PrivateKey.generate()
        self.audit = audit_log(tmp, self.device_key, self.clock)
        self.cfg = C.parse({"device": {"id": "pole-7", "agency": "demo-pd"}})
        self.applied: list[C.Config] = []
        self.healthy = healthy
        self.reboots = 0
        self.hotlists = HotlistManager(tmp / "hl", storage_key(self.device_key), trusted(DEPT), self.audit,
                                       clock=self.clock)

        def apply(cfg):
            self.applied.append(cfg)
            self.cfg = cfg
            return {"restart": False}

        def reboot():
            self.reboots += 1

        self.handlers = Handlers(
            status=lambda: {"version": "0.1.0", "backlog_records": 3},
            get_config=lambda: self.cfg, apply_config=apply, health_check=lambda: self.healthy,
            hotlists=self.hotlists, reboot=reboot, fetch_logs=lambda n: [f"line {i}" for i in range(n)],
        )
        self.nonce_path = tmp / "nonces.db"
        self.proc = self.make_proc(trusted(ADMIN))

    def make_proc(self, keys):
        return CommandProcessor("pole-7", "demo-pd", keys, NonceStore(self.nonce_path), self.audit, self.handlers,
                                clock=self.clock)

    def send(self, data: bytes) -> dict:
        return json.loads(self.proc.handle(data))


def cmd(name, key=ADMIN, **kw):
    kw.setdefault("now", NOW)
    return make_command(key, name, kw.pop("device", "pole-7"), kw.pop("agency", "demo-pd"), "alice", **kw)


@pytest.fixture()
def dev(tmp_path):
    return Device(tmp_path)


def test_status_round_trip_and_audit(dev):
    data = cmd("status", nonce="ab" * 16)
    res = dev.send(data)
    assert res["ok"] and res["result"]["backlog_records"] == 3 and res["nonce"] == "ab" * 16
    assert res["device"] == "pole-7" and res["command"] == "status"
    last = list(dev.audit.entries())[-1]
    assert last["actor"] == "remote:alice" and last["action"] == "cmd_done" and last["purpose"] == "maintenance"


def test_replay_refused_even_after_restart(dev):
    data = cmd("reboot")
    assert dev.send(data)["ok"] and dev.reboots == 1
    again = dev.send(data)
    assert not again["ok"] and "replay" in again["error"]
    dev.proc = dev.make_proc(trusted(ADMIN))  # a reboot: new processor, same nonce file
    replay = dev.send(data)
    assert "replay" in replay["error"] and dev.reboots == 1
    assert replay["nonce"] == json.loads(json.loads(data)["payload"])["nonce"]  # the sender can match it
    assert list(dev.audit.entries())[-1]["actor"] == "remote:alice"  # signature was good: issuer known


def test_unverified_issuer_is_not_blamed(dev):
    res = dev.send(cmd("reboot", key=Ed25519PrivateKey.generate()))
    assert not res["ok"] and res["nonce"]
    assert list(dev.audit.entries())[-1]["actor"] == "remote:unverified:alice"


def test_broadcast_to_all_devices(dev):
    assert dev.send(cmd("status", device="*"))["ok"]


@pytest.mark.parametrize(
    "make,why",
    [
        (lambda: b"", "not a JSON envelope"),
        (lambda: b"\xff\xfe", "not a JSON envelope"),
        (lambda: b"[1,2]", "must be a JSON object"),
        (lambda: json.dumps({"format": "polewatch-command/1", "payload": "{}"}).encode(), "unsigned"),
        (lambda: cmd("status").replace(b"status", b"reboot"), "bad signature"),
        (lambda: cmd("status", key=Ed25519PrivateKey.generate()), "does not trust"),
        (lambda: cmd("status", device="pole-8"), "addressed to"),
        (lambda: cmd("status", agency="other-pd"), "addressed to"),
        (lambda: cmd("status", now=NOW - timedelta(hours=1)), "expired"),
        (lambda: cmd("status", now=NOW + timedelta(hours=1)), "future"),
        (lambda: cmd("status", lifetime=timedelta(days=30)), "longer than"),
        (lambda: cmd("format_disk"), "unknown command"),
        (lambda: cmd("status", nonce="xyz"), "nonce"),
        (lambda: cmd("status", purpose="parking"), "not allowed by the ALPR policy"),
        (lambda: cmd("status", purpose="investigation"), "case"),
    ],
)
def test_bad_commands_refused_and_audited(dev, make, why):
    res = dev.send(make())
    assert not res["ok"] and why in res["error"], res["error"]
    last = list(dev.audit.entries())[-1]
    assert last["action"] == "cmd_refused" and why in last["detail"]["error"]
    assert dev.reboots == 0


def test_set_config_patch_validated_applied_and_rolled_back(tmp_path):
    dev = Device(tmp_path)
    res = dev.send(cmd("set_config", args={"patch": {"pipeline": {"min_confidence": 0.7}}}))
    assert res["ok"] and res["result"]["applied"] and dev.cfg.pipeline.min_confidence == 0.7
    bad = dev.send(cmd("set_config", args={"patch": {"pipeline": {"min_confidence": 7}}}))
    assert not bad["ok"] and "pipeline.min_confidence" in bad["error"]
    typo = dev.send(cmd("set_config", args={"patch": {"camera": {"fsp": 30}}}))
    assert not typo["ok"] and "camera.fsp" in typo["error"] and "unknown key" in typo["error"]
    ident = dev.send(cmd("set_config", args={"patch": {"device": {"id": "pole-9"}}}))
    assert not ident["ok"] and "provisioned" in ident["error"]
    dev.healthy = False
    rb = dev.send(cmd("set_config", args={"patch": {"camera": {"fps": 15}}}))
    assert not rb["ok"] and rb["result"]["rolled_back"]
    assert [c.camera.fps for c in dev.applied] == [30.0, 15.0, 30.0] and dev.cfg.camera.fps == 30.0
    assert "cmd_failed" in actions(dev.audit)


def test_update_hotlist_by_command(dev):
    hl = signed_list(DEPT, [entry("ABC123"), entry("PARK9", "parking")]).decode()
    res = dev.send(cmd("update_hotlist", args={"hotlist": hl}))
    assert res["ok"] and res["result"]["entries"] == 1 and res["result"]["refused_entries"] == 1
    assert dev.hotlists.match([("ABC123", 0.9)])
    audit_text = dev.audit.path.read_text()
    assert "ABC123" not in audit_text  # plates are not copied into the audit log
    stale = dev.send(cmd("update_hotlist", args={"hotlist": hl.replace("ABC123", "ABC124")}))
    assert not stale["ok"] and "hot list refused" in stale["error"]


def test_unavailable_handler_is_a_clear_error(dev):
    res = dev.send(cmd("start_update", args={"version": "1.2.3"}))
    assert not res["ok"] and "not available on this device" in res["error"]


def test_fetch_logs_bounds(dev):
    assert dev.send(cmd("fetch_logs", args={"lines": 3}))["result"]["lines"] == ["line 0", "line 1", "line 2"]
    assert "1-5000" in dev.send(cmd("fetch_logs", args={"lines": 10**6}))["error"]


def test_rotate_admin_keys_in_real_key_dir(tmp_path):
    keydir = tmp_path / "keys"
    K.init_device(keydir, "pole-7", "demo-pd")
    K.install_named_public(keydir, "admin", "alice", public_key_pem(ADMIN))
    dev = Device(tmp_path)
    dev.handlers.rotate_keys = key_rotation(keydir)
    dev.proc = dev.make_proc(admin_keys_from_dir(keydir))
    bob = Ed25519PrivateKey.generate()
    assert not dev.send(cmd("status", key=bob))["ok"]
    res = dev.send(cmd("rotate_keys", args={"admin_add": {"bob": public_key_pem(bob).decode()},
                                            "admin_remove": ["alice"]}))
    assert res["ok"] and res["result"] == {"admin_added": ["bob"], "admin_removed": ["alice"], "department_kid": None}
    assert dev.send(cmd("status", key=bob))["ok"]
    assert "does not trust" in dev.send(cmd("status"))["error"]  # alice's key no longer works
    last = dev.send(cmd("rotate_keys", key=bob, args={"admin_remove": ["bob"]}))
    assert not last["ok"] and "every admin key" in last["error"]


def test_evidence_hold_by_command(tmp_path, dev):
    from firmware.retention import EvidenceHolds
    from firmware.seal import Sealer
    from firmware.store import Outbox
    from tests.storekit import SITE, make_department, make_read, provision_device

    dk = provision_device(tmp_path / "keys", "pole-7", make_department(tmp_path / "dept"))
    outbox = Outbox(tmp_path / "outbox.db", C.StoreConfig(), Sealer.from_keys(dk, "pole-7"), location=SITE)
    rid = outbox.add_read(make_read("EVID123"))
    dev.handlers.holds = EvidenceHolds(tmp_path / "holds.db", outbox.path, dev.audit)
    nocase = dev.send(cmd("evidence_hold", args={"records": [rid]}, purpose="audit"))
    assert not nocase["ok"] and "case number" in nocase["error"]
    res = dev.send(cmd("evidence_hold", args={"records": [rid]}, purpose="investigation", case="24-0042"))
    assert res["ok"] and res["result"]["held"] == [rid]
    held = [e for e in dev.audit.entries() if e["action"] == "evidence_hold"][0]
    assert held["actor"] == "remote:alice" and held["case"] == "24-0042"
    outbox.close()


def test_sealed_snapshot_only_the_department_can_open(tmp_path, dev):
    import base64
    from types import SimpleNamespace

    import numpy as np

    from firmware.snapshot import SnapshotError, open_snapshot, snapshot_handler
    from tests.storekit import make_department, provision_device

    dept = make_department(tmp_path / "dept")
    dk = provision_device(tmp_path / "keys", "pole-7", dept)
    image = np.full((480, 640, 3), 120, np.uint8)
    frame = SimpleNamespace(image=image, exposure_us=2000.0, gain=2.0, illuminator="off")
    dev.handlers.snapshot = snapshot_handler(lambda: frame, "pole-7", dk)
    res = dev.send(cmd("snapshot"))
    assert res["ok"] and res["result"]["mean_brightness"] == 120.0 and res["result"]["exposure_us"] == 2000.0
    blob = base64.b64decode(res["result"]["sealed"])
    header, jpeg = open_snapshot(blob, dept.keys.private_keys, dk.public_key)
    assert jpeg.startswith(b"\xff\xd8") and header["device"] == "pole-7"
    with pytest.raises(SnapshotError):
        open_snapshot(blob[:-1] + bytes([blob[-1] ^ 1]), dept.keys.private_keys, dk.public_key)


def test_update_hotlist_gzip_base64(dev):
    import base64
    import gzip

    hl = gzip.compress(signed_list(DEPT, [entry("GZIP123")]))
    res = dev.send(cmd("update_hotlist", args={"hotlist_b64": base64.b64encode(hl).decode()}))
    assert res["ok"] and dev.hotlists.match([("GZIP123", 0.9)])
    assert "not base64" in dev.send(cmd("update_hotlist", args={"hotlist_b64": "!!"}))["error"]


def test_command_not_run_when_the_audit_log_cannot_be_written(tmp_path, dev):
    from firmware.audit import AuditLog

    dev.proc.audit = AuditLog(tmp_path / "blocked", Ed25519PrivateKey.generate())
    (tmp_path / "blocked").mkdir()  # the log path is unusable, as on a broken or full disk
    res = dev.send(cmd("reboot"))
    assert not res["ok"] and "audit log unavailable" in res["error"] and res["nonce"]
    assert dev.reboots == 0


@pytest.mark.parametrize("payload", [b'{"a": ' + b"9" * 5000 + b"}", b"[" * 100000 + b"]" * 100000,
                                     b'{"format":"polewatch-command/1","key_id":"x","payload":"\\ud800","signature":"00"}'])
def test_pathological_json_is_refused_not_raised(dev, payload):
    res = dev.send(payload)
    assert not res["ok"] and res["error"].startswith("command refused")
