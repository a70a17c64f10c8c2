"""Attacks on the update path, each against a real TUF repository served over
loopback HTTP. Every attack must be rejected with the installed release
untouched: same `current` link, same slot record, same high-water mark, the
old application still running and healthy, and no success in the audit trail.
"""

from __future__ import annotations

import shutil
import tarfile
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import MetaFile, Metadata, Root, TargetFile, Timestamp

from ota.devserver import RangeRequestHandler
from ota.repository import ReleaseRepository
from ota_support import Pole, RepoEnv, make_bundle, wait_healthy


class EndlessTargets(RangeRequestHandler):
    """A hostile mirror: any bundle URL streams bytes for ever."""

    def do_GET(self):
        if "/targets/" not in self.path:
            return super().do_GET()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"\0" * 65536
        sent = 0
        try:
            while sent < 1 << 30:  # a bound so a broken client cannot hang the test run
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


class EndlessTimestamp(RangeRequestHandler):
    def do_GET(self):
        if not self.path.endswith("/timestamp.json"):
            return super().do_GET()
        self.send_response(HTTPStatus.OK)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(16384):
                self.wfile.write(b" " * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def _world(tmp_path: Path, handler=None):
    env = RepoEnv(tmp_path, handler=handler)
    pole = Pole(tmp_path / "pole", env.url, env.trusted_root, health_timeout_s=5)
    try:
        pole.factory_install(env.publish("1.0.0"))
    except BaseException:
        pole.stop()
        env.stop()
        raise
    return env, pole


@pytest.fixture
def world(tmp_path):
    env = RepoEnv(tmp_path)
    pole = Pole(tmp_path / "pole", env.url, env.trusted_root, health_timeout_s=5)
    try:
        pole.factory_install(env.publish("1.0.0"))
        # first contact: the device now trusts the repository's current metadata
        assert pole.updater.apply().outcome == "up_to_date"
        yield env, pole
    finally:
        pole.stop()
        env.stop()


def assert_rejected_untouched(pole: Pole, before: dict, result, *words: str) -> None:
    assert result.outcome == "rejected", result
    for w in words:
        assert w in result.detail, result.detail
    assert pole.snapshot() == before
    assert pole.updater.slots.verify_slot(pole.updater.slots.current_slot())
    assert wait_healthy(pole.health_file, before["version"]), "the running release was disturbed"
    actions = [a for a, _ in pole.audit_log]
    assert "ota.rejected" in actions and "ota.success" not in actions
    assert pole.updater.slots.journal() is None


def _served_bundle(env: RepoEnv, version: str) -> Path:
    found = list((env.tmp / "repo" / "targets" / "bundles").glob(f"*.polewatch-{version}.tar"))
    assert len(found) == 1
    return found[0]


def _forge_top(repo: ReleaseRepository, targets: Metadata, targets_signers, version_bump: int = 1) -> None:
    """What an attacker holding the online snapshot/timestamp keys (but not `targets_signers`' authority) serves."""
    targets.signed.version += version_bump
    targets.signatures.clear()
    for s in targets_signers:
        targets.sign(s, append=True)
    repo._write(f"{targets.signed.version}.targets.json", targets)
    root = repo.root().signed
    snap = repo.snapshot()
    snap.signed.version += 1
    snap.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    repo._sign(snap, "snapshot", root)
    repo._write(f"{snap.signed.version}.snapshot.json", snap)
    repo.refresh_timestamp(_snapshot=snap)


def _evil_target(env: RepoEnv, targets: Metadata, version: str) -> None:
    bundle = make_bundle(env.tmp / "evil", version)
    tf = TargetFile.from_file(f"bundles/polewatch-{version}.tar", str(bundle), ["sha256"])
    tf.unrecognized_fields["custom"] = {"polewatch": {"version": version, "kind": "full", "hardware": ["any"],
                                                      "min_from": None}}
    targets.signed.targets[tf.path] = tf
    dest = env.tmp / "repo" / "targets" / "bundles" / f"{tf.hashes['sha256']}.polewatch-{version}.tar"
    shutil.copyfile(bundle, dest)


def test_rejects_tampered_bundle(world):
    env, pole = world
    env.publish("1.1.0")
    served = _served_bundle(env, "1.1.0")
    # the attacker swaps the model inside the bundle and repacks it (manifest left as is)
    work = env.tmp / "tamper"
    with tarfile.open(served) as tar:
        tar.extractall(work, filter="data")
    (work / "models" / "plate_ocr.onnx").write_bytes(b"evil model" * 500)
    with tarfile.open(served, "w") as tar:
        for name in ("manifest.json", "app", "models"):
            tar.add(work / name, arcname=name)
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "polewatch-1.1.0.tar")
    # repacking changed the length: caught by the signed length (or, were it equal, the signed hash)
    assert "DownloadLengthMismatchError" in res.detail or "LengthOrHashMismatchError" in res.detail
    # and the tampered bytes were not kept for a later resume
    assert not list((pole.data_dir / "ota" / "downloads").rglob("*.tar"))


def test_rejects_served_file_hash_differs(world):
    env, pole = world
    env.publish("1.1.0", model_bytes=200_000)
    served = _served_bundle(env, "1.1.0")
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0x01  # same length, one bit differs
    served.write_bytes(bytes(data))
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "LengthOrHashMismatchError", "hash")
    assert not list((pole.data_dir / "ota" / "downloads" / "partial").glob("*.part"))


def test_rejects_bundle_signed_by_unknown_key(world):
    env, pole = world
    targets = env.repo.targets()
    _evil_target(env, targets, "6.6.6")
    _forge_top(env.repo, targets, [CryptoSigner.generate_ed25519()])
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "UnsignedMetadataError", "targets")


def test_rejects_fewer_signatures_than_threshold(world):
    env, pole = world
    # an attacker stole ONE of the three root keys (threshold 2) and rotates the
    # targets role to a key of their own, then signs a release with it
    root_md = env.repo.root()
    root = root_md.signed
    stolen = env.repo.keys[root.roles["root"].keyids[0]]
    evil_targets_key = CryptoSigner.generate_ed25519()
    for k in list(root.roles["targets"].keyids):
        root.revoke_key(k, "targets")
    root.add_key(evil_targets_key.public_key, "targets")
    root.version += 1
    root_md.signatures.clear()
    root_md.sign(stolen)
    env.repo._write(f"{root.version}.root.json", root_md)
    targets = env.repo.targets()
    _evil_target(env, targets, "6.6.6")
    targets.signed.version += 1
    targets.signatures.clear()
    targets.sign(evil_targets_key)
    env.repo._write(f"{targets.signed.version}.targets.json", targets)
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "UnsignedMetadataError", "root")
    assert Metadata[Root].from_file(str(pole.data_dir / "tuf" / "root.json")).signed.version == 1


def test_rejects_rollback_to_older_release(world):
    env, pole = world
    env.publish("1.1.0")
    assert pole.updater.apply().outcome == "installed"
    pole.audit_log.clear()
    before = pole.snapshot()
    assert before["version"] == "1.1.0" and before["highest"] == "1.1.0"
    # a signed update command naming the old (validly signed) release
    res = pole.updater.apply("1.0.0")
    assert_rejected_untouched(pole, before, res, "rollback refused", "1.1.0")
    # the repository withdraws 1.1.0 with valid signatures, leaving only 1.0.0: still nothing installed
    targets = env.repo.targets()
    del targets.signed.targets["bundles/polewatch-1.1.0.tar"]
    targets.signed.version += 1
    env.repo._write_top(targets)
    res = pole.updater.apply()
    assert res.outcome == "up_to_date" and pole.snapshot() == before


def test_rejects_expired_metadata_freeze(world):
    env, pole = world
    env.publish("1.1.0")
    # freeze: the mirror keeps serving a timestamp that has run out
    env.repo.refresh_timestamp(expires=datetime.now(timezone.utc) - timedelta(minutes=1))
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "ExpiredMetadataError")


def test_rejects_mix_and_match_snapshot_and_targets(world):
    env, pole = world
    meta = env.tmp / "repo" / "metadata"
    old_targets_version = env.repo.targets().signed.version
    env.publish("1.1.0")
    new_v = env.repo.targets().signed.version
    # the mirror pairs the current snapshot/timestamp with an older (validly signed) targets file
    (meta / f"{new_v}.targets.json").write_bytes((meta / f"{old_targets_version}.targets.json").read_bytes())
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "BadVersionNumberError", "targets")


def test_rejects_oversized_target_endless_data(tmp_path):
    env, pole = _world(tmp_path, handler=EndlessTargets)
    try:
        bundle = env.publish("1.1.0", model_bytes=100_000)
        before = pole.snapshot()
        res = pole.updater.apply()
        assert_rejected_untouched(pole, before, res, "DownloadLengthMismatchError")
        # the download stopped at the signed length (plus at most one chunk)
        assert pole.updater.fetcher.bytes_received <= bundle.stat().st_size + pole.updater.fetcher.chunk_size + 65536
        assert not list((pole.data_dir / "ota" / "downloads" / "partial").glob("*.part"))
    finally:
        pole.stop()
        env.stop()


def test_rejects_oversized_metadata_endless_data(tmp_path):
    env, pole = _world(tmp_path, handler=EndlessTimestamp)
    try:
        env.publish("1.1.0")
        before = pole.snapshot()
        res = pole.updater.apply()
        assert_rejected_untouched(pole, before, res, "DownloadLengthMismatchError")
    finally:
        pole.stop()
        env.stop()


def test_rejects_replayed_old_metadata(world):
    env, pole = world
    meta = env.tmp / "repo" / "metadata"
    replay = env.tmp / "replay"
    shutil.copytree(meta, replay)  # what the repository served yesterday
    env.publish("1.1.0", hardware=["jetson"])  # not for this pole: the device only learns the new metadata
    assert pole.updater.apply().outcome == "up_to_date"
    pole.audit_log.clear()
    seen_ts = Metadata[Timestamp].from_file(str(pole.data_dir / "tuf" / "timestamp.json")).signed.version
    # the mirror now replays yesterday's metadata, which is still unexpired and validly signed
    shutil.rmtree(meta)
    shutil.copytree(replay, meta)
    before = pole.snapshot()
    res = pole.updater.apply()
    assert_rejected_untouched(pole, before, res, "BadVersionNumberError", "timestamp")
    assert Metadata[Timestamp].from_file(str(pole.data_dir / "tuf" / "timestamp.json")).signed.version == seen_ts
