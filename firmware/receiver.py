"""The department's reference receiver: the other end of the uplink.

Subscribes to every device's `reads`, `alerts` and `audit` with its own
certificate, verifies each device's signature, opens records with the
department's private key(s) (any key id still held), stores them in SQLite
(one row per record id, so resends are removed), commits, and only then
acknowledges the ids on the device's `ack` topic, signed with the receiver
key. `report()` lists per-device sequence gaps: the proof that nothing was
lost. Operators run it as `polewatch receive`; tests use it to count.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware.seal import Opener, SealError, parse_envelope
from firmware.uplink.acks import encode_ack

log = logging.getLogger("polewatch.receiver")

RECORD_CHANNELS = ("reads", "alerts", "audit")
MAX_ENVELOPE = 16 * 1024 * 1024


SCHEMA = """
CREATE TABLE IF NOT EXISTS records(
    id TEXT PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    capture_time TEXT, plate TEXT, confidence REAL, received_at DOUBLE PRECISION NOT NULL,
    record TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS records_dev_seq ON records(device, seq);
CREATE TABLE IF NOT EXISTS images(
    id TEXT NOT NULL, part TEXT NOT NULL, data {blob} NOT NULL, PRIMARY KEY(id, part));
CREATE TABLE IF NOT EXISTS early_images(
    id TEXT NOT NULL, part TEXT NOT NULL, device TEXT NOT NULL, envelope {blob} NOT NULL,
    PRIMARY KEY(id, part));
"""


class ReceiverStore:
    """Headquarters' record store; duplicates are ignored by id.

    `ReceiverStore(path)` is SQLite; `open_store(url)` also takes
    `postgresql://...` (needs psycopg). The SQL is the same apart from the
    placeholder and the blob type."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db: Any = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA.format(blob="BLOB"))
        self.duplicates = 0
        self._ph = "?"

    # -- dialect seams -------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self._ph == "?" else sql.replace("?", "%s")

    def _exec(self, sql: str, args: tuple = ()) -> Any:
        return self.db.execute(self._sql(sql), args)

    def begin(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    # -- records ---------------------------------------------------------------
    def add_record(self, rec: dict[str, Any]) -> bool:
        """Insert a record; False if its id (or device+seq) is already stored."""
        self.begin()
        cur = self._exec(
            "INSERT INTO records(id, device, seq, kind, capture_time, plate, confidence, received_at, record)"
            " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                rec["id"], rec["device"], rec["seq"], rec["kind"], rec.get("capture_time"), rec.get("plate"),
                rec.get("confidence"), time.time(), json.dumps(rec, separators=(",", ":")),
            ),
        )
        if cur.rowcount == 0:
            self.duplicates += 1
            return False
        return True

    def record(self, rid: str) -> dict[str, Any] | None:
        row = self._exec("SELECT record FROM records WHERE id=?", (rid,)).fetchone()
        return json.loads(row[0]) if row else None

    def add_image(self, rid: str, part: str, data: bytes) -> bool:
        self.begin()
        cur = self._exec("INSERT INTO images(id, part, data) VALUES (?,?,?) ON CONFLICT DO NOTHING", (rid, part, data))
        return cur.rowcount > 0

    def hold_early_image(self, rid: str, part: str, device: str, blob: bytes) -> None:
        self.begin()
        self._exec(
            "INSERT INTO early_images(id, part, device, envelope) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
            (rid, part, device, blob),
        )

    def take_early_images(self, rid: str) -> list[tuple[str, str, bytes]]:
        rows = self._exec("SELECT part, device, envelope FROM early_images WHERE id=?", (rid,)).fetchall()
        if rows:
            self.begin()
            self._exec("DELETE FROM early_images WHERE id=?", (rid,))
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def gaps(self) -> dict[str, list[list[int]]]:
        """Per device, the missing sequence ranges [first, last] below its highest seq."""
        out: dict[str, list[list[int]]] = defaultdict(list)
        rows = self._exec(
            "SELECT device, prev, seq FROM (SELECT device, seq, LAG(seq, 1, 0) OVER "
            "(PARTITION BY device ORDER BY seq) AS prev FROM records) AS s WHERE seq > prev + 1 ORDER BY device, seq"
        ).fetchall()
        for device, prev, seq in rows:
            out[device].append([prev + 1, seq - 1])
        return dict(out)

    def report(self) -> dict[str, Any]:
        devices = {}
        for device, n, lo, hi, reads, alerts, audit in self._exec(
            "SELECT device, count(*), min(seq), max(seq), sum(CASE WHEN kind='read' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN kind='alert' THEN 1 ELSE 0 END), sum(CASE WHEN kind='audit' THEN 1 ELSE 0 END) "
            "FROM records GROUP BY device"
        ).fetchall():
            devices[device] = {
                "records": n, "first_seq": lo, "last_seq": hi, "reads": reads, "alerts": alerts, "audit": audit,
            }
        gaps = self.gaps()
        for device, g in gaps.items():
            devices[device]["gaps"] = g
            devices[device]["missing"] = sum(b - a + 1 for a, b in g)
        images = self._exec("SELECT count(*) FROM images").fetchone()[0]
        return {"devices": devices, "images": images, "duplicates_ignored": self.duplicates}

    def close(self) -> None:
        self.commit()
        self.db.close()


class PostgresReceiverStore(ReceiverStore):
    """The same store in PostgreSQL (psycopg 3); `schema` keeps deployments or tests apart."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        try:
            import psycopg
        except ImportError:
            raise RuntimeError("PostgreSQL storage needs the 'psycopg' package (pip install 'psycopg[binary]')") from None
        self.path = Path(url.split("@")[-1])  # for messages only; never holds a password
        self.db = psycopg.connect(url, autocommit=True)
        self._ph = "%s"
        self.duplicates = 0
        self._tx = False
        if schema:
            if not schema.replace("_", "").isalnum():
                raise ValueError(f"schema name {schema!r}: letters, digits and '_' only")
            self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self.db.execute(f"SET search_path TO {schema}")
        for stmt in SCHEMA.format(blob="BYTEA").split(";"):
            if stmt.strip():
                self.db.execute(stmt)

    def begin(self) -> None:
        if not self._tx:
            self.db.execute("BEGIN")
            self._tx = True

    def commit(self) -> None:
        if self._tx:
            self.db.execute("COMMIT")
            self._tx = False


def open_store(url: str) -> ReceiverStore:
    """`postgresql://user@host/db[#schema]` or a SQLite path / `sqlite:///path`."""
    if url.startswith(("postgresql://", "postgres://")):
        base, _, schema = url.partition("#")
        return PostgresReceiverStore(base, schema or None)
    return ReceiverStore(Path(url.removeprefix("sqlite:///")))


class Receiver:
    """MQTT client at headquarters: verify, open, store, commit, then ack."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ca_file: str | Path,
        cert_file: str | Path,
        key_file: str | Path,
        agency: str,
        opener: Opener,
        store: ReceiverStore,
        ack_key: Ed25519PrivateKey,
        client_id: str = "hq-receiver",
        flush_interval_s: float = 0.02,
        flush_max: int = 500,
        device_keys_loader: Callable[[], dict[str, Any]] | None = None,
        protocol: str = "mqtt5",
    ) -> None:
        if protocol not in ("mqtt5", "mqtt311"):
            raise ValueError(f"protocol must be 'mqtt5' or 'mqtt311', got {protocol!r}")
        self.host, self.port, self.agency = host, port, agency
        # an older department broker may speak only MQTT 3.1.1; the session is persistent either way
        self.v5 = protocol == "mqtt5"
        self.opener, self.store, self.ack_key = opener, store, ack_key
        self.flush_interval_s, self.flush_max = flush_interval_s, flush_max
        # re-reads the device register when an unknown device shows up (a newly
        # provisioned pole), at most every few seconds
        self._load_devices = device_keys_loader
        self._last_device_reload = 0.0
        self._acks: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._unflushed = 0
        self._last_flush = time.monotonic()
        self.stats = {"received": 0, "stored": 0, "duplicates": 0, "images": 0, "rejected": 0, "acks_sent": 0}
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311, clean_session=None if self.v5 else False)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        ctx.load_cert_chain(str(cert_file), str(key_file))
        c.tls_set_context(ctx)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self.connected.clear()
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the receiver: %s", rc)
            return
        base = f"polewatch/v1/{self.agency}/+"
        client.subscribe([(f"{base}/{ch}", 1) for ch in RECORD_CHANNELS])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("broker refused the receiver's subscriptions: %s", refused)
            return
        self.connected.set()  # subscribed: from here on nothing published is missed

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.stats["received"] += 1
        parts = msg.topic.split("/")
        if len(parts) != 5 or parts[4] not in RECORD_CHANNELS:
            return self._reject(msg.topic, "unexpected topic")
        device = parts[3]
        try:
            self._handle(device, bytes(msg.payload))
        except SealError as exc:
            self._reject(msg.topic, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the receiver
            self._reject(msg.topic, f"unexpected error {exc!r}")
        return None

    def _reject(self, topic: str, reason: str) -> None:
        self.stats["rejected"] += 1
        log.warning("rejected message on %s: %s", topic, reason)

    def _handle(self, device: str, blob: bytes) -> None:
        env = parse_envelope(blob, MAX_ENVELOPE)
        if env.header["dev"] != device:
            raise SealError(f"record of {env.header['dev']!r} published on {device!r}'s topic")
        rid = env.header["id"]
        if env.part == "text":
            if env.header["dev"] not in self.opener.device_keys:
                self._reload_devices()
            rec = self.opener.open_text(blob)
            if self.store.add_record(rec):
                self.stats["stored"] += 1
            else:
                self.stats["duplicates"] += 1
            self._ack(device, rid, "text")
            for part, dev, early in self.store.take_early_images(rid):
                self._image(dev, early, rec)
            return
        rec = self.store.record(rid)
        if rec is None:
            # the text has not arrived yet: hold the envelope, ack once it can be checked
            self.store.hold_early_image(rid, env.part, device, blob)
            self._unflushed += 1
            return
        self._image(device, blob, rec)

    def _reload_devices(self) -> None:
        now = time.monotonic()
        if self._load_devices is None or now - self._last_device_reload < 2.0:
            return
        self._last_device_reload = now
        try:
            self.opener.device_keys = self._load_devices()
        except Exception as exc:  # noqa: BLE001 - keep the register we have
            log.error("cannot reload the device register: %s", exc)

    def _image(self, device: str, blob: bytes, rec: dict[str, Any]) -> None:
        part, data = self.opener.open_image(blob, rec)
        if self.store.add_image(rec["id"], part, data):
            self.stats["images"] += 1
        self._ack(device, rec["id"], part)

    def _ack(self, device: str, rid: str, part: str) -> None:
        self._acks[device].append((rid, part))
        self._unflushed += 1

    def flush(self) -> None:
        """Commit what was stored, then acknowledge it (never the other way round)."""
        self.store.commit()
        for device, acks in self._acks.items():
            for i in range(0, len(acks), 1000):
                payload = encode_ack(device, acks[i : i + 1000], self.ack_key)
                self.client.publish(f"polewatch/v1/{self.agency}/{device}/ack", payload, qos=1)
                self.stats["acks_sent"] += len(acks[i : i + 1000])
        self._acks.clear()
        self._unflushed = 0
        self._last_flush = time.monotonic()

    def connect(self) -> None:
        if not self.v5:
            self.client.connect(self.host, self.port, keepalive=30)
            return
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 86400
        self.client.connect(self.host, self.port, keepalive=30, clean_start=False, properties=props)

    def run(self, until: threading.Event | None = None) -> None:
        """Receive until `until` (or `stop()`); reconnects after a broker outage."""
        stop = until or self._stop
        delay = 0.2
        connected_socket = False
        while not stop.is_set() and not self._stop.is_set():
            if not connected_socket:
                try:
                    self.connect()
                    connected_socket = True
                    delay = 0.2
                except OSError as exc:
                    log.warning("receiver cannot reach broker: %s", exc)
                    stop.wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
            rc = self.client.loop(timeout=0.01)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                connected_socket = False
                self.connected.clear()
                self.store.commit()  # stored but unacked: the device resends, we dedupe
                self._acks.clear()
                stop.wait(delay)
                continue
            if self._unflushed and (
                self._unflushed >= self.flush_max or time.monotonic() - self._last_flush >= self.flush_interval_s
            ):
                self.flush()
        if self._unflushed:
            self.flush()
            deadline = time.monotonic() + 0.5  # let the last acks reach the broker
            while time.monotonic() < deadline and self.client.loop(timeout=0.05) == mqtt.MQTT_ERR_SUCCESS:
                pass
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001
            pass

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="receiver", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
