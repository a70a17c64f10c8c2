"""The IT manager's tooling: keys, thresholds, rotation and revocation, and the CLI,
checked by a device that follows the real repository over loopback."""

from __future__ import annotations

import json

import pytest
from tuf.api.metadata import Metadata, Root

from firmware import cli
from ota.errors import RepositoryToolError
from ota.repository import ReleaseRepository
from ota_support import Pole, make_bundle, wait_healthy
from test_ota_attacks import _evil_target, _forge_top, world  # noqa: F401  (world: a pole on a fresh repository)


def _device_root(pole: Pole) -> Root:
    return Metadata[Root].from_file(str(pole.data_dir / "tuf" / "root.json")).signed


@pytest.mark.parametrize("role", ["targets", "snapshot", "timestamp", "root"])
def test_rotated_keys_are_followed_by_the_device(world, role):
    env, pole = world
    old_ids = env.repo.key_roles()[role]
    new_ids = env.repo.rotate(role, env.tmp / "new-keys")
    assert len(new_ids) == len(old_ids) and not set(new_ids) & set(old_ids)
    env.publish("1.1.0")
    res = pole.updater.apply()
    assert res.outcome == "installed", res
    assert _device_root(pole).roles[role].keyids == new_ids
    assert wait_healthy(pole.health_file, "1.1.0")


def test_revoked_key_no_longer_signs(world):
    env, pole = world
    compromised = env.repo.key_roles()["targets"][0]
    stolen = env.repo.keys[compromised]
    added = env.repo.revoke(compromised, env.tmp / "new-keys")
    assert len(added) == 1 and compromised not in env.repo.key_roles()["targets"]
    assert pole.updater.apply().outcome == "up_to_date"  # device now trusts root v2
    assert compromised not in _device_root(pole).roles["targets"].keyids
    # the thief signs a release with the revoked key: refused
    targets = env.repo.targets()
    _evil_target(env, targets, "6.6.6")
    _forge_top(env.repo, targets, [stolen])
    before = pole.snapshot()
    res = pole.updater.apply()
    assert res.outcome == "rejected" and "UnsignedMetadataError" in res.detail
    assert pole.snapshot() == before


def test_revoked_root_key_does_not_sign_the_new_root(world):
    env, pole = world
    bad = env.repo.key_roles()["root"][0]
    env.repo.revoke(bad, env.tmp / "new-keys")
    md = Metadata[Root].from_file(str(env.tmp / "repo" / "metadata" / "2.root.json"))
    assert bad not in md.signatures and len(md.signatures) >= 2
    assert pole.updater.apply().outcome == "up_to_date"
    assert _device_root(pole).version == 2


def test_root_change_without_threshold_of_keys_is_refused(tmp_path):
    keys = tmp_path / "keys"
    ReleaseRepository.create(tmp_path / "repo", keys, root_keys=3, root_threshold=2)
    one = tmp_path / "one-key"
    one.mkdir()
    for pem in keys.glob("*.pem"):
        if not pem.name.startswith("root-"):
            (one / pem.name).write_bytes(pem.read_bytes())
    first_root = next(keys.glob("root-*.pem"))
    (one / first_root.name).write_bytes(first_root.read_bytes())
    repo = ReleaseRepository(tmp_path / "repo", [one])
    with pytest.raises(RepositoryToolError, match="threshold of 2"):
        repo.rotate("timestamp", tmp_path / "new")
    assert not (tmp_path / "repo" / "metadata" / "2.root.json").exists()
    # the online roles still work with the online keys only
    repo.refresh_timestamp()


def test_bad_thresholds_and_duplicate_release_refused(tmp_path):
    with pytest.raises(RepositoryToolError, match="between 1 and"):
        ReleaseRepository.create(tmp_path / "r", tmp_path / "k", root_keys=1, root_threshold=2)
    repo = ReleaseRepository.create(tmp_path / "repo", tmp_path / "keys")
    b = make_bundle(tmp_path, "1.0.0")
    repo.publish(b)
    with pytest.raises(RepositoryToolError, match="already published"):
        repo.publish(make_bundle(tmp_path / "again", "1.0.0"))


def test_cli_repository_and_device_commands(tmp_path, capsys):
    keys, repo_dir = tmp_path / "keys", tmp_path / "repo"
    assert cli.main(["ota", "init", "--repo", str(repo_dir), "--keys", str(keys), "--root-threshold", "2"]) == 0
    init = json.loads(capsys.readouterr().out)
    assert len(init["keys"]["root"]) == 3
    model = tmp_path / "plate_ocr.onnx"
    model.write_bytes(b"m" * 100)
    bundle = tmp_path / "b.tar"
    assert cli.main(["ota", "bundle", "--version", "2.0.1", "--model", str(model), "--min-from", "2.0.0",
                     "-o", str(bundle)]) == 0
    capsys.readouterr()
    assert cli.main(["ota", "publish", "--repo", str(repo_dir), "--keys", str(keys), str(bundle)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "2.0.1"
    assert cli.main(["ota", "timestamp", "--repo", str(repo_dir), "--keys", str(keys)]) == 0
    capsys.readouterr()
    # a second publish of the same version is a user error, not a traceback
    assert cli.main(["ota", "publish", "--repo", str(repo_dir), "--keys", str(keys), str(bundle)]) == 2
    assert "already published" in capsys.readouterr().err

    from ota.devserver import RepositoryServer
    with RepositoryServer(repo_dir) as srv:
        trusted = tmp_path / "root.json"
        trusted.write_bytes((repo_dir / "metadata" / "1.root.json").read_bytes())
        conf = tmp_path / "polewatch.toml"
        conf.write_text(f'[device]\ndata_dir = "{tmp_path / "var"}"\n[ota]\nrepository_url = "{srv.url}"\n'
                        f'trusted_root = "{trusted}"\nreleases_dir = "{tmp_path / "opt"}"\nhardware = "rpi5"\n')
        assert cli.main(["--config", str(conf), "ota", "check"]) == 0
        out = json.loads(capsys.readouterr().out)
        # nothing installed yet and the only release is models-only from 2.0.0: nothing to offer
        assert out["installed"] is None and out["available"] is None
        assert cli.main(["--config", str(conf), "ota", "status"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["current"] is None and st["events"][-1]["action"] == "ota.check"
