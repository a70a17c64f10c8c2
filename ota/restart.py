"""Restarting the application after the `current` link moves.

On the pole, systemd runs polewatch.service from /opt/polewatch/current, so a
restart is `systemctl restart polewatch.service`. Where there is no systemd
(a lab bench, a container, the tests) `ProcessRestarter` supervises the
release itself as a child process: it stops the old process and starts
`current/bin/polewatch` again, which is exactly what systemd would do.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ota.errors import OtaError


class Restarter(Protocol):
    def restart(self) -> None: ...


class SystemctlRestarter:
    """`systemctl restart <unit>`; the updater must run outside the unit's cgroup (see polewatch-ota-activate.service)."""

    def __init__(self, unit: str = "polewatch.service", systemctl: str = "systemctl", timeout_s: float = 90.0):
        self.unit, self.systemctl, self.timeout_s = unit, systemctl, timeout_s

    def restart(self) -> None:
        try:
            r = subprocess.run([self.systemctl, "restart", self.unit], capture_output=True, text=True,
                               timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OtaError(f"cannot restart {self.unit}: {exc}") from None
        if r.returncode != 0:
            raise OtaError(f"systemctl restart {self.unit} failed ({r.returncode}): {r.stderr.strip()}")


class ProcessRestarter:
    """Runs `<releases_dir>/current/bin/polewatch ARGS` as a child process, restarting it on demand."""

    def __init__(self, releases_dir: Path, args: Sequence[str] = ("run",), env: dict[str, str] | None = None,
                 stop_timeout_s: float = 10.0, log_path: Path | None = None):
        self.launcher = Path(releases_dir) / "current" / "bin" / "polewatch"
        self.args = list(args)
        self.env = env
        self.stop_timeout_s = stop_timeout_s
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([str(self.launcher), *self.args], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if self.log_path:
                out.close()

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
