"""The uplink against a broker that speaks only MQTT 3.1.1 (amqtt, real TLS).

A department may run an older broker. The device starts with MQTT 5, is
refused with "unacceptable protocol version", falls back to 3.1.1 and still
delivers every read exactly once, marked delivered only on the department's
ack; the department's receiver runs on 3.1.1 too.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from firmware.receiver import Receiver, ReceiverStore
from firmware.uplink import Uplink
from storekit import make_department, make_read, outbox_for, provision_device, uplink_cfg
from broker import RECEIVER


def test_falls_back_to_mqtt311_and_delivers_every_read_once(tmp_path, broker311, caplog):
    dept = make_department(tmp_path / "dept")
    devices = tmp_path / "devices"
    name = "pole-311"
    dk = provision_device(tmp_path / "keys", name, dept, broker311, register_dir=devices)
    ob = outbox_for(tmp_path / "outbox.db", dk, name)
    rng = np.random.default_rng(3)
    plates = [f"6TRJ{i:03d}" for i in range(25)]
    for p in plates:
        ob.add_read(make_read(p, rng))

    cert, key = broker311.client_cert(RECEIVER)
    store = ReceiverStore(tmp_path / "hq.db")
    rx = Receiver(host=broker311.host, port=broker311.port, ca_file=broker311.ca_file, cert_file=cert, key_file=key,
                  agency=broker311.agency, opener=dept.opener(devices), store=store,
                  ack_key=dept.keys.receiver_key, client_id="hq-311", protocol="mqtt311")
    stop = threading.Event()
    t = threading.Thread(target=rx.run, args=(stop,), daemon=True)
    t.start()
    assert rx.connected.wait(15), broker311.log_tail()

    up = Uplink(uplink_cfg(broker311, connect_timeout_s=2.0, mqtt5_retry_s=1.0), name, broker311.agency, ob, ca_file=dk.ca_file, cert_file=dk.tls_cert,
                key_file=dk.tls_key, receiver_keys=dk.receiver_keys)
    caplog.set_level(logging.INFO, logger="polewatch.uplink")
    up.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ob.backlog()["backlog_records"]:
            time.sleep(0.2)
        assert up.wait_connected(1)
        assert "falling back to MQTT 3.1.1" in caplog.text
        assert ob.backlog()["backlog_records"] == 0, ob.backlog()

        # the fall-back is not for ever: after mqtt5_retry_s the next connection tries MQTT 5
        # again (a broker only restarting or slow would get it back), then falls back again
        time.sleep(1.2)  # past mqtt5_retry_s
        broker311.restart()
        later = [f"6TRK{i:03d}" for i in range(5)]
        for p in later:
            ob.add_read(make_read(p, rng))
        plates += later
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ob.backlog()["backlog_records"]:
            time.sleep(0.2)
        assert ob.backlog()["backlog_records"] == 0, ob.backlog()
        assert "trying MQTT 5 again" in caplog.text
        assert caplog.text.count("falling back to MQTT 3.1.1") == 2
    finally:
        up.stop()
        stop.set()
        t.join(10)
    got = [r[0] for r in store.db.execute("SELECT plate FROM records WHERE kind = 'read' ORDER BY seq").fetchall()]
    assert got == plates
    assert "gaps" not in store.report()["devices"][name]
    ob.close()
