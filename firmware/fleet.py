"""The IT manager's desk side of remote maintenance: sign commands, send them
to one device or many over MQTT (mutual TLS), collect `cmd/result`, and
show each device's status, backlog, versions and last contact from the
retained `status` and the `telemetry` channel.

Results are matched to commands by nonce, so answers from several devices,
or late answers to earlier commands, never get mixed up.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt


class FleetError(Exception):
    """The broker cannot be reached or refused us; the message says why."""


class Fleet:
    def __init__(self, host: str, port: int, agency: str, ca_file: str, cert_file: str, key_file: str,
                 client_id: str = "", mqtt5: bool = True) -> None:
        self.agency = agency
        self.base = f"polewatch/v1/{agency}"
        self._host, self._port = host, port
        self._c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"fleet-{time.time_ns()}",
                              protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311)
        try:
            self._c.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
        except (OSError, ValueError) as exc:
            raise FleetError(f"TLS files: {exc}") from None
        self._c.on_connect = self._on_connect
        self._c.on_message = self._on_message
        self._connected = threading.Event()
        self._refused: str | None = None
        self._lock = threading.Lock()
        self.results: dict[str, dict[str, Any]] = {}  # nonce -> result
        self.devices: dict[str, dict[str, Any]] = {}  # device -> what we saw

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if getattr(rc, "is_failure", False) or (isinstance(rc, int) and rc != 0):
            self._refused = str(rc)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) < 5 or "/".join(parts[:3]) != self.base:
            return
        device, channel = parts[3], "/".join(parts[4:])
        now = time.time()
        with self._lock:
            seen = self.devices.setdefault(device, {"device": device})
            if channel == "cmd/result":
                try:
                    res = json.loads(msg.payload)
                except (ValueError, UnicodeDecodeError):
                    return
                if isinstance(res, dict) and isinstance(res.get("nonce"), str):
                    self.results[res["nonce"]] = res
                seen["last_contact"] = now
            elif channel == "status":
                seen["status"] = msg.payload.decode("utf-8", "replace")[:64]
                if not msg.retain:
                    seen["last_contact"] = now
            elif channel == "telemetry":
                try:
                    tel = json.loads(msg.payload)
                except (ValueError, UnicodeDecodeError):
                    return
                if isinstance(tel, dict):
                    seen["telemetry"] = tel
                    seen["last_contact"] = max(seen.get("last_contact", 0), float(tel.get("time", now) or now))

    def connect(self, timeout: float = 10.0) -> Fleet:
        try:
            self._c.connect(self._host, self._port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise FleetError(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        self._c.loop_start()
        if not self._connected.wait(timeout) or self._refused:
            self.close()
            raise FleetError(f"broker {self._host}:{self._port} refused or did not answer ({self._refused})")
        for ch in ("cmd/result", "status", "telemetry"):
            self._c.subscribe(f"{self.base}/+/{ch}", qos=1)
        return self

    def close(self) -> None:
        self._c.loop_stop()
        self._c.disconnect()

    def __enter__(self) -> Fleet:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, signed: dict[str, bytes], wait_s: float = 10.0) -> dict[str, dict[str, Any] | None]:
        """Publish each device's signed command (QoS 1); return its result by device (None: no answer)."""
        nonces: dict[str, str] = {}
        time.sleep(0.2)  # let the result subscription settle before anything can answer
        for device, data in signed.items():
            nonces[device] = json.loads(json.loads(data)["payload"])["nonce"]
            info = self._c.publish(f"{self.base}/{device}/cmd", data, qos=1)
            info.wait_for_publish(timeout=wait_s)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(n in self.results for n in nonces.values()):
                    break
            time.sleep(0.05)
        with self._lock:
            return {d: self.results.get(n) for d, n in nonces.items()}

    def observe(self, wait_s: float = 3.0, devices: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Status, backlog, versions and last contact per device, from what arrives within wait_s."""
        time.sleep(wait_s)
        want = set(devices) if devices else None
        out = []
        with self._lock:
            for name, seen in sorted(self.devices.items()):
                if want is not None and name not in want:
                    continue
                tel = seen.get("telemetry", {})
                last = seen.get("last_contact")
                out.append({
                    "device": name,
                    "status": seen.get("status", "unknown"),
                    "backlog_records": tel.get("backlog_records"),
                    "backlog_oldest_age_s": tel.get("backlog_oldest_age_s"),
                    "versions": tel.get("versions") or ({"firmware": tel["version"]} if "version" in tel else None),
                    "last_contact": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) if last else None,
                    "last_contact_age_s": round(time.time() - last, 1) if last else None,
                })
            for name in sorted((want or set()) - set(self.devices)):
                out.append({"device": name, "status": "never seen", "backlog_records": None,
                            "backlog_oldest_age_s": None, "versions": None, "last_contact": None,
                            "last_contact_age_s": None})
        return out
