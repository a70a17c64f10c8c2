"""Remote maintenance end to end: fleet CLI library -> real Mosquitto (mTLS, ACLs) -> device uplink ->
CommandProcessor -> cmd/result, with the audit mirrored to the department through the outbox."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from firmware import config as C
from firmware import keys as K
from firmware.envelope import public_key_pem
from firmware.fleet import Fleet
from firmware.policy import Policy
from firmware.remote import make_command
from firmware.uplink import Uplink
from tests.policykit import entry, signed_list
from tests.storekit import make_department, outbox_for, provision_device, uplink_cfg

ADMIN = Ed25519PrivateKey.generate()
DEPT_LIST = Ed25519PrivateKey.generate()


@pytest.fixture()
def pole(tmp_path, broker):
    name = "pole-remote-e2e"
    dk = provision_device(tmp_path / "keys", name, make_department(tmp_path / "dept"), broker)
    K.install_named_public(tmp_path / "keys", "admin", "alice", public_key_pem(ADMIN))
    (tmp_path / "keys" / "hotlist").mkdir()
    (tmp_path / "keys" / "hotlist" / "hq.pub").write_bytes(public_key_pem(DEPT_LIST))
    cfg = C.parse({"device": {"id": name, "agency": broker.agency, "data_dir": str(tmp_path / "data")},
                   "keys": {"dir": str(tmp_path / "keys")}})
    ob = outbox_for(tmp_path / "outbox.db", dk, name)
    up = Uplink(uplink_cfg(broker, ack_mode="puback", telemetry_interval_s=0.5), name, broker.agency, ob,
                ca_file=dk.ca_file, cert_file=dk.tls_cert, key_file=dk.tls_key, receiver_keys=dk.receiver_keys,
                telemetry_source=lambda: {"versions": {"firmware": "0.1.0"}})
    policy = Policy(cfg, dk, ob, telemetry=lambda: {"backlog": ob.backlog()})
    policy.register(up)
    up.start()
    assert up.wait_connected(10)
    cert, key = broker.client_cert("hq-admin")
    fleet = Fleet(broker.host, broker.port, broker.agency, str(broker.ca_file), str(cert), str(key)).connect()
    yield dict(name=name, policy=policy, outbox=ob, fleet=fleet, broker=broker, cfg=cfg)
    fleet.close()
    up.stop()
    ob.close()


def test_fleet_commands_over_mqtt(pole):
    name, fleet, policy = pole["name"], pole["fleet"], pole["policy"]
    agency = pole["broker"].agency
    status = make_command(ADMIN, "status", name, agency, "alice")
    res = fleet.send({name: status}, wait_s=10)[name]
    assert res is not None and res["ok"], res
    assert res["result"]["policy"]["reading_allowed"] is True and res["result"]["backlog"]["backlog_records"] >= 0
    # the same signed bytes again: a replay
    fleet.results.clear()
    again = fleet.send({name: status}, wait_s=10)[name]
    assert again is not None and not again["ok"] and "replay" in again["error"]
    # a hot list by command, then a config change
    hl = signed_list(DEPT_LIST, [entry("ABC123")]).decode()
    up = fleet.send({name: make_command(ADMIN, "update_hotlist", name, agency, "alice", {"hotlist": hl})})[name]
    assert up["ok"] and up["result"]["entries"] == 1
    assert policy.hotlists.match([("A8C123", 0.9)])
    # refused and audited: a command signed by a key the device does not trust
    rogue = make_command(Ed25519PrivateKey.generate(), "reboot", name, agency, "mallory")
    bad = fleet.send({name: rogue})[name]
    assert not bad["ok"] and "does not trust" in bad["error"]
    acts = [e["action"] for e in policy.audit.entries()]
    assert acts.count("cmd_done") == 2 and "cmd_refused" in acts and "hotlist_installed" in acts
    assert policy.audit.verify().ok
    # status, versions and last contact from the retained status and telemetry
    rows = {r["device"]: r for r in fleet.observe(1.5)}
    row = rows[name]
    assert row["status"] == "online" and row["versions"] == {"firmware": "0.1.0"} and row["last_contact_age_s"] < 30
    assert row["backlog_records"] is not None


def test_hostile_bytes_on_cmd_get_an_error_result(pole):
    broker, name = pole["broker"], pole["name"]
    cert, key = broker.client_cert("hq-admin")
    got: list[bytes] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile", protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(broker.ca_file), certfile=str(cert), keyfile=str(key))
    c.on_message = lambda cl, u, m: got.append(bytes(m.payload))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe(broker.topic(name, "cmd/result"), qos=1)
        time.sleep(0.3)
        for payload in (b"\x00\xff garbage", b'{"format":"polewatch-command/1"}', b"[]" * 1000):
            c.publish(broker.topic(name, "cmd"), payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        c.loop_stop()
        c.disconnect()
    results = [json.loads(g) for g in got]
    assert len(results) == 3 and not any(r["ok"] for r in results)
    assert all(r["error"].startswith("command refused") for r in results)
    refused = [e for e in pole["policy"].audit.entries() if e["action"] == "cmd_refused"]
    assert len(refused) == 3
    # the audit entries are mirrored to the department as sealed audit records in the outbox
    kinds = {i.kind for i in pole["outbox"].pending(1000)}
    assert "audit" in kinds or pole["outbox"].backlog()["backlog_records"] == 0


def test_fleet_cli_send_and_status(pole, tmp_path, capsys):
    from firmware.cli import main
    from firmware.envelope import private_key_pem

    broker, name = pole["broker"], pole["name"]
    cert, key = broker.client_cert("hq-admin")
    (tmp_path / "alice.pem").write_bytes(private_key_pem(ADMIN))
    conn = ["--host", broker.host, "--port", str(broker.port), "--ca", str(broker.ca_file), "--cert", str(cert),
            "--cert-key", str(key), "--agency", broker.agency]
    assert main(["fleet", "send", "status", "--device", name, "--key", str(tmp_path / "alice.pem"),
                 "--issuer", "alice", "--wait", "10"] + conn) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert res["device"] == name and res["answered"] and res["ok"]
    assert main(["fleet", "send", "set_config", "--device", name, "--patch", '{"camera": {"fsp": 1}}',
                 "--key", str(tmp_path / "alice.pem"), "--issuer", "alice"] + conn) == 1
    assert "camera.fsp" in json.loads(capsys.readouterr().out.splitlines()[-1])["error"]
    assert main(["fleet", "status", "--wait", "1.5"] + conn) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert any(r["device"] == name and r["status"] == "online" for r in rows)
    assert main(["fleet", "status", "--host", broker.host, "--port", str(broker.port)]) == 2  # no TLS files
