"""The appliance: camera, illuminator, pipeline, recognizer, and (when configured) store and uplink.

`App.run()` is `polewatch run`. The illuminator is entered first and left last,
so whatever happens in between -- normal stop, an exception, a stalled camera --
the LEDs end up off (a SIGKILL is covered by the systemd stop hook). Missing
models do not stop the pole: the camera, illuminator and health keep running and
the health figures say recognition is unavailable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.camera import open_camera
from drivers.gpio import open_gpio
from drivers.illuminator import Illuminator
from firmware import malloc
from firmware.config import Config
from firmware.health import Health, SystemdNotifier
from firmware.pipeline import Pipeline
from firmware.records import PlateRead
from firmware.tracking import Tracker

log = logging.getLogger(__name__)


class AppError(Exception):
    """The appliance cannot start (message says what to fix)."""


def load_recognizer(cfg: Config) -> tuple[Any | None, str | None]:
    """(recognizer, None) or (None, why it is unavailable)."""
    try:
        from firmware.recognition import ModelCorrupt, ModelMissing, Recognizer, RuntimeUnavailable
    except ImportError as exc:
        return None, f"recognition package unavailable: {exc}"
    try:
        return Recognizer.from_config(cfg.recognition), None
    except (ModelMissing, ModelCorrupt, RuntimeUnavailable) as exc:
        return None, str(exc)


class _GpioRelay:
    """The alert relay output (firmware.hotlist.Relay) on the appliance's GPIO board."""

    def __init__(self, gpio: Any) -> None:
        self.gpio = gpio
        self._ready: set[int] = set()

    def output(self, pin: int, value: bool) -> None:
        if pin not in self._ready:
            self.gpio.setup_output(pin, initial=False)
            self._ready.add(pin)
        self.gpio.write(pin, value)


class App:
    def __init__(
        self,
        cfg: Config,
        *,
        on_read: Callable[[PlateRead], None] | None = None,
        max_vehicles: int | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.cfg = cfg
        self.user_on_read = on_read
        self.max_vehicles = max_vehicles
        self.notifier = notifier or SystemdNotifier()
        self.stop_event = threading.Event()
        self.data_dir = Path(cfg.device.data_dir)
        self.reads: int = 0
        self.recognition_error: str | None = None
        self.health: Health | None = None
        self.pipeline: Pipeline | None = None
        self.camera: Any = None
        self.illuminator: Illuminator | None = None
        self.outbox: Any = None
        self.uplink: Any = None
        self.policy: Any = None  # firmware.policy.Policy: hot lists, audit, commands, event window
        self.gpio: Any = None

    def stop(self) -> None:
        self.stop_event.set()

    # -- optional parts, behind the config --------------------------------
    def _open_store(self) -> None:
        cfg = self.cfg
        keys_dir = Path(cfg.keys.dir) if getattr(cfg, "keys", None) and cfg.keys.dir else self.data_dir / "keys"
        if not (keys_dir / "device.key").exists() and cfg.camera.backend == "simulated":
            self._demo_keys(keys_dir)
        if not (keys_dir / "device.key").exists():
            log.warning("no device keys in %s: reads are not stored (run `polewatch keys init`)", keys_dir)
            return
        from firmware.keys import DeviceKeys
        from firmware.seal import Sealer
        from firmware.store import Outbox, event_location, site_location

        keys = DeviceKeys.load(keys_dir)
        location = event_location(cfg.event) if cfg.event else site_location(cfg.site)
        path = cfg.store.path or self.data_dir / "outbox.db"
        self.outbox = Outbox(path, cfg.store, Sealer.from_keys(keys, cfg.device.id), location=location)
        self._open_policy(keys)
        if cfg.uplink.enabled:
            from firmware.uplink import Uplink

            self.uplink = Uplink(
                cfg.uplink, cfg.device.id, cfg.device.agency, self.outbox,
                ca_file=keys.ca_file, cert_file=keys.tls_cert, key_file=keys.tls_key,
                receiver_keys=keys.receiver_keys, telemetry_source=self.telemetry,
            )
            if self.policy is not None:
                self.policy.register(self.uplink)

    def _open_policy(self, keys: Any) -> None:
        """Hot lists, alerts, audit, remote commands and the event window (firmware.policy), when present."""
        try:
            from firmware.policy import Policy
        except ImportError as exc:
            log.warning("policy controls unavailable (%s): reads are stored without hot-list checks", exc)
            return
        self.policy = Policy(self.cfg, keys, self.outbox, relay=_GpioRelay(self.gpio), telemetry=self.telemetry)

    def _demo_keys(self, keys_dir: Path) -> None:
        """Simulated road only: provision a device key and a local demo department key, so the
        embedded default seals reads into a real local outbox. Never used with a real camera."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        from firmware.keys import init_device, install_department_key, write_private

        init_device(keys_dir, self.cfg.device.id, self.cfg.device.agency)
        dept = X25519PrivateKey.generate()
        pub = dept.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        kid = install_department_key(keys_dir, pub, kid="demo")
        write_private(self.data_dir / "demo-department" / f"{kid}.key", dept.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        log.warning("simulated road: provisioned DEMO keys in %s (department private key in %s)",
                    keys_dir, self.data_dir / "demo-department")

    def telemetry(self) -> dict[str, Any]:
        figures = self.health.snapshot() if self.health else {}
        figures["recognition"] = "ok" if self.recognition_error is None else self.recognition_error
        if self.policy is not None:
            try:
                figures["policy"] = self.policy.status()
            except Exception as exc:  # noqa: BLE001
                figures["policy"] = f"error: {exc}"
        if self.outbox is not None:
            try:
                figures["store"] = self.outbox.backlog()
            except Exception as exc:  # noqa: BLE001 - telemetry must not fail the pole
                figures["store"] = f"error: {exc}"
        return figures

    def _on_read(self, read: PlateRead) -> None:
        if self.policy is not None and not self.policy.allows_reading():
            return  # outside the special event's window: the read is not kept
        self.reads += 1
        if self.policy is not None:
            self.policy.on_read(read)  # hot-list check first: alerts are sealed ahead of the read
        if self.outbox is not None:
            self.outbox.add_read(read)
        simulated = self.cfg.camera.backend == "simulated"
        log.info("read", extra={
            "plate": read.plate if simulated else "(sealed)", "confidence": read.confidence,
            "direction": read.direction, "frames": read.frames,
        })
        if self.user_on_read is not None:
            self.user_on_read(read)

    # -- the appliance ----------------------------------------------------
    def run(self, duration_s: float | None = None) -> int:
        cfg = self.cfg
        malloc.tune()  # before any thread allocates frames: keeps RSS flat over days
        self.data_dir.mkdir(parents=True, exist_ok=True)
        gpio = self.gpio = open_gpio(cfg.gpio, self.data_dir)
        lat, lon = (cfg.event.latitude, cfg.event.longitude) if cfg.event else (cfg.site.latitude, cfg.site.longitude)
        self.illuminator = Illuminator(cfg.illuminator, gpio, latitude=lat, longitude=lon)
        with self.illuminator as ill:
            recognizer, self.recognition_error = load_recognizer(cfg)
            if recognizer is None:
                log.error("recognition unavailable, running camera and illuminator only: %s", self.recognition_error)
            kw = {"max_vehicles": self.max_vehicles} if cfg.camera.backend == "simulated" else {}
            self.camera = open_camera(cfg.camera, ill.led_state, **kw)
            self.health = Health(
                self.data_dir, cfg.health.latency_window, illuminator=ill.state, camera=self.camera.info,
                versions=getattr(recognizer, "versions", {}) if recognizer else {},
            )
            tracker = Tracker(cfg.pipeline, clock_synced=self.health.clock_synced,
                              settle=recognizer.settle_fused if recognizer else None)
            self._open_store()
            self.pipeline = Pipeline(self.camera, recognizer, tracker, cfg.pipeline, self.health,
                                     on_read=self._on_read, illuminator=ill)
            try:
                self.pipeline.start()
                if self.uplink is not None:
                    self.uplink.start()
                self._supervise(duration_s)
            finally:
                self.notifier.stopping()
                self.pipeline.stop()
                if self.uplink is not None:
                    self.uplink.stop()
                self.camera.close()
                if self.outbox is not None:
                    self.outbox.close()
            if self.pipeline.error is not None:
                raise self.pipeline.error
        log.info("stopped", extra={"reads": self.reads, **{k: v for k, v in self.telemetry().items()
                                                            if k.startswith("frames_")}})
        return 0

    def _write_health_file(self, frames_flowing: bool) -> None:
        """The OTA health gate's view of this release (ota.health): frames, recognizer, broker."""
        try:
            from firmware import __version__
            from ota.health import write_health_file
        except ImportError:
            return
        path = self.cfg.ota.health_file or self.data_dir / "health.json"
        try:
            write_health_file(
                Path(path), version=__version__, frames_flowing=frames_flowing,
                recognizer_loaded=self.recognition_error is None,
                broker_connected=bool(self.uplink is not None and self.uplink.connected()),
            )
        except OSError as exc:
            log.warning("cannot write health file %s: %s", path, exc)

    def _supervise(self, duration_s: float | None) -> None:
        """Main thread: READY once running, WATCHDOG while the pipeline lives, health in the log."""
        assert self.pipeline is not None and self.health is not None
        start = time.monotonic()
        self.notifier.ready(f"camera {self.cfg.camera.backend}")
        last_log = last_file = last_tick = start
        last_frames = (start, self.health.frames_in)
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self.pipeline.error is not None or (self.pipeline.ended.is_set() and not self.pipeline.alive()):
                break
            if self.pipeline.alive() and self.cfg.health.watchdog:
                self.notifier.watchdog(now)
            if now - last_file >= 2.0:
                flowing = self.health.frames_in > last_frames[1]
                last_frames, last_file = (now, self.health.frames_in), now
                self._write_health_file(flowing)
            if self.policy is not None and now - last_tick >= 60.0:
                last_tick = now
                self.policy.tick()
            if now - last_log >= self.cfg.health.log_interval_s:
                last_log = now
                log.info("health", extra={"health": self.telemetry()})
            if duration_s is not None and now - start >= duration_s:
                break
            self.stop_event.wait(0.2)
