"""Shared parts of the OTA tests and benchmark: real wheels, real bundles, a real TUF
repository served over loopback HTTP, and a device whose "application" is a real
subprocess started from the release slot.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ota.devserver import RepositoryServer
from ota.health import read_health_file
from ota.manifest import build_bundle
from ota.repository import ReleaseRepository
from ota.restart import ProcessRestarter
from ota.updater import Updater

# The application a test release runs: writes the health file the gate reads,
# as firmware.health does on a pole. MODE decides how healthy it claims to be.
APP = '''
import json, os, signal, sys, time
MODE = {mode!r}
VERSION = os.environ["POLEWATCH_RELEASE_VERSION"]
PATH = os.environ["POLEWATCH_HEALTH_FILE"]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
if MODE == "crash":
    sys.exit(3)
models = sorted(os.listdir(os.environ["POLEWATCH_MODELS_DIR"]))
while True:
    rep = {{"version": VERSION, "pid": os.getpid(), "time": time.time(), "frames_flowing": True,
           "recognizer_loaded": MODE == "healthy" and bool(models), "broker_connected": True, "models": models}}
    tmp = PATH + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(rep, f)
    os.replace(tmp, PATH)
    time.sleep(0.05)
'''


def build_wheel(out_dir: Path, version: str, mode: str = "healthy") -> Path:
    """A real, RECORD-hashed pure-Python wheel for package `pwtestapp`."""
    files = {
        "pwtestapp/__init__.py": f"VERSION = {version!r}\n".encode(),
        "pwtestapp/__main__.py": APP.format(mode=mode).encode(),
    }
    di = f"pwtestapp-{version}.dist-info"
    files[f"{di}/METADATA"] = f"Metadata-Version: 2.1\nName: pwtestapp\nVersion: {version}\n".encode()
    files[f"{di}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: polewatch-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, data in files.items():
        d = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={d},{len(data)}")
    record.append(f"{di}/RECORD,,")
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    whl = out_dir / f"pwtestapp-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return whl


def make_bundle(work: Path, version: str, mode: str = "healthy", model_bytes: int = 4096,
                min_from: str | None = None, hardware: list[str] | None = None, models_only: bool = False,
                seed: int = 0) -> Path:
    src = work / f"src-{version}"
    src.mkdir(parents=True, exist_ok=True)
    model = src / "plate_ocr.onnx"
    model.write_bytes(os.urandom(model_bytes) if model_bytes else b"")
    wheels = [] if models_only else [build_wheel(src, version, mode)]
    out = work / "bundles" / f"polewatch-{version}.tar"
    build_bundle(out, version, wheels, [model], hardware=hardware, min_from=min_from, entry="pwtestapp")
    return out


@dataclass
class Pole:
    """A simulated pole: data dir, release slots, a supervised application process, its updater."""

    root: Path
    url: str
    trusted_root: Path
    health_timeout_s: float = 10.0
    audit_log: list = field(default_factory=list)
    progress_log: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.root / "var"
        self.releases_dir = self.root / "opt"
        self.health_file = self.data_dir / "health.json"
        env = dict(os.environ, POLEWATCH_HEALTH_FILE=str(self.health_file))
        self.restarter = ProcessRestarter(self.releases_dir, args=(), env=env, log_path=self.root / "app.log")
        self.updater = self.make_updater()

    def make_updater(self, **kw) -> Updater:
        args = dict(repository_url=self.url, data_dir=self.data_dir, releases_dir=self.releases_dir,
                    trusted_root=self.trusted_root, restarter=self.restarter, health=self.health_file,
                    health_timeout_s=self.health_timeout_s, hardware="rpi5", python=Path(sys.executable),
                    activation="inline", download_timeout_s=5, download_retries=2,
                    audit=lambda a, d: self.audit_log.append((a, d)),
                    progress=lambda p, d, t: self.progress_log.append((p, d, t)))
        args.update(kw)
        return Updater(**args)

    def factory_install(self, bundle: Path) -> None:
        self.updater.slots.factory_install(bundle)
        self.restarter.start()
        assert wait_healthy(self.health_file, self.updater.slots.current_version())

    def snapshot(self) -> dict:
        """What 'installed release untouched' means: link, slot record, high-water mark."""
        s = self.updater.slots
        cur = s.current_slot()
        return {"current": os.readlink(s.current_link), "info": s.slot_info(cur) if cur else None,
                "highest": s.state()["highest_installed"], "version": s.current_version()}

    def stop(self) -> None:
        self.restarter.stop()


def wait_healthy(health_file: Path, version: str | None, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    since = time.time()
    while time.monotonic() < deadline:
        rep = read_health_file(health_file)
        if rep and rep.get("version") == version and rep.get("time", 0) >= since and rep.get("recognizer_loaded"):
            return True
        time.sleep(0.05)
    return False


class RepoEnv:
    """A real TUF repository (threshold-2 root) served over loopback HTTP."""

    def __init__(self, tmp: Path, handler=None):
        self.tmp = tmp
        self.keys = tmp / "keys"
        self.repo = ReleaseRepository.create(tmp / "repo", self.keys, root_keys=3, root_threshold=2)
        kw = {"handler": handler} if handler else {}
        self.server = RepositoryServer(tmp / "repo", **kw).start()
        self.trusted_root = tmp / "ota-root.json"
        self.trusted_root.write_bytes((tmp / "repo" / "metadata" / "1.root.json").read_bytes())

    @property
    def url(self) -> str:
        return self.server.url

    def publish(self, version: str, **kw) -> Path:
        bundle = make_bundle(self.tmp, version, **kw)
        self.repo.publish(bundle)
        return bundle

    def stop(self) -> None:
        self.server.stop()
