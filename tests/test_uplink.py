"""Uplink against a real Mosquitto with mTLS and per-device ACLs."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware.uplink import Uplink, encode_ack
from storekit import RunningReceiver, make_department, make_read, outbox_for, provision_device, uplink_cfg


@pytest.fixture
def site(tmp_path, broker, request):
    """A provisioned department and one device with its outbox."""
    dept = make_department(tmp_path / "dept")
    devices = tmp_path / "devices"
    name = "pole-" + request.node.name[-20:].replace("[", "-").replace("]", "").replace("_", "-").strip("-")
    dk = provision_device(tmp_path / "keys", name, dept, broker, register_dir=devices)
    ob = outbox_for(tmp_path / "outbox.db", dk, name)
    yield dict(dept=dept, devices=devices, dk=dk, ob=ob, name=name, tmp=tmp_path)
    ob.close()


def make_uplink(site, broker, **kw) -> Uplink:
    dk = site["dk"]
    return Uplink(uplink_cfg(broker, **kw), site["name"], broker.agency, site["ob"], ca_file=dk.ca_file,
                  cert_file=dk.tls_cert, key_file=dk.tls_key, receiver_keys=dk.receiver_keys,
                  telemetry_source=kw.pop("telemetry_source", None) if False else None)


class Listener:
    """A plain MQTT client under some identity, recording what it receives."""

    def __init__(self, broker, identity: str, topics: list[str], protocol=mqtt.MQTTv5):
        cert, key = broker.client_cert(identity)
        self.msgs: list[mqtt.MQTTMessage] = []
        self.sub_codes: list = []
        self.pub_codes: dict[int, object] = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{identity}-listener-{time.monotonic_ns()}",
                        protocol=protocol)
        c.tls_set(ca_certs=str(broker.ca_file), certfile=str(cert), keyfile=str(key))
        c.on_message = lambda cl, u, m: self.msgs.append(m)
        self.ready = threading.Event()
        c.on_subscribe = lambda cl, u, mid, codes, props: (self.sub_codes.extend(codes), self.ready.set())
        c.on_publish = lambda cl, u, mid, rc, props: self.pub_codes.__setitem__(mid, rc)
        # ready once subscribed (SUBACK), so nothing published afterwards is missed
        c.on_connect = lambda cl, u, f, rc, p: (cl.subscribe([(t, 1) for t in topics]) if topics
                                                 else self.ready.set())
        c.connect(broker.host, broker.port)
        c.loop_start()
        self.client = c
        assert self.ready.wait(10)
        time.sleep(0.2)

    def on(self, topic: str) -> list[bytes]:
        return [bytes(m.payload) for m in self.msgs if m.topic == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_reads_delivered_and_marked_only_after_department_ack(site, broker):
    ob = site["ob"]
    rng = np.random.default_rng(1)
    plates = [f"7ABC{i:03d}" for i in range(20)]
    for p in plates:
        ob.add_read(make_read(p, rng))
    up = make_uplink(site, broker)
    up.start()
    try:
        assert up.wait_connected(10)
        time.sleep(1.0)
        # nobody at headquarters yet: published, but nothing is delivered
        assert ob.backlog()["backlog_records"] == 20
        assert up.stats["published"] > 0 and up.stats["delivered"] == 0
        with RunningReceiver(broker, site["dept"], site["devices"], site["tmp"] / "hq.db") as hq:
            assert hq.wait_for(lambda: ob.backlog()["backlog_records"] == 0, 30), ob.backlog()
            assert hq.plates() == plates
            assert hq.query("SELECT count(*) FROM images")[0][0] == 40
            assert hq.store.gaps() == {}
    finally:
        up.stop()


def test_alerts_go_before_reads_and_text_before_images(site, broker):
    ob = site["ob"]
    rng = np.random.default_rng(2)
    for i in range(5):
        ob.add_read(make_read(f"READ{i}", rng))
    ob.add_alert(make_read("HOT1", rng), {"pattern": "HOT1", "purpose": "stolen-vehicle", "match": "exact",
                                         "case": "24-001234", "quality": 1.0})
    listener = Listener(broker, "hq-receiver", [broker.topic(site["name"], "#")])
    up = make_uplink(site, broker, inflight_window=100)
    up.start()
    try:
        deadline = time.monotonic() + 15
        while len([m for m in listener.msgs if m.topic.endswith(("reads", "alerts"))]) < 18 and time.monotonic() < deadline:
            time.sleep(0.05)
        order = [(m.topic.rsplit("/", 1)[1], json.loads(bytes(m.payload)[6:6 + int.from_bytes(bytes(m.payload)[4:6], "big")]))
                 for m in listener.msgs if m.topic.endswith(("reads", "alerts"))]
        assert len(order) == 18
        assert order[0][0] == "alerts" and order[0][1]["part"] == "text"
        parts = [h["part"] for _, h in order]
        assert parts[:6] == ["text"] * 6 and set(parts[6:]) == {"plate_jpeg", "vehicle_jpeg"}
        assert [h["seq"] for _, h in order[1:6]] == sorted(h["seq"] for _, h in order[1:6])
    finally:
        up.stop()
        listener.close()


def test_status_birth_will_and_telemetry(site, broker):
    ob = site["ob"]
    ob.add_read(make_read("TEL1"))
    status_topic = broker.topic(site["name"], "status")
    listener = Listener(broker, "hq-admin", [status_topic, broker.topic(site["name"], "telemetry")])
    dk = site["dk"]
    up = Uplink(uplink_cfg(broker, telemetry_interval_s=0.3), site["name"], broker.agency, ob, ca_file=dk.ca_file,
                cert_file=dk.tls_cert, key_file=dk.tls_key, receiver_keys=dk.receiver_keys,
                telemetry_source=lambda: {"fps": 29.5, "cpu_temp_c": 51.0})
    up.start()
    try:
        assert up.wait_connected(10)
        deadline = time.monotonic() + 10
        while not listener.on(broker.topic(site["name"], "telemetry")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.on(status_topic)[-1] == b"online"
        tel = json.loads(listener.on(broker.topic(site["name"], "telemetry"))[-1])
        assert tel["fps"] == 29.5 and tel["backlog_records"] >= 1 and "backlog_oldest_age_s" in tel
    finally:
        up.stop()
    deadline = time.monotonic() + 5
    while listener.on(status_topic)[-1] != b"offline" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.on(status_topic)[-1] == b"offline"
    listener.close()
    # retained: a late subscriber sees the last state
    late = Listener(broker, "hq-admin", [status_topic])
    time.sleep(0.3)
    assert late.on(status_topic) == [b"offline"]
    late.close()


def test_a_redelivered_message_already_handed_over_is_not_run_twice(site, broker):
    """QoS 1 is at least once: a command handed to its handler whose PUBACK was lost with the connection comes
    again on the resumed session, DUP set, under its packet id (CI once saw a status command run twice after
    mosquitto dropped the link). That redelivery is dropped; the same text sent anew (a new packet id, DUP
    clear) and a DUP message never seen before are handed over. Real paho messages, fed to the uplink's
    message callback as its network loop would."""
    up = make_uplink(site, broker)
    up.on_message("cmd", lambda payload: None)
    topic = broker.topic(site["name"], "cmd").encode()

    def message(mid: int, payload: bytes, dup: bool) -> mqtt.MQTTMessage:
        m = mqtt.MQTTMessage(mid=mid, topic=topic)
        m.payload, m.dup, m.qos = payload, dup, 1
        return m

    for mid, payload, dup in [(7, b'{"op":"status"}', False), (7, b'{"op":"status"}', True),
                              (8, b'{"op":"status"}', False), (9, b'{"op":"restart"}', True),
                              (7, b'{"op":"other"}', True)]:
        up._on_message(None, None, message(mid, payload, dup))
    handed = []
    while not up._work.empty():
        handed.append(up._work.get_nowait())
    assert handed == [("cmd", b'{"op":"status"}'), ("cmd", b'{"op":"status"}'), ("cmd", b'{"op":"restart"}'),
                      ("cmd", b'{"op":"other"}')]
    assert up.stats["dropped_messages"] == 1


def test_handlers_results_and_hostile_messages(site, broker):
    got: list[bytes] = []

    def cmd_handler(payload: bytes) -> bytes:
        got.append(payload)
        return b'{"ok":true}'

    def boom(payload: bytes) -> None:
        raise RuntimeError("handler bug")

    up = make_uplink(site, broker, max_message_bytes=2048)
    up.on_message("cmd", cmd_handler)
    up.on_message("config", boom)
    with pytest.raises(ValueError):
        up.on_message("reads", cmd_handler)
    admin = Listener(broker, "hq-admin", [broker.topic(site["name"], "cmd/result")])
    up.start()
    try:
        assert up.wait_connected(10)
        time.sleep(0.3)
        admin.client.publish(broker.topic(site["name"], "cmd"), b"x" * 5000, qos=1)  # oversized
        admin.client.publish(broker.topic(site["name"], "config"), b"{}", qos=1)  # handler raises
        admin.client.publish(broker.topic(site["name"], "hotlist"), b"\xff\x00", qos=1)  # no handler
        admin.client.publish(broker.topic(site["name"], "cmd"), b'{"op":"status"}', qos=1)
        deadline = time.monotonic() + 10
        while not admin.on(broker.topic(site["name"], "cmd/result")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [b'{"op":"status"}']
        assert admin.on(broker.topic(site["name"], "cmd/result")) == [b'{"ok":true}']
        # the oversized command never reaches a handler: MQTT 5 tells the broker our maximum
        # packet size, so it is not even delivered (MQTT 3.1.1: the uplink drops it)
        assert up.stats["dropped_messages"] >= 1 and up.stats["handler_errors"] == 1
        assert up.connected
    finally:
        up.stop()
        admin.close()


def test_unsigned_or_forged_acks_are_dropped(site, broker, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ob = site["ob"]
    rid = ob.add_read(make_read("FORGE1"))
    up = make_uplink(site, broker)
    up.start()
    # the receiver identity may publish acks, but this one is signed by the wrong key
    rogue = Listener(broker, "hq-receiver", [])
    try:
        assert up.wait_connected(10)
        ack_topic = broker.topic(site["name"], "ack")
        parts = [(rid, "text"), (rid, "plate_jpeg"), (rid, "vehicle_jpeg")]
        rogue.client.publish(ack_topic, encode_ack(site["name"], parts, Ed25519PrivateKey.generate()), qos=1)
        rogue.client.publish(ack_topic, json.dumps({"v": 1, "device": site["name"], "acks": parts}).encode(), qos=1)
        rogue.client.publish(ack_topic, b"\x00" * 10, qos=1)
        deadline = time.monotonic() + 10
        while up.stats["dropped_messages"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert up.stats["dropped_messages"] == 3
        assert ob.backlog()["backlog_records"] == 1 and up.stats["delivered"] == 0
        # a genuine ack from the receiver key is accepted
        rogue.client.publish(ack_topic, encode_ack(site["name"], parts, site["dept"].keys.receiver_key), qos=1)
        deadline = time.monotonic() + 10
        while ob.backlog()["backlog_records"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ob.backlog()["backlog_records"] == 0
    finally:
        up.stop()
        rogue.close()


def test_puback_mode_and_mqtt311(site, broker):
    ob = site["ob"]
    for i in range(5):
        ob.add_read(make_read(f"PUB{i}", images=False))
    listener = Listener(broker, "hq-receiver", [broker.topic(site["name"], "reads")])
    up = make_uplink(site, broker, ack_mode="puback", protocol="mqtt311")
    up.start()
    try:
        deadline = time.monotonic() + 10
        while ob.backlog()["backlog_records"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ob.backlog()["backlog_records"] == 0
        assert len(listener.on(broker.topic(site["name"], "reads"))) >= 5
    finally:
        up.stop()
        listener.close()


def test_bandwidth_budget_sends_text_first(site, broker):
    ob = site["ob"]
    rng = np.random.default_rng(3)
    big = bytes(rng.integers(0, 255, 60_000, dtype=np.uint8))
    for i in range(4):
        ob.add_read(make_read(f"BW{i}", rng, vehicle_jpeg=big))
    listener = Listener(broker, "hq-receiver", [broker.topic(site["name"], "reads")])
    up = make_uplink(site, broker, bandwidth_bytes_per_s=20_000)
    up.start()
    try:
        time.sleep(2.0)
        msgs = listener.on(broker.topic(site["name"], "reads"))
        heads = [json.loads(m[6:6 + int.from_bytes(m[4:6], "big")])["part"] for m in msgs]
        assert heads[:4] == ["text"] * 4
        sent = sum(len(m) for m in msgs)
        # 2 s at 20 kB/s plus the 40 kB burst allowance (one message may overdraw)
        assert sent <= 20_000 * 2 + 40_000 + 61_000, sent
        assert "vehicle_jpeg" not in heads[:8] or heads.count("vehicle_jpeg") <= 2
    finally:
        up.stop()
        listener.close()


def test_acl_device_cannot_touch_another_devices_topics(broker):
    """Device A's certificate cannot publish as B, read B's commands or B's reads."""
    a, b = "pole-acl-a", "pole-acl-b"
    hq = Listener(broker, "hq-receiver", [broker.topic(b, "reads")])
    mallory = Listener(broker, a, [broker.topic(b, "cmd"), broker.topic(b, "reads"), broker.topic(b, "ack"),
                                   f"polewatch/v1/{broker.agency}/+/reads", "#"])
    admin = Listener(broker, "hq-admin", [])
    dev_b = Listener(broker, b, [])
    try:
        mallory.client.publish(broker.topic(a, "reads"), b"A's own read", qos=1).wait_for_publish(5)
        admin.client.publish(broker.topic(b, "cmd"), b"secret command for B", qos=1).wait_for_publish(5)
        dev_b.client.publish(broker.topic(b, "reads"), b"B's genuine read", qos=1).wait_for_publish(5)
        info = mallory.client.publish(broker.topic(b, "reads"), b"forged read", qos=1)
        deadline = time.monotonic() + 5
        while info.mid not in mallory.pub_codes and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)
        assert hq.on(broker.topic(b, "reads")) == [b"B's genuine read"]
        assert mallory.msgs == []
        assert mallory.pub_codes[info.mid].is_failure  # MQTT 5: PUBACK "Not authorized"
        assert str(mallory.pub_codes[info.mid]) == "Not authorized"
    finally:
        for c in (hq, mallory, admin, dev_b):
            c.close()


def test_backoff_grows_with_jitter_and_resets():
    import random

    from firmware.uplink.backoff import Backoff, TokenBucket

    b = Backoff(1.0, 60.0, random.Random(3))
    delays = [b.next_delay() for _ in range(10)]
    caps = [min(60.0, 2.0**i) for i in range(10)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps))
    assert len({round(d / c, 6) for d, c in zip(delays, caps)}) > 5  # jittered, not lockstep
    b.reset()
    assert b.next_delay() <= 1.0
    bucket = TokenBucket(10_000)
    assert bucket.try_take(15_000) and not bucket.try_take(10_000)
    assert TokenBucket(None).try_take(10**9)


def test_last_will_offline_when_the_device_process_is_killed(tmp_path, broker):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    dept = make_department(tmp_path / "dept")
    provision_device(tmp_path / "keys", "pole-will", dept, broker, register_dir=tmp_path / "devices")
    status = broker.topic("pole-will", "status")
    admin = Listener(broker, "hq-admin", [status])
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fault_device.py"), "--keys", str(tmp_path / "keys"),
         "--db", str(tmp_path / "o.db"), "--device", "pole-will", "--host", broker.host, "--port", str(broker.port),
         "--count", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while admin.on(status)[-1:] != [b"online"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert admin.on(status)[-1:] == [b"online"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while admin.on(status)[-1:] != [b"offline"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert admin.on(status)[-1:] == [b"offline"]  # the broker published the last will
    finally:
        proc.kill()
        admin.close()
