"""SIGKILL at each install step (a real updater process) must leave a device that starts.

After the kill we do what a reboot does: every application process is gone,
polewatch-ota-recover runs (`Updater.recover()`), then polewatch.service starts
`current/bin/polewatch`. That must run a complete release (old or new) that
turns healthy, and a later update must still reach the new release.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ota.restart import ProcessRestarter
from ota_support import Pole, RepoEnv, make_bundle, wait_healthy

DRIVER = Path(__file__).with_name("ota_kill_driver.py")

# (phase, n-th progress report): mid-download, mid-extraction, between wheel
# install and slot swap, before and after the `current` switch, with the new
# release running but ungated, after the gate passed, and during a rollback.
STEPS = [
    ("check", 1), ("download", 2), ("verify", 1), ("stage", 2), ("install", 1),
    ("switch", 1), ("switch", 2), ("restart", 1), ("health", 1), ("commit", 1),
]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run_and_kill(pole_root: Path, env: RepoEnv, phase: str, nth: int, timeout_s: float = 5) -> tuple[str, list[int]]:
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(pole_root), env.url, str(env.trusted_root), phase,
                             str(nth), str(timeout_s)], stdout=subprocess.PIPE, text=True, cwd=DRIVER.parent.parent)
    apps: list[int] = []
    at = ""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("APP "):
                apps.append(int(line.split()[1]))
            if line.startswith(("AT ", "DONE ")):
                at = line.strip()
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.stdout.close()
    return at, apps


def _reboot_and_start(pole: Pole, apps: list[int]) -> str:
    """Power cycle: all processes die, recovery runs, the service starts `current`."""
    for pid in apps:
        _kill_group(pid)
    time.sleep(0.1)
    pole.updater.recover()
    version = pole.updater.slots.current_version()
    assert version in ("1.0.0", "1.1.0")
    assert pole.updater.slots.verify_slot(pole.updater.slots.current_slot()), "current points at a damaged slot"
    pole.restarter = ProcessRestarter(pole.releases_dir, args=(), env=pole.restarter.env)
    pole.restarter.start()
    assert wait_healthy(pole.health_file, version), f"release {version} did not start after the kill"
    return version


@pytest.mark.parametrize("phase,nth", STEPS, ids=[f"{p}{n}" for p, n in STEPS])
def test_sigkill_during_install_step_leaves_a_device_that_starts(tmp_path, phase, nth):
    env = RepoEnv(tmp_path)
    root = tmp_path / "pole"
    pole = Pole(root, env.url, env.trusted_root, health_timeout_s=5)
    apps: list[int] = []
    try:
        pole.updater.slots.factory_install(make_bundle(tmp_path, "1.0.0"))
        env.publish("1.1.0", model_bytes=1_500_000)
        at, apps = _run_and_kill(root, env, phase, nth)
        assert at.startswith(f"AT {phase}"), f"driver did not reach {phase}: {at!r}"
        version = _reboot_and_start(pole, apps)
        # the gate had passed: recovery finishes the commit; before that, an unconfirmed
        # release is never kept: recovery goes back to the one that ran before
        assert version == ("1.1.0" if phase == "commit" else "1.0.0")
        assert not (pole.releases_dir / ".staging").exists()
        assert pole.updater.slots.journal() is None
        # the device is not stuck: the next update completes
        pole.updater = pole.make_updater(restarter=pole.restarter)
        res = pole.updater.apply()
        assert res.outcome in ("installed", "up_to_date"), res
        assert pole.updater.slots.current_version() == "1.1.0"
        assert wait_healthy(pole.health_file, "1.1.0")
    finally:
        pole.stop()
        for pid in apps:
            _kill_group(pid)
        env.stop()


def test_sigkill_during_rollback_leaves_previous_release(tmp_path):
    env = RepoEnv(tmp_path)
    root = tmp_path / "pole"
    pole = Pole(root, env.url, env.trusted_root)
    apps: list[int] = []
    try:
        pole.updater.slots.factory_install(make_bundle(tmp_path, "1.0.0"))
        env.publish("1.1.0", mode="unhealthy")
        at, apps = _run_and_kill(root, env, "rollback", 1, timeout_s=1)
        assert at.startswith("AT rollback"), at
        assert _reboot_and_start(pole, apps) == "1.0.0"
        assert pole.updater.slots.state()["highest_installed"] == "1.0.0"
    finally:
        pole.stop()
        for pid in apps:
            _kill_group(pid)
        env.stop()


FULL_DISK = """
import resource, signal, sys, json
sys.path.insert(0, {tests!r})
from pathlib import Path
from ota_support import Pole
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
pole = Pole(Path({root!r}), {url!r}, Path({trusted!r}))
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))  # no file may grow past 300 kB
res = pole.updater.apply()
print(json.dumps(res.to_dict()))
"""


def test_full_disk_fails_cleanly_and_keeps_the_installed_release(tmp_path):
    env = RepoEnv(tmp_path)
    root = tmp_path / "pole"
    pole = Pole(root, env.url, env.trusted_root)
    try:
        pole.updater.slots.factory_install(make_bundle(tmp_path, "1.0.0"))
        before = pole.snapshot()
        env.publish("1.1.0", model_bytes=1_000_000)
        code = FULL_DISK.format(tests=str(DRIVER.parent), root=str(root), url=env.url, trusted=str(env.trusted_root))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        res = __import__("json").loads(out.stdout.strip().splitlines()[-1])
        assert res["outcome"] == "failed" and "File too large" in res["detail"], res
        assert pole.snapshot() == before
        assert pole.updater.slots.journal() is None and not (pole.releases_dir / ".staging").exists()
        # with space again, the update goes through (resuming what was already downloaded)
        pole.restarter.start()
        assert pole.updater.apply().outcome == "installed"
    finally:
        pole.stop()
        env.stop()
