"""The device updater: one public class, `Updater`, is the whole device-side API.

    upd = Updater.from_config(cfg, audit=audit_log_callback)
    upd.check()                    -> CheckResult (newest installable release, if any)
    upd.apply(target, progress)    -> ApplyResult (check, download, verify, stage, switch, restart, gate)
    upd.recover()                  -> after power loss: back to a startable release
    upd.status()                   -> dict for telemetry / `polewatch ota status`

Trust comes from python-tuf's ngclient: the trusted metadata lives in
<data_dir>/tuf, outside the release slots, bootstrapped from the root.json
shipped in the OS image. Nothing is written to a release slot before the
bundle has passed TUF's length and hash checks and the bundle's own manifest
checks; nothing below the highest version ever installed is installed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Metadata, Targets
from tuf.ngclient import Updater as TufUpdater
from tuf.ngclient import UpdaterConfig

from ota import fsutil
from ota.errors import BundleError, Busy, OtaError, RejectedUpdate
from ota.fetcher import ResumableFetcher
from ota.health import HealthGate
from ota.manifest import read_manifest
from ota.restart import Restarter, SystemctlRestarter
from ota.slots import SlotStore, now_iso

log = logging.getLogger("polewatch.ota")

Progress = Callable[[str, int, int], None]
Audit = Callable[[str, dict[str, Any]], None]


@dataclass
class ReleaseInfo:
    """A release as the signed targets metadata describes it (before download)."""

    path: str
    version: str
    kind: str
    hardware: list[str]
    min_from: str | None
    length: int
    sha256: str


@dataclass
class CheckResult:
    installed: str | None
    available: ReleaseInfo | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"installed": self.installed, "available": asdict(self.available) if self.available else None,
                "reason": self.reason}


@dataclass
class ApplyResult:
    """What an update attempt did. outcome: installed, up_to_date, rolled_back, rejected, failed, busy, pending."""

    outcome: str
    version: str | None = None
    previous: str | None = None
    detail: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome in ("installed", "up_to_date", "pending")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_hardware() -> str:
    """Board family from the device tree: rpi4, rpi5, jetson or generic."""
    try:
        model = Path("/proc/device-tree/model").read_bytes().decode(errors="replace").strip("\x00 \n")
    except OSError:
        return "generic"
    low = model.lower()
    if "raspberry pi 5" in low:
        return "rpi5"
    if "raspberry pi 4" in low:
        return "rpi4"
    if "jetson" in low or "nvidia" in low:
        return "jetson"
    return "generic"


def _in_unit_cgroup(unit: str) -> bool:
    try:
        return f"/{unit}" in Path("/proc/self/cgroup").read_text()
    except OSError:
        return False


class Updater:
    """Signed, A/B, health-gated updates for one device."""

    def __init__(
        self,
        repository_url: str,
        data_dir: Path,
        releases_dir: Path,
        trusted_root: Path,
        *,
        restarter: Restarter | None = None,
        health: Path | Callable[[], dict | None] | None = None,
        health_require: list[str] | tuple[str, ...] = ("frames", "recognizer", "broker"),
        health_timeout_s: float = 90.0,
        audit: Audit | None = None,
        progress: Progress | None = None,
        hardware: str = "auto",
        python: Path | None = None,
        activation: str = "inline",
        service_unit: str = "polewatch.service",
        follow_timeout_s: float = 900.0,
        ca_file: Path | None = None,
        download_timeout_s: float = 30.0,
        download_retries: int = 3,
        max_attempts: int = 2,
        device_id: str = "",
    ):
        if not repository_url:
            raise OtaError("ota.repository_url is empty: set the release repository's base URL")
        self.base_url = repository_url.rstrip("/") + "/"
        self.data_dir = Path(data_dir)
        self.metadata_dir = self.data_dir / "tuf"
        self.state_dir = self.data_dir / "ota"
        self.download_dir = self.state_dir / "downloads"
        self.trusted_root = Path(trusted_root)
        self.slots = SlotStore(Path(releases_dir), self.state_dir, python=python, max_attempts=max_attempts)
        self.restarter: Restarter = restarter or SystemctlRestarter(service_unit)
        self.gate = HealthGate(health if health is not None else self.data_dir / "health.json", health_require)
        self.health_timeout_s = health_timeout_s
        self._audit = audit
        self._progress = progress
        self.hardware = detect_hardware() if hardware == "auto" else hardware
        if activation == "auto":
            activation = "service" if _in_unit_cgroup(service_unit) else "inline"
        if activation not in ("inline", "service"):
            raise OtaError(f"ota.activation {activation!r}: expected auto, inline or service")
        self.activation = activation
        self.follow_timeout_s = follow_timeout_s
        # the application (unprivileged, read-only /opt) asks the root install service through this file
        self.request_path = self.data_dir / "ota-request.json"
        self.progress_path = self.state_dir / "progress.jsonl"
        self.fetcher = ResumableFetcher(self.download_dir / "partial", self.base_url + "targets/",
                                        timeout_s=download_timeout_s, retries=download_retries, ca_file=ca_file,
                                        user_agent=f"polewatch-ota/{device_id or 'device'}")
        self._events = self.state_dir / "events.jsonl"

    @classmethod
    def from_config(cls, cfg: Any, **kw: Any) -> Updater:
        """Build from the whole `firmware.config.Config`; keyword arguments override (restarter, audit, health...)."""
        o = cfg.ota
        args: dict[str, Any] = dict(
            repository_url=o.repository_url, data_dir=cfg.device.data_dir, releases_dir=o.releases_dir,
            trusted_root=o.trusted_root, health=o.health_file or cfg.device.data_dir / "health.json",
            health_require=list(o.health_require), health_timeout_s=o.health_timeout_s, hardware=o.hardware,
            python=o.python, activation=o.activation, service_unit=o.service_unit, follow_timeout_s=o.follow_timeout_s,
            ca_file=o.ca_file, download_timeout_s=o.download_timeout_s, download_retries=o.download_retries,
            max_attempts=o.max_attempts, device_id=cfg.device.id)
        args.update(kw)
        return cls(**args)

    # ---- reporting
    def _event(self, action: str, **detail: Any) -> None:
        """Log, append to the local event file, and hand to the audit callback (which publishes)."""
        detail = {k: v for k, v in detail.items() if v is not None}
        entry = {"time": now_iso(), "action": f"ota.{action}", **detail}
        log.info("ota %s %s", action, json.dumps(detail, sort_keys=True))
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with open(self._events, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            log.error("cannot append to %s: %s", self._events, exc)
        if self._audit:
            try:
                self._audit(f"ota.{action}", detail)
            except Exception:  # the audit sink must not break an install half-way
                log.exception("audit callback failed for ota.%s", action)

    def events(self, limit: int = 50) -> list[dict[str, Any]]:
        try:
            lines = self._events.read_text(encoding="utf-8").splitlines()[-limit:]
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line torn by power loss
        return out

    # ---- TUF
    def _tuf(self) -> TufUpdater:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        kw = dict(metadata_dir=str(self.metadata_dir), metadata_base_url=self.base_url + "metadata/",
                  target_dir=str(self.download_dir), target_base_url=self.base_url + "targets/",
                  fetcher=self.fetcher, config=UpdaterConfig(app_user_agent="polewatch-ota"))
        try:
            return TufUpdater(**kw)
        except (OSError, tuf_exc.RepositoryError) as exc:
            log.info("local trusted root unusable (%s); bootstrapping from %s", exc, self.trusted_root)
        try:
            bootstrap = self.trusted_root.read_bytes()
        except OSError as exc:
            raise OtaError(f"no trusted root: {self.trusted_root} unreadable ({exc.strerror or exc}); "
                           "the image must ship the repository's root.json there") from None
        return TufUpdater(bootstrap=bootstrap, **kw)

    def _releases(self, tuf: TufUpdater) -> list[ReleaseInfo]:
        tuf.refresh()
        # refresh() verified and persisted targets.json: read the list of releases from it
        md = Metadata[Targets].from_file(str(self.metadata_dir / "targets.json"))
        out = []
        for path, tf in md.signed.targets.items():
            c = tf.custom.get("polewatch") if isinstance(tf.custom, dict) else None
            if not isinstance(c, dict) or "version" not in c or c.get("kind", "full") not in ("full", "models"):
                continue  # not an application release (e.g. an OS image for RAUC/Mender, docs/ota.md)
            try:
                Version(c["version"])
            except Exception:
                continue
            out.append(ReleaseInfo(path, c["version"], c.get("kind", "full"), list(c.get("hardware", ["any"])),
                                   c.get("min_from"), tf.length, tf.hashes.get("sha256", "")))
        return out

    def _floor(self) -> Version | None:
        vs = [Version(v) for v in (self.slots.state()["highest_installed"], self.slots.current_version()) if v]
        return max(vs) if vs else None

    def _select(self, tuf: TufUpdater, target: str | None) -> ReleaseInfo | None:
        releases = self._releases(tuf)
        floor = self._floor()
        current = self.slots.current_version()
        failed = self.slots.state()["failed"]
        if target is not None:
            found = [r for r in releases if Version(r.version) == Version(target)]
            if not found:
                raise RejectedUpdate(f"release {target} is not in the signed repository")
            cand = found[0]
            if floor is not None and Version(cand.version) <= floor:
                raise RejectedUpdate(f"rollback refused: {cand.version} is not above the highest installed "
                                     f"release {floor}")
            self._check_compatible(cand, current)
            return cand
        ok = []
        for r in releases:
            if floor is not None and Version(r.version) <= floor:
                continue
            if r.version in failed:
                continue
            try:
                self._check_compatible(r, current)
            except RejectedUpdate:
                continue
            ok.append(r)
        return max(ok, key=lambda r: Version(r.version)) if ok else None

    def _check_compatible(self, r: ReleaseInfo, current: str | None) -> None:
        if "any" not in r.hardware and self.hardware not in r.hardware:
            raise RejectedUpdate(f"release {r.version} is for {r.hardware}, this device is {self.hardware}")
        if r.min_from and (current is None or Version(current) < Version(r.min_from)):
            raise RejectedUpdate(f"release {r.version} upgrades only from {r.min_from} or later; installed is {current}")
        if r.kind == "models" and current is None:
            raise RejectedUpdate(f"release {r.version} carries only models and needs an installed application")

    # ---- public API
    def check(self) -> CheckResult:
        """Refresh the signed metadata and say which release would be installed (downloads no bundle)."""
        installed = self.slots.current_version()
        try:
            avail = self._select(self._tuf(), None)
        except (tuf_exc.RepositoryError, RejectedUpdate) as exc:
            self._event("check", installed=installed, error=f"rejected: {_describe(exc)}")
            raise RejectedUpdate(_describe(exc)) from None
        except tuf_exc.DownloadError as exc:
            self._event("check", installed=installed, error=f"repository unreachable: {_describe(exc)}")
            raise OtaError(f"repository unreachable: {_describe(exc)}") from None
        self._event("check", installed=installed, available=avail.version if avail else None)
        return CheckResult(installed, avail, "" if avail else "no newer compatible release")

    def apply(self, target: str | None = None, progress: Progress | None = None) -> ApplyResult:
        """Install `target` (a version string) or the newest compatible release.

        Called by the scheduler and by the signed MQTT update command. Reports
        progress(phase, done, total) with phases check, download, verify, stage,
        install, switch, restart, health, commit / rollback. Never raises for
        an update that fails; the result says what happened.
        """
        report = _fanout(self._progress, progress)
        if target is not None:
            try:
                target = str(Version(str(target)))
            except InvalidVersion:
                detail = f"{str(target)[:80]!r} is not a release version"
                self._event("rejected", target=str(target)[:80], error=detail)
                return ApplyResult("rejected", None, self.slots.current_version(), detail)
        if self.activation == "service":
            return self._delegate(target, report)
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        try:
            self.slots.lock()
        except Busy as exc:
            return ApplyResult("busy", target, self.slots.current_version(), str(exc))
        current = self.slots.current_version()
        info = None
        try:
            self._note_recovery(self.slots._recover_locked())
            current = self.slots.current_version()
            report("check", 0, 1)
            tuf = self._tuf()
            info = self._select(tuf, target)
            report("check", 1, 1)
            timings["check_s"] = time.monotonic() - t0
            self._event("check", installed=current, available=info.version if info else None, target=target)
            if info is None:
                return ApplyResult("up_to_date", current, current, "no newer compatible release", timings)
            bundle = self._download(tuf, info, report)
            timings["download_s"] = time.monotonic() - t0 - timings["check_s"]
            t1 = time.monotonic()
            manifest = read_manifest(bundle)
            self._match(manifest, info)
            to_slot = self.slots.inactive_slot()
            self.slots.set_journal("staging", version=info.version, to_slot=to_slot,
                                   from_slot=self.slots.current_slot(), from_version=current, started=now_iso())
            self.slots.stage(bundle, to_slot, report)
            self.slots.set_journal("staged")
            timings["stage_s"] = time.monotonic() - t1
            self._event("install", version=info.version, slot=to_slot, phase="staged", previous=current)
            bundle.unlink(missing_ok=True)
            res = self._activate_locked(report)
            res.timings = {**timings, **res.timings, "total_s": time.monotonic() - t0}
            return res
        except (RejectedUpdate, tuf_exc.RepositoryError, tuf_exc.DownloadLengthMismatchError) as exc:
            self._abandon_staging()
            detail = _describe(exc)
            self._event("rejected", version=info.version if info else target, installed=current, error=detail)
            return ApplyResult("rejected", info.version if info else target, current, detail, timings)
        except (tuf_exc.DownloadError, OtaError, OSError) as exc:
            self._abandon_staging()
            detail = _describe(exc)
            self._event("failed", version=info.version if info else target, installed=current, error=detail)
            return ApplyResult("failed", info.version if info else target, current, detail, timings)
        except Exception as exc:  # a bug must not take the caller (the appliance) down with it
            log.exception("update failed unexpectedly")
            self._abandon_staging()
            detail = f"internal error: {_describe(exc)}"
            self._event("failed", version=info.version if info else target, installed=current, error=detail)
            return ApplyResult("failed", info.version if info else target, current, detail, timings)
        finally:
            self.slots.unlock()

    def request(self, target: str | None = None) -> str:
        """Ask the install service (polewatch-ota-install.path) to apply `target`; returns the request id."""
        rid = uuid.uuid4().hex
        fsutil.atomic_write_json(self.request_path, {"id": rid, "target": target, "time": now_iso()})
        return rid

    def _delegate(self, target: str | None, report: Progress) -> ApplyResult:
        """Service mode: the install runs as root in polewatch-ota-install.service; relay its progress.

        If the update succeeds this process is restarted before the result
        arrives; the new release reads it from status()["last_result"].
        """
        rid = self.request(target)
        deadline = time.monotonic() + self.follow_timeout_s
        offset = 0
        while time.monotonic() < deadline:
            try:
                with open(self.progress_path, "rb") as f:
                    if os.fstat(f.fileno()).st_size < offset:
                        offset = 0  # the service started the file afresh for our request
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                complete = data[: data.rfind(b"\n") + 1]
                offset += len(complete)
                for line in complete.splitlines():
                    try:
                        p = json.loads(line)
                    except ValueError:
                        continue
                    if p.get("request") != rid:
                        continue
                    if p.get("result"):
                        return ApplyResult(**p["result"])
                    report(str(p["phase"]), int(p["done"]), int(p["total"]))
            time.sleep(0.1)
        return ApplyResult("pending", target, self.slots.current_version(),
                           f"install service has not finished request {rid} within {self.follow_timeout_s:g}s")

    def serve_request(self) -> ApplyResult | None:
        """Run a pending request from the application (root side of service mode).

        Progress goes to <data_dir>/ota/progress.jsonl, one JSON line per report
        (byte counts throttled), the result last.
        """
        req = fsutil.read_json(self.request_path, None)
        try:
            self.request_path.unlink()
        except FileNotFoundError:
            pass
        if not req:
            return None
        rid = str(req.get("id", ""))
        target = req.get("target")
        if target is not None and not isinstance(target, str):
            target = str(target)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.progress_path, "w", encoding="utf-8")
        last_write = 0.0
        last_phase = ""

        def write(obj: dict[str, Any]) -> None:
            out.write(json.dumps({"request": rid, **obj}) + "\n")
            out.flush()

        def progress(phase: str, done: int, total: int) -> None:
            nonlocal last_write, last_phase
            now = time.monotonic()
            if phase == last_phase and done < total and now - last_write < 0.2:
                return  # throttle byte counts; every phase change and completion goes out
            last_write, last_phase = now, phase
            write({"phase": phase, "done": done, "total": total})

        try:
            if self.activation != "inline":
                res = ApplyResult("failed", target, None, "serve_request needs activation inline")
            else:
                res = self.apply(target, progress=progress)
            write({"result": res.to_dict()})
        finally:
            out.close()
        return res

    def recover(self) -> dict[str, Any] | None:
        """Repair after power loss or SIGKILL (boot, before polewatch.service); see SlotStore.recover."""
        action = self.slots.recover()
        self._note_recovery(action)
        return action

    def _note_recovery(self, action: dict[str, Any] | None) -> None:
        if action:
            self._event(action["action"], version=action.get("version"), detail=action.get("detail"),
                        cause="recovery")

    def status(self) -> dict[str, Any]:
        st = self.slots.state()
        slots = {}
        for s in ("a", "b"):
            info = self.slots.slot_info(s)
            slots[s] = info["version"] if info else None
        return {"current": self.slots.current_version(), "current_slot": self.slots.current_slot(),
                "slots": slots, "highest_installed": st["highest_installed"], "failed": st["failed"],
                "last_result": st["last_result"], "journal": self.slots.journal(), "hardware": self.hardware,
                "repository": self.base_url}

    def run_schedule(self, interval_s: float, jitter_s: float = 0.0, stop: threading.Event | None = None) -> None:
        """Check and apply on a schedule until `stop` is set (polewatch-ota.service)."""
        stop = stop or threading.Event()
        self.recover()
        while not stop.is_set():
            res = self.apply()
            log.info("scheduled update: %s %s", res.outcome, res.detail)
            stop.wait(interval_s + random.uniform(0, jitter_s))

    # ---- steps
    def _download(self, tuf: TufUpdater, info: ReleaseInfo, report: Progress) -> Path:
        tinfo = tuf.get_targetinfo(info.path)
        if tinfo is None:
            raise RejectedUpdate(f"{info.path} vanished from the signed targets")
        dest = self.download_dir / Path(info.path).name
        self.download_dir.mkdir(parents=True, exist_ok=True)
        self._event("download", version=info.version, bytes=info.length, path=info.path)
        if tuf.find_cached_target(tinfo, str(dest)) is None:
            self.fetcher.progress = report
            try:
                tuf.download_target(tinfo, str(dest))
            finally:
                self.fetcher.progress = None
        report("verify", 1, 1)
        return dest

    def _match(self, manifest: Any, info: ReleaseInfo) -> None:
        """The bundle's manifest must say what the signed targets metadata said."""
        if (manifest.version, manifest.kind, manifest.hardware, manifest.min_from) != (
                info.version, info.kind, info.hardware, info.min_from):
            raise BundleError(f"bundle manifest ({manifest.version}, {manifest.kind}, {manifest.hardware}, "
                              f"{manifest.min_from}) differs from its signed target entry ({info.version}, "
                              f"{info.kind}, {info.hardware}, {info.min_from})")

    def _abandon_staging(self) -> None:
        j = self.slots.journal()
        if j and j.get("phase") in ("staging", "staged"):
            self.slots.clear_journal()
        try:
            self.slots._clean_scratch()
        except OSError:
            pass

    def _activate_locked(self, report: Progress) -> ApplyResult:
        j = self.slots.journal() or {}
        version, to_slot, from_slot = j["version"], j["to_slot"], j.get("from_slot")
        previous = j.get("from_version")
        t0 = time.monotonic()
        report("switch", 0, 1)
        self.slots.set_journal("switching")
        self.slots.switch(to_slot)
        self.slots.set_journal("trial")
        report("switch", 1, 1)
        report("restart", 0, 1)
        since = time.time()
        try:
            self.restarter.restart()
            report("restart", 1, 1)
            report("health", 0, 1)
            gate = self.gate.wait(version, since, self.health_timeout_s)
        except OtaError as exc:
            gate = None
            why = str(exc)
        else:
            why = gate.detail
        timings = {"restart_to_healthy_s": time.monotonic() - t0}
        if gate is not None and gate.healthy:
            report("health", 1, 1)
            self.slots.set_journal("committing")
            report("commit", 0, 1)
            self.slots.record_installed(version)
            self.slots._set_result("installed", version, previous, why)
            self.slots.clear_journal()
            report("commit", 1, 1)
            self._event("success", version=version, previous=previous, slot=to_slot, detail=why,
                        seconds=round(timings["restart_to_healthy_s"], 3))
            return ApplyResult("installed", version, previous, why, timings)
        return self._rollback(version, previous, from_slot, why, report, timings)

    def _rollback(self, version: str, previous: str | None, from_slot: str | None, why: str, report: Progress,
                  timings: dict[str, float]) -> ApplyResult:
        report("rollback", 0, 1)
        self.slots.set_journal("rolling_back", reason=why)
        back = ""
        if from_slot and self.slots.slot_info(from_slot):
            self.slots.switch(from_slot)
            since = time.time()
            try:
                self.restarter.restart()
                g = self.gate.wait(previous or "", since, self.health_timeout_s)
                back = f"; previous release {previous} {'healthy again' if g.healthy else 'NOT healthy: ' + g.detail}"
            except OtaError as exc:
                back = f"; restart of previous release failed: {exc}"
        st = self.slots.state()
        st["failed"][version] = why
        self.slots.save_state(st)
        detail = f"{why}; switched back to {previous}{back}"
        self.slots._set_result("rolled_back", version, previous, detail)
        self.slots.clear_journal()
        report("rollback", 1, 1)
        self._event("rollback", version=version, previous=previous, detail=detail)
        return ApplyResult("rolled_back", version, previous, detail, timings)


def _fanout(*cbs: Progress | None) -> Progress:
    live = [c for c in cbs if c]

    def report(phase: str, done: int, total: int) -> None:
        for c in live:
            try:
                c(phase, done, total)
            except Exception:
                log.exception("progress callback failed")
    return report


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    msg = str(exc) or repr(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in msg:
        msg += f" ({cause})"
    return f"{name}: {msg}"
