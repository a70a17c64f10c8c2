"""Device updater against a real TUF repository on loopback: install, resume, health-gated rollback."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest

from ota.devserver import RangeRequestHandler
from ota.errors import BundleError
from ota.manifest import build_bundle, extract_verified, read_manifest
from ota.slots import SlotStore
from ota_support import Pole, RepoEnv, build_wheel, make_bundle, wait_healthy


class CutOnce(RangeRequestHandler):
    """A flaky link: the first download of each bundle dies after `cut` bytes."""

    cut = 300_000
    log: list[tuple[str, str]] = []
    done: set[str] = set()

    def do_GET(self):
        type(self).log.append((self.path, self.headers.get("Range", "")))
        if "/targets/" not in self.path or self.path in CutOnce.done:
            return super().do_GET()
        CutOnce.done.add(self.path)
        f = self.send_head()
        try:
            self.wfile.write(f.read(self.cut))
            self.wfile.flush()
        finally:
            f.close()
        self.close_connection = True


@pytest.fixture
def world(tmp_path):
    env = RepoEnv(tmp_path)
    pole = Pole(tmp_path / "pole", env.url, env.trusted_root, health_timeout_s=3)
    try:
        pole.factory_install(env.publish("1.0.0"))
        yield env, pole
    finally:
        pole.stop()
        env.stop()


def test_update_installs_switches_restarts_and_reports(world):
    env, pole = world
    env.publish("1.1.0", model_bytes=300_000)
    res = pole.updater.apply()
    assert res.outcome == "installed" and res.version == "1.1.0" and res.previous == "1.0.0", res
    s = pole.updater.slots
    assert s.current_slot() == "b" and s.current_version() == "1.1.0"
    assert s.state()["highest_installed"] == "1.1.0"
    assert s.slot_info("a")["version"] == "1.0.0"  # the previous release stays for rollback
    assert s.verify_slot("b")
    assert wait_healthy(pole.health_file, "1.1.0")
    assert [a for a, _ in pole.audit_log] == ["ota.check", "ota.download", "ota.install", "ota.success"]
    phases = [p for p, _, _ in pole.progress_log]
    for ph in ("check", "download", "verify", "stage", "install", "switch", "restart", "health", "commit"):
        assert ph in phases, ph
    dl = [(d, t) for p, d, t in pole.progress_log if p == "download"]
    assert dl[-1][0] == dl[-1][1] and all(d <= t for d, t in dl)
    events = pole.updater.events()
    assert events[-1]["action"] == "ota.success" and events[-1]["version"] == "1.1.0"
    assert pole.updater.apply().outcome == "up_to_date"


def test_interrupted_download_resumes(tmp_path):
    CutOnce.log.clear()
    CutOnce.done.clear()
    env = RepoEnv(tmp_path, handler=CutOnce)
    pole = Pole(tmp_path / "pole", env.url, env.trusted_root, health_timeout_s=3)
    try:
        pole.factory_install(make_bundle(tmp_path, "1.0.0"))
        bundle = env.publish("1.1.0", model_bytes=1_000_000)
        # the link dies and this attempt gives up without retrying: the partial file stays
        res = pole.make_updater(download_retries=0).apply()
        assert res.outcome == "failed" and "DownloadError" in res.detail, res
        parts = list((pole.data_dir / "ota" / "downloads" / "partial").glob("*.part"))
        assert len(parts) == 1 and parts[0].stat().st_size == CutOnce.cut
        assert pole.snapshot()["version"] == "1.0.0"
        # next attempt asks only for the rest
        upd = pole.make_updater()
        res = upd.apply()
        assert res.outcome == "installed", res
        ranges = [r for p, r in CutOnce.log if "/targets/" in p]
        assert ranges == ["", f"bytes={CutOnce.cut}-"]
        assert upd.fetcher.bytes_received < bundle.stat().st_size - CutOnce.cut + 50_000
    finally:
        pole.stop()
        env.stop()


def test_download_retries_within_one_attempt(tmp_path):
    CutOnce.log.clear()
    CutOnce.done.clear()
    env = RepoEnv(tmp_path, handler=CutOnce)
    pole = Pole(tmp_path / "pole", env.url, env.trusted_root, health_timeout_s=3)
    try:
        pole.factory_install(make_bundle(tmp_path, "1.0.0"))
        env.publish("1.1.0", model_bytes=1_000_000)
        res = pole.updater.apply()
        assert res.outcome == "installed", res
        assert [r for p, r in CutOnce.log if "/targets/" in p] == ["", f"bytes={CutOnce.cut}-"]
    finally:
        pole.stop()
        env.stop()


@pytest.mark.parametrize("mode", ["unhealthy", "crash"])
def test_release_failing_health_gate_is_rolled_back(world, mode):
    env, pole = world
    env.publish("1.1.0", mode=mode)
    t0 = time.monotonic()
    res = pole.updater.apply()
    elapsed = time.monotonic() - t0
    assert res.outcome == "rolled_back", res
    assert elapsed < 120 and elapsed < pole.health_timeout_s + 20
    assert "not healthy within 3s" in res.detail and "healthy again" in res.detail
    s = pole.updater.slots
    assert s.current_slot() == "a" and s.current_version() == "1.0.0"
    assert s.state()["highest_installed"] == "1.0.0"
    assert "1.1.0" in s.state()["failed"]
    assert s.state()["last_result"]["outcome"] == "rolled_back"
    assert wait_healthy(pole.health_file, "1.0.0")
    assert [a for a, _ in pole.audit_log][-1] == "ota.rollback"
    assert "rollback" in [p for p, _, _ in pole.progress_log]
    # the failed release is not retried on schedule; a newer fixed one is
    assert pole.updater.apply().outcome == "up_to_date"
    env.publish("1.1.1")
    assert pole.updater.apply().outcome == "installed"


def test_models_only_bundle_keeps_the_application(world):
    env, pole = world
    env.publish("1.0.1", models_only=True, model_bytes=50_000, min_from="1.0.0")
    res = pole.updater.apply()
    assert res.outcome == "installed", res
    s = pole.updater.slots
    new, old = s.slot_info("b"), s.slot_info("a")
    assert new["version"] == "1.0.1" and new["kind"] == "models"
    assert new["files"]["site/pwtestapp/__main__.py"] == old["files"]["site/pwtestapp/__main__.py"]
    assert new["files"]["models/plate_ocr.onnx"] != old["files"]["models/plate_ocr.onnx"]
    assert wait_healthy(pole.health_file, "1.0.1")


def test_incompatible_releases_are_not_installed(world):
    env, pole = world
    env.publish("2.0.0", min_from="1.5.0")
    env.publish("1.9.0", hardware=["jetson"])
    before = pole.snapshot()
    assert pole.updater.apply().outcome == "up_to_date"
    r = pole.updater.apply("2.0.0")
    assert r.outcome == "rejected" and "upgrades only from 1.5.0" in r.detail
    r = pole.updater.apply("1.9.0")
    assert r.outcome == "rejected" and "jetson" in r.detail
    r = pole.updater.apply("7.0.0")
    assert r.outcome == "rejected" and "not in the signed repository" in r.detail
    r = pole.updater.apply("../../etc/passwd")  # a hostile command payload
    assert r.outcome == "rejected" and "not a release version" in r.detail
    assert pole.snapshot() == before
    assert pole.updater.check().available is None


def test_second_updater_is_told_busy(world):
    env, pole = world
    other = pole.make_updater()
    other.slots.lock()
    try:
        assert pole.updater.apply().outcome == "busy"
    finally:
        other.slots.unlock()


def test_first_boot_from_image_root_and_status(world):
    env, pole = world
    assert not (pole.data_dir / "tuf" / "root.json").exists()
    pole.updater.check()
    assert (pole.data_dir / "tuf" / "root.json").exists()
    st = pole.updater.status()
    assert st["current"] == "1.0.0" and st["slots"] == {"a": "1.0.0", "b": None} and st["journal"] is None


# ---- bundle format (no network)
def test_bundle_roundtrip_and_manifest_checks(tmp_path):
    whl = build_wheel(tmp_path / "w", "3.1.0")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 1000)
    out = tmp_path / "b.tar"
    m = build_bundle(out, "3.1.0", [whl], [model], hardware=["rpi5"], min_from="3.0.0")
    assert read_manifest(out).files == m.files and m.kind == "full"
    dest = tmp_path / "x"
    extract_verified(out, dest)
    assert (dest / "models" / "m.onnx").read_bytes() == b"x" * 1000

    # a member whose bytes differ from the manifest (same size) is refused
    bad = tmp_path / "bad.tar"
    with tarfile.open(out) as src, tarfile.open(bad, "w") as dst:
        for mem in src:
            data = src.extractfile(mem).read()
            if mem.name == "models/m.onnx":
                data = b"y" * 1000
            dst.addfile(mem, io.BytesIO(data))
    with pytest.raises(BundleError, match="sha256"):
        extract_verified(bad, tmp_path / "y")


@pytest.mark.parametrize("name", ["../evil.onnx", "models/../../etc/passwd", "/abs", "etc/cron.d/x", "app/x.py"])
def test_bundle_paths_outside_app_and_models_refused(tmp_path, name):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"m")
    out = tmp_path / "b.tar"
    m = build_bundle(out, "1.0.0", [], [model])
    manifest = json.loads(m.model_dump_json())
    manifest["files"][name] = manifest["files"]["models/m.onnx"]
    raw = json.dumps(manifest).encode()
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    with pytest.raises(BundleError):
        read_manifest(evil)


def test_symlink_member_refused(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"m")
    out = tmp_path / "b.tar"
    build_bundle(out, "1.0.0", [], [model])
    with tarfile.open(out, "a") as tar:
        info = tarfile.TarInfo("models/m.onnx")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)
    with pytest.raises(BundleError):
        extract_verified(out, tmp_path / "x")


def test_staging_never_touches_running_slot(tmp_path):
    s = SlotStore(tmp_path / "opt", tmp_path / "state")
    b = make_bundle(tmp_path, "1.0.0")
    s.factory_install(b)
    with pytest.raises(BundleError, match="running slot"):
        s.stage(b, s.current_slot())


def test_application_asks_the_install_service(world):
    """Service mode: the unprivileged application writes a request; the root install
    service (here a thread running serve_request, as polewatch-ota-install.service
    does when the .path unit fires) installs; progress and result come back."""
    import threading

    env, pole = world
    env.publish("1.1.0", model_bytes=200_000)
    service = pole.make_updater(activation="inline", progress=None, audit=None)
    app_progress: list = []
    app = pole.make_updater(activation="service", progress=lambda p, d, t: app_progress.append(p),
                            follow_timeout_s=60)

    def install_service() -> None:
        deadline = time.monotonic() + 30
        while not service.request_path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        service.serve_request()

    t = threading.Thread(target=install_service)
    t.start()
    res = app.apply("1.1.0")
    t.join()
    assert res.outcome == "installed" and res.version == "1.1.0", res
    assert {"download", "stage", "switch", "health", "commit"} <= set(app_progress)
    assert not app.request_path.exists()
    assert wait_healthy(pole.health_file, "1.1.0")
    # launcher reachable through the path polewatch.service uses
    assert (pole.releases_dir / "current" / "venv" / "bin" / "polewatch").resolve() == \
        (pole.releases_dir / "slots" / "b" / "bin" / "polewatch").resolve()


def test_https_repository_with_pinned_ca(tmp_path):
    """Production repositories are HTTPS: the fetcher trusts the configured CA, and only it."""
    import ssl

    import trustme

    from ota.devserver import RepositoryServer

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    env = RepoEnv(tmp_path)
    b1 = env.publish("1.0.0")
    env.publish("1.1.0")
    with RepositoryServer(tmp_path / "repo", ssl_context=server_ctx) as srv:
        assert srv.url.startswith("https://")
        pole = Pole(tmp_path / "pole", srv.url, env.trusted_root, health_timeout_s=5)
        try:
            pole.factory_install(b1)
            wrong = pole.make_updater()  # system CAs only: the private CA is not trusted
            res = wrong.apply()
            assert res.outcome == "failed" and pole.snapshot()["version"] == "1.0.0", res
            res = pole.make_updater(ca_file=ca_file).apply()
            assert res.outcome == "installed", res
        finally:
            pole.stop()
    env.stop()


def test_scheduled_checks_install_new_releases(world):
    import threading

    env, pole = world
    stop = threading.Event()
    t = threading.Thread(target=pole.updater.run_schedule, args=(0.2, 0.0, stop), daemon=True)
    t.start()
    try:
        env.publish("1.1.0")
        deadline = time.monotonic() + 30
        while pole.updater.slots.current_version() != "1.1.0" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        t.join(30)
    assert pole.updater.slots.current_version() == "1.1.0"
    assert wait_healthy(pole.health_file, "1.1.0")
