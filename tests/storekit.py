"""Helpers for the store, seal, uplink and receiver tests: provisioning a
device and the department with real keys, certificates signed by the test
broker's CA, and plate reads with real JPEG bytes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from firmware import keys as K
from firmware.config import StoreConfig, UplinkConfig
from firmware.records import Candidate, PlateRead
from firmware.receiver import Receiver, ReceiverStore
from firmware.seal import Opener, Sealer
from firmware.store import Outbox

SITE = {"latitude": 37.77, "longitude": -122.42, "description": "Test pole: Main St at 1st, northbound"}


def jpeg(rng: np.random.Generator, w: int, h: int, quality: int = 85) -> bytes:
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def make_read(plate: str, rng: np.random.Generator | None = None, images: bool = True,
              plate_jpeg: bytes | None = None, vehicle_jpeg: bytes | None = None) -> PlateRead:
    rng = rng or np.random.default_rng(0)
    now = datetime.now(timezone.utc)
    if images and plate_jpeg is None:
        plate_jpeg = jpeg(rng, 120, 60)
    if images and vehicle_jpeg is None:
        vehicle_jpeg = jpeg(rng, 320, 240)
    return PlateRead(
        plate=plate, confidence=0.93, candidates=[Candidate(plate, 0.93), Candidate(plate[::-1], 0.04)],
        capture_time=now, first_seen=now, last_seen=now, clock_synced=True, box=(10, 10, 120, 60),
        plate_jpeg=plate_jpeg or b"", vehicle_jpeg=vehicle_jpeg or b"", ground_truth=plate,
    )


@dataclass
class Department:
    dir: Path
    kid: str

    @property
    def keys(self) -> K.DepartmentKeys:
        return K.DepartmentKeys.load(self.dir)

    def opener(self, devices_dir: Path) -> Opener:
        return Opener(self.keys.private_keys, K.load_device_public_keys(devices_dir))


def make_department(tmp: Path, kid: str = "k2026a") -> Department:
    K.DepartmentKeys.generate(tmp, kid)
    return Department(tmp, kid)


def provision_device(keydir: Path, device_id: str, dept: Department, broker=None, agency: str = "demo-pd",
                     register_dir: Path | None = None) -> K.DeviceKeys:
    """What `polewatch keys init` + the department PKI + `keys install-*` do."""
    csr = K.init_device(keydir, device_id, agency)
    if broker is not None:
        K.install_cert(keydir, broker.sign_csr(csr.read_bytes()))
        K.install_ca(keydir, broker.ca_file.read_bytes())
    for pub in sorted(dept.dir.glob("*.pub")):
        if pub.stem == "receiver":
            K.install_named_public(keydir, "receiver", "hq", pub.read_bytes())
    K.install_department_key(keydir, (dept.dir / f"{dept.kid}.pub").read_bytes(), dept.kid)
    if register_dir is not None:  # the department registers the device's signing key
        register_dir.mkdir(parents=True, exist_ok=True)
        (register_dir / f"{device_id}.pub").write_bytes((keydir / "device.pub").read_bytes())
    return K.DeviceKeys.load(keydir)


def outbox_for(path: Path, dk: K.DeviceKeys, device_id: str, audit=None, **cfg) -> Outbox:
    return Outbox(path, StoreConfig(**cfg), Sealer.from_keys(dk, device_id), location=SITE, audit=audit)


def uplink_cfg(broker, **kw) -> UplinkConfig:
    base = dict(enabled=True, host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=1.0,
                ack_timeout_s=5.0, telemetry_interval_s=3600, keepalive_s=10)
    base.update(kw)
    return UplinkConfig(**base)


class RunningReceiver:
    """A Receiver thread with its own store, for tests."""

    def __init__(self, broker, dept: Department, devices_dir: Path, db: Path, client_id: str | None = None,
                 reload_devices: bool = False):
        import uuid

        client_id = client_id or f"hq-receiver-{uuid.uuid4().hex[:8]}"
        from broker import RECEIVER
        cert, key = broker.client_cert(RECEIVER)
        self.store = ReceiverStore(db)
        self.receiver = Receiver(
            host=broker.host, port=broker.port, ca_file=broker.ca_file, cert_file=cert, key_file=key,
            agency=broker.agency, opener=dept.opener(devices_dir), store=self.store,
            ack_key=dept.keys.receiver_key, client_id=client_id,
            device_keys_loader=(lambda: K.load_device_public_keys(devices_dir)) if reload_devices else None,
        )
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.receiver.run, args=(self._stop,), daemon=True)

    def __enter__(self) -> RunningReceiver:
        self.thread.start()
        assert self.receiver.connected.wait(10), "receiver did not connect"
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(10)

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        import sqlite3
        con = sqlite3.connect(self.store.path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def plates(self) -> list[str]:
        return [r[0] for r in self.query("SELECT plate FROM records WHERE kind != 'audit' ORDER BY seq")]

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()
