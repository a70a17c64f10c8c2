"""A/B release slots on the device, the `current` link, and the install journal.

Layout under `releases_dir` (default /opt/polewatch):

    slots/a/  slots/b/   one release each: site/ (unpacked wheels), models/,
                         manifest.json, bin/polewatch (launcher), .complete
    current -> slots/a   what polewatch.service runs (ExecStart=.../current/bin/polewatch run;
                         venv/bin/polewatch is the same launcher)

A slot counts only when its `.complete` marker exists; the marker is written
last, after every file of the slot is fsynced. The running slot is never
written to. `current` changes only through an atomic symlink rename. Each step
of an install is recorded first in a journal (state dir, atomic writes), so
after power loss or SIGKILL `recover()` knows whether to finish a commit or
to switch back to the release that was running before.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.version import Version

from ota import fsutil
from ota.errors import BundleError, Busy
from ota.manifest import Manifest, extract_verified, sha256_file
from ota.wheels import install_wheel

SLOTS = ("a", "b")
Progress = Callable[[str, int, int], None]

# Journal phases in install order. A crash in a phase before "switching" leaves
# `current` untouched; from "switching" to "rolling_back" the new slot may be
# live but unconfirmed; "committing" means the health gate passed.
PRE_SWITCH = ("staging", "staged")
UNCONFIRMED = ("switching", "trial", "rolling_back")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


LAUNCHER = """#!/bin/sh
# Written by polewatch ota for release {version}. Runs the release in this slot
# with the base interpreter of the OS image.
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)"
export PYTHONPATH="$here/site${{PYTHONPATH:+:$PYTHONPATH}}"
export POLEWATCH_RELEASE_DIR="$here"
export POLEWATCH_RELEASE_VERSION="{version}"
export POLEWATCH_MODELS_DIR="$here/models"
exec {python} -m {entry} "$@"
"""


class SlotStore:
    """The device's release slots and install state; one instance per updater process."""

    def __init__(self, releases_dir: Path, state_dir: Path, python: Path | None = None, max_attempts: int = 2):
        self.root = Path(releases_dir)
        self.state_dir = Path(state_dir)
        self.python = Path(python or sys.executable)
        self.max_attempts = max_attempts
        self.slots_dir = self.root / "slots"
        self.current_link = self.root / "current"
        self.staging = self.root / ".staging"
        self.state_path = self.state_dir / "state.json"
        self.journal_path = self.state_dir / "journal.json"
        self._lock_fd: int | None = None

    # ---- locking: one installer at a time; the kernel drops the lock if we die
    def lock(self, wait: bool = False) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise Busy("another update is in progress (lock held)") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---- state and journal
    def state(self) -> dict[str, Any]:
        st = fsutil.read_json(self.state_path, None) or {}
        st.setdefault("highest_installed", None)
        st.setdefault("failed", {})
        st.setdefault("attempts", {})
        st.setdefault("last_result", None)
        return st

    def save_state(self, st: dict[str, Any]) -> None:
        fsutil.atomic_write_json(self.state_path, st)

    def journal(self) -> dict[str, Any] | None:
        return fsutil.read_json(self.journal_path, None)

    def set_journal(self, phase: str, **fields: Any) -> dict[str, Any]:
        j = dict(self.journal() or {})
        j.update(fields)
        j["phase"] = phase
        j["updated"] = now_iso()
        fsutil.atomic_write_json(self.journal_path, j)
        return j

    def clear_journal(self) -> None:
        try:
            self.journal_path.unlink()
            fsutil.fsync_dir(self.state_dir)
        except FileNotFoundError:
            pass

    def highest_installed(self) -> Version | None:
        h = self.state()["highest_installed"]
        return Version(h) if h else None

    def record_installed(self, version: str) -> None:
        """Raise the persisted high-water mark: no version at or below it is installed again."""
        st = self.state()
        h = st["highest_installed"]
        if h is None or Version(version) > Version(h):
            st["highest_installed"] = version
        st["attempts"].pop(version, None)
        self.save_state(st)

    # ---- slots
    def slot_dir(self, slot: str) -> Path:
        return self.slots_dir / slot

    def slot_info(self, slot: str) -> dict[str, Any] | None:
        """The `.complete` record of a slot, or None when the slot is empty or half-written."""
        return fsutil.read_json(self.slot_dir(slot) / ".complete", None)

    def current_slot(self) -> str | None:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        name = Path(target).name
        return name if name in SLOTS else None

    def current_version(self) -> str | None:
        slot = self.current_slot()
        info = self.slot_info(slot) if slot else None
        return info["version"] if info else None

    def inactive_slot(self) -> str:
        cur = self.current_slot()
        return "b" if cur == "a" else "a"

    def verify_slot(self, slot: str) -> bool:
        """Re-hash every file of a slot against its `.complete` record (slow path, used by status --verify)."""
        info = self.slot_info(slot)
        if not info:
            return False
        base = self.slot_dir(slot)
        for rel, digest in info["files"].items():
            p = base / rel
            if not p.is_file() or sha256_file(p) != digest:
                return False
        return True

    def switch(self, slot: str) -> None:
        if not self.slot_info(slot):
            raise BundleError(f"slot {slot} is not a complete release; refusing to switch to it")
        self.root.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_symlink(f"slots/{slot}", self.current_link)

    def stage(self, bundle: Path, slot: str, progress: Progress | None = None) -> Manifest:
        """Build a complete release in `slot` from a verified bundle; never touches the current slot."""
        if slot == self.current_slot():
            raise BundleError(f"refusing to stage into the running slot {slot}")
        self._clean_scratch()
        self.staging.mkdir(parents=True)
        manifest = extract_verified(bundle, self.staging, progress)
        site = self.staging / "site"
        site.mkdir()
        models = self.staging / "models"
        if manifest.kind == "models":
            self._inherit_app(manifest, site, models)
        else:
            wheels = sorted((self.staging / "app").glob("*.whl"))
            for i, whl in enumerate(wheels):
                install_wheel(whl, site)
                if progress:
                    progress("install", i + 1, len(wheels))
            shutil.rmtree(self.staging / "app")
        models.mkdir(exist_ok=True)
        (self.staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
        bindir = self.staging / "bin"
        bindir.mkdir()
        launcher = bindir / "polewatch"
        launcher.write_text(LAUNCHER.format(version=manifest.version, python=self.python, entry=manifest.entry))
        launcher.chmod(0o755)
        # polewatch.service runs current/venv/bin/polewatch; same launcher
        (self.staging / "venv" / "bin").mkdir(parents=True)
        os.symlink("../../bin/polewatch", self.staging / "venv" / "bin" / "polewatch")
        files = {}
        for p in sorted(self.staging.rglob("*")):
            if p.is_file() and not p.is_symlink():
                files[str(p.relative_to(self.staging))] = sha256_file(p)
        fsutil.fsync_tree(self.staging)
        fsutil.atomic_write_json(self.staging / ".complete", {"version": manifest.version, "kind": manifest.kind,
                                                               "installed": now_iso(), "files": files})
        # Swap the finished tree into the inactive slot: the old content is renamed
        # away first, so at every instant the slot is either absent or complete.
        self.slots_dir.mkdir(parents=True, exist_ok=True)
        dest = self.slot_dir(slot)
        trash = self.root / f".trash-{slot}"
        if dest.exists():
            os.replace(dest, trash)
        os.replace(self.staging, dest)
        fsutil.fsync_dir(self.slots_dir)
        fsutil.fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        return manifest

    def _inherit_app(self, manifest: Manifest, site: Path, models: Path) -> None:
        """A models-only bundle: copy the running release's application and models, then overlay the new models."""
        cur = self.current_slot()
        if not cur or not self.slot_info(cur):
            raise BundleError("a models-only bundle needs an installed release to take the application from")
        src = self.slot_dir(cur)
        shutil.copytree(src / "site", site, dirs_exist_ok=True)
        models.mkdir(exist_ok=True)
        for m in (src / "models").iterdir() if (src / "models").is_dir() else []:
            if m.is_file() and not (models / m.name).exists():
                shutil.copy2(m, models / m.name)
        # the launcher entry stays the running release's entry
        cur_manifest = json.loads((src / "manifest.json").read_text())
        manifest.entry = cur_manifest.get("entry", manifest.entry)

    def _clean_scratch(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        for slot in SLOTS:
            shutil.rmtree(self.root / f".trash-{slot}", ignore_errors=True)
        for tmp in self.root.glob(".current.new"):
            tmp.unlink(missing_ok=True)

    def factory_install(self, bundle: Path) -> Manifest:
        """First install from a local bundle (image build, lab bench): slot a, current -> a.

        No TUF here: the image build is the root of trust for the first release.
        The manifest's file hashes are still checked.
        """
        self.lock(wait=True)
        try:
            slot = "a" if self.current_slot() != "a" else "b"
            manifest = self.stage(bundle, slot)
            self.switch(slot)
            self.record_installed(manifest.version)
            return manifest
        finally:
            self.unlock()

    # ---- recovery after power loss or SIGKILL
    def recover(self) -> dict[str, Any] | None:
        """Bring the device back to a startable release; return what was done, or None.

        Runs at boot before polewatch.service (polewatch-ota-recover.service) and
        before every install. Skips (returns None) while another updater holds the lock.
        """
        try:
            self.lock()
        except Busy:
            return None
        try:
            return self._recover_locked()
        finally:
            self.unlock()

    def _recover_locked(self) -> dict[str, Any] | None:
        action: dict[str, Any] | None = None
        self._clean_scratch()
        j = self.journal()
        if j:
            phase, version = j.get("phase"), j.get("version")
            if phase == "committing":
                self.record_installed(version)
                action = {"action": "commit", "version": version, "detail": "finished an interrupted commit"}
                self._set_result("installed", version, j.get("from_version"), "commit completed after restart")
            elif phase in UNCONFIRMED:
                prev = j.get("from_slot")
                if prev and self.slot_info(prev) and self.current_slot() != prev:
                    self.switch(prev)
                st = self.state()
                n = st["attempts"].get(version, 0) + 1
                st["attempts"][version] = n
                if n >= self.max_attempts:
                    st["failed"][version] = f"interrupted {n} times during install"
                self.save_state(st)
                reason = f"install of {version} interrupted during {phase}; back on {j.get('from_version')}"
                action = {"action": "rollback", "version": version, "detail": reason}
                self._set_result("rolled_back", version, j.get("from_version"), reason)
            self.clear_journal()  # a staged-but-not-activated release is simply staged again next time
        cur = self.current_slot()
        if cur is None or not self.slot_info(cur):
            # current missing or pointing at a half-written slot: take any complete slot, newest first
            good = [s for s in SLOTS if self.slot_info(s)]
            good.sort(key=lambda s: Version(self.slot_info(s)["version"]), reverse=True)
            if good:
                self.switch(good[0])
                action = action or {"action": "repair", "version": self.slot_info(good[0])["version"],
                                    "detail": f"current link repaired to slot {good[0]}"}
        return action

    def _set_result(self, outcome: str, version: str | None, previous: str | None, detail: str) -> None:
        st = self.state()
        st["last_result"] = {"outcome": outcome, "version": version, "previous": previous,
                             "detail": detail, "time": now_iso()}
        self.save_state(st)


def is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
