"""The department's reference receiver against the real broker."""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest

from firmware.cli import main
from firmware.seal import Sealer
from firmware.uplink import decode_ack
from storekit import RunningReceiver, make_department, make_read, outbox_for, provision_device
from test_uplink import Listener


def test_dedupe_gaps_rejections_and_early_images(tmp_path, broker, capsys):
    dept = make_department(tmp_path / "dept")
    devices = tmp_path / "devices"
    a, b = "pole-rx-a", "pole-rx-b"
    dka = provision_device(tmp_path / "ka", a, dept, broker, register_dir=devices)
    dkb = provision_device(tmp_path / "kb", b, dept, broker, register_dir=devices)
    ob = outbox_for(tmp_path / "a.db", dka, a)
    rng = np.random.default_rng(4)
    for i in range(4):
        ob.add_read(make_read(f"RX{i}", rng))
    items = ob.pending(100)
    text = {it.seq: it for it in items if it.part == "text"}
    imgs = [it for it in items if it.part != "text"]
    obb = outbox_for(tmp_path / "b.db", dkb, b)
    obb.add_read(make_read("BREAD1", rng))
    b_text = obb.pending(1, lane=0)[0].data
    foreign = Sealer("pole-rx-c", dka.signing_key, dka.department_keys, dka.current_kid)

    dev = Listener(broker, a, [broker.topic(a, "ack")])
    with RunningReceiver(broker, dept, devices, tmp_path / "hq.db") as hq:
        pub = lambda payload: dev.client.publish(broker.topic(a, "reads"), payload, qos=1).wait_for_publish(5)  # noqa: E731
        pub(imgs[0].data)  # image before its text: held, acknowledged once the text is in
        pub(text[1].data)
        pub(text[1].data)  # a resend
        pub(text[2].data)
        pub(text[4].data)  # seq 3 not sent: a gap
        pub(b"\x00garbage")
        pub(b_text)  # B's record replayed on A's topic
        seq1 = ob.pending(1, lane=0)[0]
        pub(foreign.seal({"id": seq1.id, "device": "pole-rx-c", "seq": 1, "kind": "audit", "entry": {}}).parts["text"])
        assert hq.wait_for(lambda: hq.receiver.stats["rejected"] >= 3 and len(hq.plates()) == 3, 10)
        time.sleep(0.3)
        assert hq.plates() == ["RX0", "RX1", "RX3"]
        assert hq.receiver.stats["duplicates"] == 1
        assert hq.store.gaps() == {a: [[3, 3]]}
        assert hq.query("SELECT count(*) FROM images")[0][0] == 1
        acked = [x for m in dev.on(broker.topic(a, "ack")) for x in decode_ack(m, a, dka.receiver_keys)]
        assert (text[1].id, "text") in acked and (imgs[0].id, imgs[0].part) in acked
        assert acked.count((text[1].id, "text")) == 2  # a resend is acknowledged again
    dev.close()
    assert main(["receive", "--db", str(tmp_path / "hq.db"), "--report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["devices"][a]["gaps"] == [[3, 3]] and report["devices"][a]["missing"] == 1
    ob.close()
    obb.close()


@pytest.fixture
def pg_url(pg_server):
    """A fresh schema in the tests' private PostgreSQL, dropped afterwards."""
    import psycopg

    schema = f"pw_test_{uuid.uuid4().hex[:10]}"
    yield f"{pg_server}#{schema}"
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_receive_cli_runs_against_the_broker(tmp_path, broker, capsys, backend, request):
    from firmware.uplink import Uplink
    from storekit import uplink_cfg

    dept = make_department(tmp_path / "dept")
    devices = tmp_path / "devices"
    dk = provision_device(tmp_path / "k", "pole-cli", dept, broker, register_dir=devices)
    ob = outbox_for(tmp_path / "o.db", dk, "pole-cli")
    for i in range(3):
        ob.add_read(make_read(f"CLI{i}"))
    up = Uplink(uplink_cfg(broker, ack_timeout_s=1.0), "pole-cli", broker.agency, ob, ca_file=dk.ca_file,
                cert_file=dk.tls_cert, key_file=dk.tls_key, receiver_keys=dk.receiver_keys)
    up.start()
    cert, key = broker.client_cert("hq-receiver")
    db = str(tmp_path / "hq.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    try:
        rc = main(["receive", "--db", db, "--host", broker.host, "--port", str(broker.port),
                   "--ca", str(broker.ca_file), "--cert", str(cert), "--key", str(key), "--client-id", f"hq-cli-{backend}",
                   "--department-keys", str(dept.dir), "--device-keys", str(devices), "--duration", "4"])
    finally:
        deadline = time.monotonic() + 5
        while ob.backlog()["backlog_records"] and time.monotonic() < deadline:
            time.sleep(0.05)
        up.stop()
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["devices"]["pole-cli"]["records"] == 3
    assert ob.backlog()["backlog_records"] == 0
    assert len(ob.pending(10)) == 0
    # the report reads the same store back; a duplicate stays out
    capsys.readouterr()
    assert main(["receive", "--db", db, "--report"]) == 0
    assert json.loads(capsys.readouterr().out)["devices"]["pole-cli"]["records"] == 3
    ob.close()


def test_postgres_store_dedupes_and_reports_gaps(pg_url):
    from firmware.receiver import open_store

    store = open_store(pg_url)
    base = {"kind": "read", "capture_time": "2026-11-28T17:00:00+00:00", "plate": "PG1", "confidence": 0.9}
    for seq in (1, 2, 2, 5):
        store.add_record({**base, "id": f"id-{seq}", "device": "pole-pg", "seq": seq})
    store.add_image("id-1", "plate_jpeg", b"\xff\xd8jpeg")
    store.hold_early_image("id-9", "vehicle_jpeg", "pole-pg", b"envelope")
    store.commit()
    assert store.take_early_images("id-9") == [("vehicle_jpeg", "pole-pg", b"envelope")]
    store.commit()
    assert store.duplicates == 1
    assert store.gaps() == {"pole-pg": [[3, 4]]}
    rep = store.report()
    assert rep["devices"]["pole-pg"]["records"] == 3 and rep["devices"]["pole-pg"]["missing"] == 2
    assert rep["images"] == 1
    store.close()


def test_newly_registered_device_is_picked_up_without_restart(tmp_path, broker):
    dept = make_department(tmp_path / "dept")
    devices = tmp_path / "devices"
    devices.mkdir()
    with RunningReceiver(broker, dept, devices, tmp_path / "hq.db", reload_devices=True) as hq:
        dk = provision_device(tmp_path / "k", "pole-new", dept, broker, register_dir=devices)  # after start
        ob = outbox_for(tmp_path / "o.db", dk, "pole-new")
        ob.add_read(make_read("NEW1"))
        dev = Listener(broker, "pole-new", [])
        dev.client.publish(broker.topic("pole-new", "reads"), ob.pending(1, lane=0)[0].data, qos=1).wait_for_publish(5)
        assert hq.wait_for(lambda: hq.plates() == ["NEW1"], 10)
        dev.close()
        ob.close()
