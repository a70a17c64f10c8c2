"""The IT manager's release repository: TUF metadata and bundles as plain files.

    <repo>/metadata/  1.root.json 2.root.json ... root.json, N.targets.json,
                      N.snapshot.json, timestamp.json
    <repo>/targets/   <sha256>.bundles/polewatch-<version>.tar

Any static HTTPS server can serve <repo>. Consistent snapshots are on, so a
publish never changes a file a device may be reading: new files appear first
and timestamp.json is replaced last.

Keys are PKCS#8 PEM files in one or more key directories (keep root keys
offline, each on its own medium, and pass `--keys` once per medium when
signing a root change). Roles: root (threshold configurable, 2 recommended),
targets (signs releases), snapshot and timestamp (online; timestamp must be
refreshed before it expires, e.g. daily from a timer).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    Key,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from ota import fsutil
from ota.errors import RepositoryToolError
from ota.manifest import parse_version, read_manifest

ROLES = ("root", "targets", "snapshot", "timestamp")
TOP = ("targets", "snapshot", "timestamp")
DEFAULT_EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=30),
    "timestamp": timedelta(days=7),
}
PASSPHRASE_ENV = "POLEWATCH_OTA_KEY_PASSPHRASE"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def generate_key(key_dir: Path, role: str) -> CryptoSigner:
    """New Ed25519 key for `role`, written as `<role>-<keyid8>.pem` (mode 0600, encrypted if the passphrase env is set)."""
    signer = CryptoSigner.generate_ed25519()
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    pw = os.environ.get(PASSPHRASE_ENV)
    enc = serialization.BestAvailableEncryption(pw.encode()) if pw else serialization.NoEncryption()
    pem = signer._private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fsutil.atomic_write(key_dir / f"{role}-{signer.public_key.keyid[:8]}.pem", pem, mode=0o600)
    return signer


def load_keys(key_dirs: Iterable[Path]) -> dict[str, CryptoSigner]:
    """All private keys found in `key_dirs`, by TUF keyid."""
    pw = os.environ.get(PASSPHRASE_ENV)
    out: dict[str, CryptoSigner] = {}
    for d in key_dirs:
        for pem in sorted(Path(d).glob("*.pem")):
            try:
                priv = serialization.load_pem_private_key(pem.read_bytes(), pw.encode() if pw else None)
            except (ValueError, TypeError) as exc:
                raise RepositoryToolError(f"{pem}: cannot load private key ({exc}); is {PASSPHRASE_ENV} right?") from None
            if not isinstance(priv, Ed25519PrivateKey):
                raise RepositoryToolError(f"{pem}: not an Ed25519 key")
            signer = CryptoSigner(priv, SSlibKey.from_crypto(priv.public_key()))
            out[signer.public_key.keyid] = signer
    return out


class ReleaseRepository:
    """Create and maintain a TUF release repository on the IT manager's workstation."""

    def __init__(self, repo_dir: Path, key_dirs: Iterable[Path]):
        self.dir = Path(repo_dir)
        self.meta_dir = self.dir / "metadata"
        self.targets_dir = self.dir / "targets"
        self.key_dirs = [Path(k) for k in key_dirs]
        self.keys = load_keys(self.key_dirs)
        self.expiry = dict(DEFAULT_EXPIRY)

    # ---- creating
    @classmethod
    def create(cls, repo_dir: Path, key_dir: Path, root_keys: int = 3, root_threshold: int = 2,
               targets_keys: int = 1, targets_threshold: int = 1) -> ReleaseRepository:
        """Generate all keys into `key_dir` and write version 1 of every role."""
        if not 1 <= root_threshold <= root_keys:
            raise RepositoryToolError(f"root threshold {root_threshold} must be between 1 and the {root_keys} root keys")
        if not 1 <= targets_threshold <= targets_keys:
            raise RepositoryToolError(f"targets threshold {targets_threshold} must be between 1 and {targets_keys}")
        repo_dir = Path(repo_dir)
        if (repo_dir / "metadata" / "1.root.json").exists():
            raise RepositoryToolError(f"{repo_dir} already holds a repository")
        counts = {"root": root_keys, "targets": targets_keys, "snapshot": 1, "timestamp": 1}
        root = Root(expires=_utcnow() + DEFAULT_EXPIRY["root"], consistent_snapshot=True)
        for role, n in counts.items():
            for _ in range(n):
                root.add_key(generate_key(key_dir, role).public_key, role)
        root.roles["root"].threshold = root_threshold
        root.roles["targets"].threshold = targets_threshold
        repo = cls(repo_dir, [key_dir])
        repo.meta_dir.mkdir(parents=True, exist_ok=True)
        repo.targets_dir.mkdir(parents=True, exist_ok=True)
        repo._write_root(Metadata(root), old_root=None)
        repo._write_top(Metadata(Targets(expires=_utcnow() + DEFAULT_EXPIRY["targets"])))
        return repo

    # ---- reading current state
    def root(self) -> Metadata[Root]:
        return Metadata.from_file(str(self.meta_dir / "root.json"))

    def timestamp(self) -> Metadata[Timestamp]:
        return Metadata.from_file(str(self.meta_dir / "timestamp.json"))

    def snapshot(self) -> Metadata[Snapshot]:
        v = self.timestamp().signed.snapshot_meta.version
        return Metadata.from_file(str(self.meta_dir / f"{v}.snapshot.json"))

    def targets(self) -> Metadata[Targets]:
        v = self.snapshot().signed.meta["targets.json"].version
        return Metadata.from_file(str(self.meta_dir / f"{v}.targets.json"))

    def releases(self) -> list[dict]:
        out = []
        for path, tf in self.targets().signed.targets.items():
            out.append({"path": path, "length": tf.length, "sha256": tf.hashes.get("sha256"),
                        **tf.custom.get("polewatch", {})})
        out.sort(key=lambda r: parse_version(r["version"]))
        return out

    # ---- signing
    def _sign(self, md: Metadata, role: str, root: Root, exclude: Iterable[str] = ()) -> None:
        """Sign with every available key of `role`; refuse to write metadata that would not verify."""
        md.signatures.clear()
        for keyid in root.roles[role].keyids:
            if keyid in self.keys and keyid not in exclude:
                md.sign(self.keys[keyid], append=True)
        try:
            root.verify_delegate(role, md.signed_bytes, md.signatures)
        except UnsignedMetadataError:
            have = len(md.signatures)
            raise RepositoryToolError(
                f"{role} needs {root.roles[role].threshold} signature(s) but only {have} of its keys are in "
                f"{', '.join(map(str, self.key_dirs))}") from None

    def _write(self, name: str, md: Metadata) -> None:
        fsutil.atomic_write(self.meta_dir / name, md.to_bytes(JSONSerializer(compact=False)))

    def _write_root(self, md: Metadata[Root], old_root: Root | None, exclude: Iterable[str] = ()) -> None:
        """A new root must satisfy both the old root's and its own threshold (TUF 5.3.4)."""
        new = md.signed
        md.signatures.clear()
        signers = set(new.roles["root"].keyids) | (set(old_root.roles["root"].keyids) if old_root else set())
        for keyid in sorted(signers):
            if keyid in self.keys and keyid not in exclude:
                md.sign(self.keys[keyid], append=True)
        for label, trusted in (("new", new), ("previous", old_root)):
            if trusted is None:
                continue
            try:
                trusted.verify_delegate("root", md.signed_bytes, md.signatures)
            except UnsignedMetadataError:
                raise RepositoryToolError(
                    f"root v{new.version} lacks the {label} root's threshold of {trusted.roles['root'].threshold} "
                    "signatures: add the key directories holding more root keys (--keys)") from None
        self._write(f"{new.version}.root.json", md)
        self._write("root.json", md)

    def _write_top(self, targets: Metadata[Targets] | None = None, *, snapshot_only: bool = False,
                   expires: datetime | None = None) -> None:
        """Write new versions of targets (if given), snapshot, timestamp, in that order."""
        root = self.root().signed
        if targets is not None:
            self._sign(targets, "targets", root)
            self._write(f"{targets.signed.version}.targets.json", targets)
            tv = targets.signed.version
        else:
            tv = self.snapshot().signed.meta["targets.json"].version
        if (self.meta_dir / "timestamp.json").exists():
            snap = Snapshot(version=self.snapshot().signed.version + 1)
        else:
            snap = Snapshot(version=1)
        snap.meta = {"targets.json": MetaFile(version=tv)}
        snap.expires = _utcnow() + self.expiry["snapshot"]
        smd = Metadata(snap)
        self._sign(smd, "snapshot", root)
        self._write(f"{snap.version}.snapshot.json", smd)
        self.refresh_timestamp(expires=expires, _snapshot=smd)

    # ---- IT manager operations
    def refresh_timestamp(self, expires: datetime | None = None, _snapshot: Metadata | None = None) -> int:
        """New timestamp version; run regularly so devices never see expired metadata."""
        root = self.root().signed
        snap = _snapshot or self.snapshot()
        raw = snap.to_bytes(JSONSerializer(compact=False))
        exists = (self.meta_dir / "timestamp.json").exists()
        version = self.timestamp().signed.version + 1 if exists else 1
        ts = Timestamp(version=version, expires=expires or _utcnow() + self.expiry["timestamp"],
                       snapshot_meta=MetaFile.from_data(snap.signed.version, raw, ["sha256"]))
        md = Metadata(ts)
        self._sign(md, "timestamp", root)
        self._write("timestamp.json", md)
        return version

    def publish(self, bundle: Path) -> dict:
        """Add a release bundle as a signed target; returns its entry."""
        manifest = read_manifest(Path(bundle))
        name = f"bundles/{manifest.name}-{manifest.version}.tar"
        targets = self.targets()
        for path, tf in targets.signed.targets.items():
            if tf.custom.get("polewatch", {}).get("version") == manifest.version:
                raise RepositoryToolError(f"release {manifest.version} is already published as {path}; "
                                          "a published version is never replaced: publish a higher version")
        tf = TargetFile.from_file(name, str(bundle), ["sha256"])
        tf.unrecognized_fields["custom"] = {"polewatch": manifest.custom()}
        dest = self.targets_dir / "bundles" / f"{tf.hashes['sha256']}.{Path(name).name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(bundle, tmp)
        os.replace(tmp, dest)
        targets.signed.targets[name] = tf
        targets.signed.version += 1
        targets.signed.expires = _utcnow() + self.expiry["targets"]
        self._write_top(targets)
        return {"path": name, "length": tf.length, "sha256": tf.hashes["sha256"], **manifest.custom()}

    def rotate(self, role: str, key_dir: Path) -> list[str]:
        """Replace every key of `role` with new ones generated into `key_dir`; returns the new keyids."""
        if role not in ROLES:
            raise RepositoryToolError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        old = self.root()
        md = self.root()
        root = md.signed
        old_ids = list(root.roles[role].keyids)
        new_ids = []
        for _ in old_ids:
            signer = generate_key(Path(key_dir), role)
            self.keys[signer.public_key.keyid] = signer
            new_ids.append(signer.public_key.keyid)
        for k in old_ids:
            root.revoke_key(k, role)
        for k in new_ids:
            root.add_key(self.keys[k].public_key, role)
        self._bump_root(md, old.signed)
        self._resign_after_root_change(role)
        return new_ids

    def revoke(self, keyid: str, replacement_dir: Path) -> list[str]:
        """Remove a compromised key from every role; add a new key where the role would fall below its threshold.

        The compromised key does not sign the new root even if it is a root key.
        Returns the ids of replacement keys.
        """
        old = self.root()
        md = self.root()
        root = md.signed
        roles = [r for r in ROLES if keyid in root.roles[r].keyids]
        if not roles:
            raise RepositoryToolError(f"key {keyid} is not used by any role")
        added = []
        for role in roles:
            root.revoke_key(keyid, role)
            while len(root.roles[role].keyids) < root.roles[role].threshold:
                signer = generate_key(Path(replacement_dir), role)
                self.keys[signer.public_key.keyid] = signer
                root.add_key(signer.public_key, role)
                added.append(signer.public_key.keyid)
        self._bump_root(md, old.signed, exclude=[keyid])
        self.keys.pop(keyid, None)
        for role in roles:
            self._resign_after_root_change(role)
        return added

    def _bump_root(self, md: Metadata[Root], old_root: Root, exclude: Iterable[str] = ()) -> None:
        md.signed.version += 1
        md.signed.expires = _utcnow() + self.expiry["root"]
        self._write_root(md, old_root, exclude=exclude)

    def _resign_after_root_change(self, role: str) -> None:
        """Re-sign the changed role's metadata with its new keys (new version, so devices fetch it)."""
        if role in ("targets", "snapshot", "root"):
            targets = self.targets()
            if role == "targets":
                targets.signed.version += 1
                self._write_top(targets)
            else:
                self._write_top()
        else:
            self.refresh_timestamp()

    def key_roles(self) -> dict[str, list[str]]:
        root = self.root().signed
        return {r: list(root.roles[r].keyids) for r in ROLES}


def utc_expiry(days: float) -> datetime:
    return _utcnow() + timedelta(days=days)


__all__ = ["ReleaseRepository", "generate_key", "load_keys", "Key", "utc_expiry"]
