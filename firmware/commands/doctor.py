"""`polewatch doctor`: check camera, GPIO, models, clock, disk, keys and broker; say how to fix each."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
from pathlib import Path
from typing import Any

from firmware import config

LOW_DISK_BYTES = 1024**3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the pole's hardware, models, clock, disk and broker")
    p.add_argument("--json", action="store_true", help="one JSON object with every check")
    p.add_argument("--camera-timeout", type=float, default=5.0, metavar="S", help="wait this long for a frame")
    p.set_defaults(func=run)


def _check(name: str, ok: bool, detail: str, fix: str = "") -> dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def check_camera(cfg: Any, timeout_s: float) -> dict[str, Any]:
    from drivers.camera import CameraError, EndOfStream, make_backend

    cam = make_backend(cfg.camera)
    try:
        cam.open()
        frame = cam.read(timeout_s)
        if frame is None:
            return _check("camera", False, f"{cfg.camera.backend}: no frame within {timeout_s:.0f} s",
                          "check the cable/stream and that no other process holds the camera")
        h, w = frame.image.shape[:2]
        return _check("camera", True, f"{cfg.camera.backend}: {w}x{h} frame, exposure {round(frame.exposure_us or 0)} us, "
                                      f"gain {frame.gain}")
    except EndOfStream as exc:
        return _check("camera", False, str(exc), "the replay source is empty")
    except CameraError as exc:
        return _check("camera", False, str(exc), "install the backend's package, plug the camera in, or fix camera.source")
    finally:
        try:
            cam.close()
        except Exception:  # noqa: BLE001
            pass


def check_gpio(cfg: Any) -> dict[str, Any]:
    from drivers.gpio import GpioError, open_gpio

    try:
        gpio = open_gpio(cfg.gpio, None)
        if cfg.illuminator.led_pin is not None:
            gpio.setup_output(cfg.illuminator.led_pin, initial=False)  # LEDs off is always safe
        gpio.close()
    except GpioError as exc:
        return _check("gpio", False, str(exc), "install the GPIO package for this board or set gpio.backend")
    return _check("gpio", True, f"{cfg.gpio.backend}: LED pin {cfg.illuminator.led_pin}, "
                                f"IR-cut pin {cfg.illuminator.ircut_pin}")


def check_models(cfg: Any) -> dict[str, Any]:
    from firmware.app import load_recognizer

    rec, why = load_recognizer(cfg)
    if rec is None:
        return _check("models", False, why or "unknown", "reinstall the release (models/*.onnx) or fix recognition.models_dir")
    return _check("models", True, ", ".join(f"{k} {v}" for k, v in rec.versions.items()))


def check_clock() -> dict[str, Any]:
    from firmware.health import clock_synced

    if clock_synced():
        return _check("clock", True, "synchronised (kernel reports NTP/PTP discipline)")
    return _check("clock", False, "not synchronised: read times would be marked unsynced",
                  "enable time sync: `timedatectl set-ntp true` (systemd-timesyncd) or configure chrony/gpsd")


def check_disk(data_dir: Path) -> dict[str, Any]:
    probe = data_dir if data_dir.exists() else next((p for p in data_dir.parents if p.exists()), Path("/"))
    try:
        du = shutil.disk_usage(probe)
    except OSError as exc:
        return _check("disk", False, f"{data_dir}: {exc}", "check that the data partition is mounted")
    ok = du.free >= LOW_DISK_BYTES
    return _check("disk", ok, f"{du.free / 1024**3:.1f} GiB free of {du.total / 1024**3:.1f} GiB at {probe}",
                  "free space on the data partition (old logs, core dumps); the outbox evicts delivered reads first")


def check_keys(cfg: Any) -> dict[str, Any]:
    keys_dir = Path(cfg.keys.dir) if cfg.keys.dir else Path(cfg.device.data_dir) / "keys"
    if not (keys_dir / "device.key").exists():
        return _check("keys", False, f"no device key in {keys_dir}: reads are not stored",
                      "provision the device: `polewatch keys init` and install the department key")
    return _check("keys", True, f"device key in {keys_dir}")


def check_broker(cfg: Any) -> dict[str, Any]:
    if not cfg.uplink.enabled:
        return _check("broker", True, "uplink disabled in the configuration (reads stay in the local outbox)")
    host, port = cfg.uplink.host, cfg.uplink.port
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as exc:
        return _check("broker", False, f"{host}:{port} unreachable: {exc}",
                      "check the network/VPN, the broker address in uplink.host/port and the firewall")
    return _check("broker", True, f"{host}:{port} accepts TCP connections")


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    checks = [
        _check("config", True, f"{args.config or config.DEFAULT_PATH} valid"
               if args.config or config.DEFAULT_PATH.exists() else "embedded default (no /etc/polewatch/polewatch.toml)"),
        check_camera(cfg, args.camera_timeout),
        check_gpio(cfg),
        check_models(cfg),
        check_clock(),
        check_disk(Path(cfg.device.data_dir)),
        check_keys(cfg),
        check_broker(cfg),
    ]
    bad = [c for c in checks if not c["ok"]]
    if args.json:
        print(json.dumps({"ok": not bad, "checks": checks}))
    else:
        for c in checks:
            print(f"{'OK  ' if c['ok'] else 'FAIL'} {c['check']:7} {c['detail']}")
            if c["fix"]:
                print(f"     {'':7} fix: {c['fix']}")
    return 1 if bad else 0
