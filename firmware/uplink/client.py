"""`Uplink`: drains the sealed outbox to the department broker and hands the
department's messages (cmd, config, hotlist) to the parts that own them.

One thread owns the MQTT connection (paho-mqtt 2.x, driven by `loop()`), so
connection state, in-flight bookkeeping and back-off live in one place.
Handlers for incoming channels run on a second thread so a slow hot-list load
never stalls delivery. A record part is delivered only when the department
acknowledges it on `ack` (signed by the receiver), or on PUBACK where
`ack_mode = "puback"`; until then it stays in the outbox and is sent again
after `ack_timeout_s` or after a restart. Duplicates are expected and removed
by record id at headquarters; losses are not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware.store import Outbox, OutboxItem
from firmware.uplink.acks import AckError, decode_ack
from firmware.uplink.backoff import Backoff, TokenBucket

# QoS 1 is at least once: a message handed over but not yet acknowledged when the connection drops
# comes again on the resumed session, marked DUP under its packet id. Remembering the last few
# handed-over (packet id, payload digest) pairs lets such a redelivery be dropped instead of run twice;
# a message sent anew has DUP clear and is always handed over.
REDELIVERY_MEMORY = 256

log = logging.getLogger("polewatch.uplink")

Handler = Callable[[bytes], "bytes | None"]
HANDLER_CHANNELS = ("cmd", "config", "hotlist")
SUBSCRIBED = ("ack",) + HANDLER_CHANNELS
KIND_CHANNEL = {"read": "reads", "alert": "alerts", "audit": "audit"}
UNSUPPORTED_PROTOCOL = 132  # MQTT 5 CONNACK reason code "Unsupported Protocol Version"


class Uplink:
    """Store-and-forward to the department broker over mutual TLS."""

    def __init__(
        self,
        cfg: Any,
        device_id: str,
        agency: str,
        outbox: Outbox,
        *,
        ca_file: Path | str | None = None,
        cert_file: Path | str | None = None,
        key_file: Path | str | None = None,
        receiver_keys: dict[str, Any] | None = None,
        telemetry_source: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.device_id = device_id
        self.outbox = outbox
        self.base = f"polewatch/v1/{agency}/{device_id}"
        self.ca_file = str(cfg.ca_file or ca_file or "")
        self.cert_file = str(cfg.cert_file or cert_file or "")
        self.key_file = str(cfg.key_file or key_file or "")
        for name, value in (("ca_file", self.ca_file), ("cert_file", self.cert_file), ("key_file", self.key_file)):
            if not value:
                raise ValueError(f"uplink.{name}: not set and no device key directory gives one")
        self.receiver_keys = dict(receiver_keys or {})
        if cfg.ack_mode == "department" and not self.receiver_keys:
            raise ValueError(
                "uplink.ack_mode = 'department' needs the receiver's public key "
                "(`polewatch keys install-receiver`); no ack could be trusted"
            )
        self.telemetry_source = telemetry_source
        self._handlers: dict[str, Handler] = {}
        self._protocol = mqtt.MQTTv5 if cfg.protocol == "mqtt5" else mqtt.MQTTv311
        self._client: mqtt.Client | None = None
        self._backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self._bucket = TokenBucket(cfg.bandwidth_bytes_per_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._work: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=256)
        self._handed: deque[tuple[int, bytes]] = deque(maxlen=REDELIVERY_MEMORY)  # (mid, digest) handed over
        self._worker: threading.Thread | None = None
        self._connected = threading.Event()
        self._socket_open = False
        self._connect_started = 0.0
        self._closed_before_connack = 0
        self._fell_back_at: float | None = None
        # in flight: key -> (item, sent monotonic time); mid -> key for PUBACK mode
        self._inflight: dict[tuple[int, int], tuple[OutboxItem, float]] = {}
        self._mid_key: dict[int, tuple[int, int]] = {}
        self._acked: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._last_telemetry = 0.0
        self._last_idle_poll = 0.0
        self._last_resend_scan = 0.0
        self._exhausted = False
        self._wake = threading.Event()
        self.stats: dict[str, int] = {
            "published": 0, "delivered": 0, "resent": 0, "connects": 0, "disconnects": 0,
            "dropped_messages": 0, "handler_errors": 0,
        }

    # -- what other parts call ----------------------------------------------
    def on_message(self, channel: str, handler: Handler) -> None:
        """Register the handler for `cmd`, `config` or `hotlist`; it gets the raw
        payload and may return bytes to publish on `cmd/result`."""
        if channel not in HANDLER_CHANNELS:
            raise ValueError(f"no handler channel {channel!r}; expected one of {HANDLER_CHANNELS}")
        self._handlers[channel] = handler

    def publish_result(self, payload: bytes) -> None:
        self._publish_now("cmd/result", payload, qos=1)

    def publish_telemetry(self, figures: dict[str, Any]) -> None:
        self._publish_now("telemetry", json.dumps(figures, default=str, separators=(",", ":")).encode(), qos=0)

    def wake(self) -> None:
        """Something new is in the outbox: send it without waiting for the poll."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self._stop.clear()
        self._worker = threading.Thread(target=self._handler_loop, name="uplink-handlers", daemon=True)
        self._worker.start()
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say `offline` on the retained status and disconnect cleanly."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._worker:
            self._work.put(None)
            self._worker.join(timeout)

    # -- connection ------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        v5 = self._protocol == mqtt.MQTTv5
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=self._protocol,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
        )
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        c.tls_set_context(ctx)
        c.will_set(f"{self.base}/status", b"offline", qos=1, retain=True)
        c.max_inflight_messages_set(max(20, self.cfg.inflight_window))
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        return c

    def _connect(self) -> None:
        if (self._fell_back_at is not None and self.cfg.protocol == "mqtt5"
                and time.monotonic() - self._fell_back_at >= self.cfg.mqtt5_retry_s):
            log.info("trying MQTT 5 again %.0f s after falling back", time.monotonic() - self._fell_back_at)
            self._protocol, self._client, self._fell_back_at = mqtt.MQTTv5, None, None
        if self._client is None:
            self._client = self._make_client()
        kwargs: dict[str, Any] = {}
        if self._protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = int(self.cfg.session_expiry_s)
            props.MaximumPacketSize = int(self.cfg.max_message_bytes) + 1024
            kwargs = {"clean_start": False, "properties": props}
        self._client.connect(self.cfg.host, self.cfg.port, keepalive=int(self.cfg.keepalive_s), **kwargs)
        self._socket_open = True
        self._connect_started = time.monotonic()

    def _drop_connection(self, why: str) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._socket_open = False
        self._lost(why)

    def _lost(self, why: str) -> None:
        if self._connected.is_set():
            self.stats["disconnects"] += 1
            log.warning("uplink disconnected: %s", why)
        self._connected.clear()
        with self._lock:
            # resend on the next connection; the department removes duplicates
            self._inflight.clear()
            self._mid_key.clear()
            self._exhausted = False

    def _sleep_backoff(self) -> None:
        delay = self._backoff.next_delay()
        log.info("uplink reconnect in %.1f s", delay)
        self._stop.wait(delay)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            if self._protocol == mqtt.MQTTv5 and rc.value == UNSUPPORTED_PROTOCOL:
                self._fallback_to_311()
            return
        self._closed_before_connack = 0
        self._backoff.reset()
        self.stats["connects"] += 1
        client.subscribe([(f"{self.base}/{ch}", 1) for ch in SUBSCRIBED])
        client.publish(f"{self.base}/status", b"online", qos=1, retain=True)
        self._connected.set()
        log.info("uplink connected to %s:%s (%s)", self.cfg.host, self.cfg.port,
                 "MQTT 5" if self._protocol == mqtt.MQTTv5 else "MQTT 3.1.1")

    def _no_connack(self) -> None:
        """An MQTT 5 CONNECT closed or left unanswered three times running: an
        older broker that cannot parse it (some close, some wait for bytes that
        never come) rather than one that answers "unsupported protocol"."""
        if self._protocol != mqtt.MQTTv5:
            return
        self._closed_before_connack += 1
        if self._closed_before_connack >= 3:
            self._fallback_to_311()
            self._closed_before_connack = 0

    def _fallback_to_311(self) -> None:
        log.warning("broker does not speak MQTT 5; falling back to MQTT 3.1.1")
        self._protocol = mqtt.MQTTv311
        self._client = None
        self._fell_back_at = time.monotonic()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._socket_open = False
        self._lost(f"reason {rc}")

    # -- incoming ------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            channel = msg.topic[len(self.base) + 1 :] if msg.topic.startswith(self.base + "/") else ""
            payload = bytes(msg.payload)
            if channel not in SUBSCRIBED:
                return self._drop(msg.topic, "not a channel this device subscribes to")
            if len(payload) > self.cfg.max_message_bytes:
                return self._drop(msg.topic, f"{len(payload)} bytes exceeds max_message_bytes")
            if channel == "ack":
                self._handle_ack(payload)
                return None
            if channel not in self._handlers:
                return self._drop(msg.topic, "no handler registered")
            if not payload:
                return None  # a cleared retained message
            seen = (msg.mid, hashlib.sha256(payload).digest())
            if msg.dup and seen in self._handed:
                return self._drop(msg.topic, "redelivery of a message already handed to its handler")
            try:
                self._work.put_nowait((channel, payload))
            except queue.Full:
                self._drop(msg.topic, "handler queue full")
                return None
            self._handed.append(seen)
        except Exception as exc:  # noqa: BLE001 - a hostile message must never stop the uplink
            self._drop(getattr(msg, "topic", "?"), f"unexpected error {exc!r}")
        return None

    def _drop(self, topic: str, reason: str) -> None:
        self.stats["dropped_messages"] += 1
        log.warning("dropped message on %s: %s", topic, reason)

    def _handle_ack(self, payload: bytes) -> None:
        if self.cfg.ack_mode != "department":
            return self._drop(f"{self.base}/ack", "ack_mode is puback; department acks ignored")
        try:
            acks = decode_ack(payload, self.device_id, self.receiver_keys)
        except AckError as exc:
            return self._drop(f"{self.base}/ack", f"invalid ack: {exc}")
        with self._lock:
            self._acked.extend(acks)
        return None

    def _handler_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            channel, payload = job
            try:
                result = self._handlers[channel](payload)
            except Exception as exc:  # noqa: BLE001 - a handler bug must not stop the uplink
                self.stats["handler_errors"] += 1
                log.error("%s handler failed: %r", channel, exc)
                continue
            if result:
                self.publish_result(result)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        if self.cfg.ack_mode != "puback":
            return
        with self._lock:
            key = self._mid_key.pop(mid, None)
            if key is None:
                return
            entry = self._inflight.get(key)
            if entry is None:
                return
            if rc.is_failure:
                log.error("broker refused %s part %s: %s", entry[0].id, entry[0].part, rc)
                return  # stays in flight; resent after ack_timeout_s
            self._acked.append((entry[0].id, entry[0].part))

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._socket_open:
                try:
                    self._connect()
                except (OSError, ssl.SSLError, ValueError) as exc:
                    log.warning("cannot reach broker %s:%s: %s", self.cfg.host, self.cfg.port, exc)
                    self._sleep_backoff()
                    continue
            assert self._client is not None
            rc = self._client.loop(timeout=0.01)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                was_connected = self._connected.is_set()
                self._socket_open = False
                self._lost(f"network: {mqtt.error_string(rc)}")
                if not was_connected:
                    self._no_connack()
                self._sleep_backoff()
                continue
            if not self._connected.is_set():
                if time.monotonic() - self._connect_started > self.cfg.connect_timeout_s:
                    self._drop_connection("no CONNACK in time")
                    self._no_connack()
                    self._sleep_backoff()
                continue
            try:
                self._apply_acks()
                self._pump()
                self._maybe_telemetry()
            except Exception:  # noqa: BLE001 - keep the link up; the outbox is the truth
                log.exception("uplink pump failed")
                self._stop.wait(1.0)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._client is not None and self._connected.is_set():
            try:
                info = self._client.publish(f"{self.base}/status", b"offline", qos=1, retain=True)
                deadline = time.monotonic() + 2
                while not info.is_published() and time.monotonic() < deadline:
                    self._client.loop(timeout=0.05)
                self._apply_acks()
                self._client.disconnect()
                self._client.loop(timeout=0.1)
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
        self._connected.clear()

    def _apply_acks(self) -> None:
        with self._lock:
            acks, self._acked = self._acked, []
            if acks:
                acked = set(acks)
                for key, (item, _t) in list(self._inflight.items()):
                    if (item.id, item.part) in acked:
                        del self._inflight[key]
        if acks:
            self.stats["delivered"] += self.outbox.mark_delivered(acks)

    def _pump(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_resend_scan >= 0.5:
                # parts unacknowledged for too long go again
                self._last_resend_scan = now
                for key, (item, sent) in list(self._inflight.items()):
                    if now - sent > self.cfg.ack_timeout_s:
                        del self._inflight[key]
                        self.stats["resent"] += 1
                        self._exhausted = False
            room = self.cfg.inflight_window - len(self._inflight)
            exclude = list(self._inflight) if room > 0 else []
        if room <= 0:
            return
        # query the outbox when woken, when a good batch fits and more may be waiting,
        # or on the idle poll (records added without wake(), parts due for resend)
        woken = self._wake.is_set()
        threshold = max(1, min(64, self.cfg.inflight_window // 4))
        idle_poll = now - self._last_idle_poll >= (0.5 if self._exhausted else 0.05)
        if not woken and not idle_poll and (room < threshold or self._exhausted):
            return
        self._wake.clear()
        self._last_idle_poll = now
        items = self.outbox.pending(room, exclude=exclude)
        self._exhausted = len(items) < room  # everything pending is already in flight
        assert self._client is not None
        for item in items:
            if not self._bucket.try_take(len(item.data)):
                break  # budget spent; text went first, images wait
            topic = f"{self.base}/{KIND_CHANNEL[item.kind]}"
            info = self._client.publish(topic, item.data, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            with self._lock:
                self._inflight[item.key] = (item, time.monotonic())
                self._mid_key[info.mid] = item.key
            self.stats["published"] += 1

    def _publish_now(self, channel: str, payload: bytes, qos: int) -> None:
        c = self._client
        if c is None or not self._connected.is_set():
            log.info("not connected; %s message not sent", channel)
            return
        c.publish(f"{self.base}/{channel}", payload, qos=qos)

    def _maybe_telemetry(self) -> None:
        now = time.monotonic()
        if now - self._last_telemetry < self.cfg.telemetry_interval_s:
            return
        self._last_telemetry = now
        figures: dict[str, Any] = {"device": self.device_id, "time": time.time()}
        if self.telemetry_source is not None:
            try:
                figures.update(self.telemetry_source())
            except Exception as exc:  # noqa: BLE001 - telemetry must not stop delivery
                figures["telemetry_error"] = repr(exc)
        figures.update(self.outbox.backlog())
        with self._lock:
            figures["uplink"] = {**self.stats, "inflight": len(self._inflight)}
        self.publish_telemetry(figures)
