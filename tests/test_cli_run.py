"""`polewatch run` as systemd runs it: READY/WATCHDOG over a real NOTIFY_SOCKET, LEDs off on
SIGTERM, on a crash, on a stalled camera, and after SIGKILL via the `illuminator off` stop hook."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from drivers.camera.simulated import SimulatedRoad
from drivers.gpio import FakeGpio
from firmware import config
from firmware.app import App
from firmware.health import SystemdNotifier
from firmware.pipeline import MotionGate

ROOT = Path(__file__).resolve().parents[1]
LED = 18


def write_config(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "polewatch.toml"
    p.write_text(f"""
[device]
data_dir = "{tmp_path / 'data'}"
[gpio]
backend = "fake"
state_file = "{tmp_path / 'gpio.json'}"
[illuminator]
mode = "night"
stall_off_s = 0.5
[logging]
level = "INFO"
{extra}
""")
    return p


def led(tmp_path: Path) -> dict:
    return FakeGpio.read_state(tmp_path / "gpio.json").get(LED, {})


def polewatch(cfg: Path, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "firmware.cli", "--config", str(cfg), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    return False


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    msgs: list[str] = []
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            try:
                msgs.append(s.recv(4096).decode())
            except TimeoutError:
                pass
            except OSError:
                return

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    yield path, msgs
    stop.set()
    t.join(1)
    s.close()


def test_run_notifies_systemd_and_leds_off_after_sigterm(tmp_path, notify_socket):
    path, msgs = notify_socket
    cfg = write_config(tmp_path)
    proc = polewatch(cfg, "run", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        assert wait_for(lambda: any(m.startswith("READY=1") for m in msgs)), proc.stderr
        assert wait_for(lambda: led(tmp_path).get("duty") == 0.8)  # night mode: LEDs at the duty cap
        assert wait_for(lambda: sum(m == "WATCHDOG=1" for m in msgs) >= 3)
        health = tmp_path / "data" / "health.json"  # the OTA health gate's view of this release
        assert wait_for(lambda: json.loads(health.read_text())["frames_flowing"] is True)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "STOPPING=1" in msgs
    assert led(tmp_path) == {"mode": "in", "value": False, "duty": None}
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert any(x["msg"] == "stopped" and x["frames_in"] > 0 for x in lines)


def test_sigkill_leaves_leds_on_until_the_stop_hook_runs(tmp_path):
    cfg = write_config(tmp_path)
    proc = polewatch(cfg, "run")
    try:
        assert wait_for(lambda: led(tmp_path).get("duty") == 0.8), proc.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert led(tmp_path)["duty"] == 0.8  # a killed process turned nothing off
    hook = subprocess.run([sys.executable, "-m", "firmware.cli", "--config", str(cfg), "illuminator", "off"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)
    assert hook.returncode == 0, hook.stderr
    assert "illuminator off" in hook.stdout
    assert led(tmp_path) == {"mode": "out", "value": False, "duty": None}
    assert FakeGpio.read_state(tmp_path / "gpio.json")[23]["value"] is True  # IR-cut filter back in (day)


def _app(tmp_path, **kw) -> tuple[App, config.Config]:
    cfg = config.load(write_config(tmp_path))
    return App(cfg, notifier=SystemdNotifier(env={}), **kw), cfg


def test_crash_in_pipeline_turns_leds_off(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = MotionGate.check

    def failing(self, image):
        calls["n"] += 1
        if calls["n"] == 10:
            raise RuntimeError("simulated fault in the frame path")
        return real(self, image)

    monkeypatch.setattr(MotionGate, "check", failing)
    app, _ = _app(tmp_path)
    with pytest.raises(RuntimeError, match="simulated fault"):
        app.run(duration_s=30)
    assert calls["n"] == 10
    state = led(tmp_path)
    assert state["duty"] is None and state["value"] is False
    assert app.illuminator.reason.startswith("crash") or app.illuminator.reason == "exit"


def test_stalled_camera_turns_leds_off_while_running(tmp_path, monkeypatch):
    real = SimulatedRoad.read
    frames = {"n": 0}

    def stalls_after_20(self, timeout_s=1.0):
        frames["n"] += 1
        if frames["n"] > 20:  # the sensor stops delivering: reads time out
            time.sleep(min(timeout_s, 0.2))
            return None
        return real(self, timeout_s)

    monkeypatch.setattr(SimulatedRoad, "read", stalls_after_20)
    app, _ = _app(tmp_path)
    t = threading.Thread(target=app.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: frames["n"] >= 5 and led(tmp_path).get("duty") == 0.8, 20)
        assert wait_for(lambda: frames["n"] > 20 and led(tmp_path).get("duty") == 0.0, 20)
        assert app.illuminator.reason == "stall" and t.is_alive()
    finally:
        app.stop()
        t.join(30)
    assert not t.is_alive() and led(tmp_path)["mode"] == "in"


def test_notifier_protocol_details(tmp_path):
    n = SystemdNotifier(env={"NOTIFY_SOCKET": "@polewatch-test", "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"})
    assert n.address == "\0polewatch-test" and n.watchdog_interval_s is None  # the watchdog is for another pid
    n = SystemdNotifier(env={"NOTIFY_SOCKET": str(tmp_path / "s"), "WATCHDOG_USEC": "10000000",
                             "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_interval_s == 5.0
    assert n.notify("READY=1") is False  # nobody listening: logged, never raised
    off = SystemdNotifier(env={})
    assert not off.enabled and off.ready() is False and off.watchdog() is False


def test_doctor_reports_and_exit_code(tmp_path):
    cfg = write_config(tmp_path, '[uplink]\nenabled = true\nhost = "127.0.0.1"\nport = 9\n')
    p = polewatch(cfg, "doctor", "--json")
    out, err = p.communicate(timeout=120)
    report = json.loads(out)
    checks = {c["check"]: c for c in report["checks"]}
    assert p.returncode == 1 and report["ok"] is False
    assert checks["camera"]["ok"] and checks["gpio"]["ok"] and checks["disk"]["ok"]
    assert not checks["broker"]["ok"] and "127.0.0.1:9" in checks["broker"]["detail"] and checks["broker"]["fix"]
    assert not checks["keys"]["ok"] and "polewatch keys init" in checks["keys"]["fix"]


def test_bad_config_is_one_clear_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[camera]\nfps = -3\n")
    p = polewatch(cfg, "run")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "camera.fps" in err and "Traceback" not in err


def test_missing_gpio_package_is_one_clear_line(tmp_path):
    cfg = write_config(tmp_path).read_text().replace('backend = "fake"', 'backend = "rpi"')
    (tmp_path / "rpi.toml").write_text(cfg)
    p = polewatch(tmp_path / "rpi.toml", "run", "--duration", "1")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "RPi.GPIO" in err and "rpi-lgpio" in err and "Traceback" not in err


@pytest.mark.skipif(not (ROOT / "models" / "manifest.json").exists(), reason="models not committed yet")
def test_embedded_default_seals_reads_into_the_local_outbox(tmp_path):
    import sqlite3

    cfg = write_config(tmp_path, "[camera.simulated]\nvehicles_per_minute = 60\nseed = 3\n")
    cfg.write_text(cfg.read_text().replace('mode = "night"', 'mode = "auto"'))
    p = polewatch(cfg, "run", "--duration", "25")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    logged = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    plates = [x["plate"] for x in logged if x["msg"] == "read"]
    assert plates, "no read in 25 s of simulated traffic"
    db = tmp_path / "data" / "outbox.db"
    with sqlite3.connect(db) as c:
        n = c.execute("SELECT count(DISTINCT seq) FROM parts WHERE kind='read'").fetchone()[0]
    assert n == len(plates)
    raw = db.read_bytes() + (db.with_name("outbox.db-wal").read_bytes() if db.with_name("outbox.db-wal").exists() else b"")
    assert not any(pl.encode() in raw for pl in plates)  # sealed: no plate text in the clear
