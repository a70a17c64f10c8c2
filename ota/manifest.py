"""Release bundle format: one tar holding manifest.json, app wheel(s) and model files.

The manifest names the release version, the hardware it runs on, the lowest
version it can upgrade from, and the sha256 and size of every other file, so
the device can check each byte it extracts against a signed list (the bundle
itself is covered by the TUF targets signature). A bundle of kind "models"
carries only models and reuses the application of the running release.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Literal

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ota.errors import BundleError

MANIFEST_NAME = "manifest.json"
FORMAT = 1
ALLOWED_TOP = ("app", "models")
CHUNK = 1 << 20


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise BundleError(f"{text!r} is not a release version (PEP 440, e.g. 1.4.2)") from None


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(BaseModel):
    """What a bundle claims to be; copied into the targets metadata as custom data."""

    model_config = ConfigDict(extra="forbid")
    format: int = FORMAT
    name: str = "polewatch"
    version: str
    kind: Literal["full", "models"] = "full"
    hardware: list[str] = Field(default_factory=lambda: ["any"], min_length=1)
    min_from: str | None = None
    entry: str = Field("firmware.cli", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    created: str = ""
    files: dict[str, FileEntry]

    @field_validator("version", "min_from")
    @classmethod
    def _pep440(cls, v: str | None) -> str | None:
        if v is not None:
            Version(v)  # ValueError becomes a ValidationError naming the field
        return v

    @field_validator("files")
    @classmethod
    def _paths(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        for name in files:
            check_member_path(name)
        return files

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    def supports(self, hardware: str) -> bool:
        return "any" in self.hardware or hardware in self.hardware

    def custom(self) -> dict:
        """The part of the manifest the device needs before downloading (goes into targets.json)."""
        return {"version": self.version, "kind": self.kind, "hardware": self.hardware, "min_from": self.min_from}


def check_member_path(name: str) -> PurePosixPath:
    """Refuse absolute paths, '..', and anything outside app/ or models/ (a bundle must not write elsewhere)."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or len(p.parts) < 2 or p.parts[0] not in ALLOWED_TOP or str(p) != name:
        raise BundleError(f"bundle path {name!r} is not a plain path under app/ or models/")
    if p.parts[0] == "app" and (len(p.parts) != 2 or not p.name.endswith(".whl")):
        raise BundleError(f"bundle path {name!r}: app/ holds only wheel files")
    return p


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def build_bundle(
    out: Path,
    version: str,
    wheels: list[Path],
    models: list[Path],
    hardware: list[str] | None = None,
    min_from: str | None = None,
    entry: str = "firmware.cli",
) -> Manifest:
    """Write a release bundle to `out`; with no wheels it is a models-only bundle."""
    parse_version(version)
    if min_from is not None:
        parse_version(min_from)
    if not wheels and not models:
        raise BundleError("a bundle needs at least one wheel or one model")
    members: dict[str, Path] = {}
    for w in wheels:
        members[f"app/{w.name}"] = w
    for m in models:
        members[f"models/{m.name}"] = m
    files = {}
    for name, src in members.items():
        check_member_path(name)
        files[name] = FileEntry(sha256=sha256_file(src), size=src.stat().st_size)
    manifest = Manifest(
        version=version,
        kind="full" if wheels else "models",
        hardware=hardware or ["any"],
        min_from=min_from,
        entry=entry,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        files=files,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        raw = manifest.model_dump_json(indent=2).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(raw))
        for name, src in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = src.stat().st_size, int(time.time()), 0o644
            with open(src, "rb") as f:
                tar.addfile(info, f)
    tmp.replace(out)
    return manifest


def read_manifest(bundle: Path) -> Manifest:
    """Read and validate the manifest (the first member) of a bundle."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST_NAME or not first.isfile():
                raise BundleError(f"{bundle.name}: first member must be {MANIFEST_NAME}")
            if first.size > 1 << 20:
                raise BundleError(f"{bundle.name}: manifest larger than 1 MiB")
            f = tar.extractfile(first)
            assert f is not None
            raw = f.read()
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{bundle.name}: not a readable bundle: {exc}") from None
    return parse_manifest(raw, bundle.name)


def parse_manifest(raw: bytes, source: str) -> Manifest:
    try:
        return Manifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise BundleError(f"{source}: invalid manifest: {exc}") from None


def extract_verified(bundle: Path, dest: Path, progress=None) -> Manifest:
    """Extract the files of `bundle` into `dest`, hashing each against the manifest.

    Only regular files listed in the manifest are written; anything else (links,
    devices, unlisted or missing files, a size or hash that differs) raises
    BundleError. The caller discards `dest` on error.
    """
    manifest = read_manifest(bundle)
    seen: set[str] = set()
    total = sum(e.size for e in manifest.files.values())
    done = 0
    with tarfile.open(bundle, "r:") as tar:
        for member in tar:
            if member.name == MANIFEST_NAME:
                continue
            entry = manifest.files.get(member.name)
            if entry is None:
                raise BundleError(f"bundle member {member.name!r} is not listed in the manifest")
            if not member.isfile():
                raise BundleError(f"bundle member {member.name!r} is not a regular file")
            if member.name in seen:
                raise BundleError(f"bundle member {member.name!r} appears twice")
            if member.size != entry.size:
                raise BundleError(f"{member.name}: size {member.size} differs from manifest {entry.size}")
            target = dest / check_member_path(member.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            src = tar.extractfile(member)
            assert src is not None
            with open(target, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress("stage", done, total)
            if h.hexdigest() != entry.sha256:
                raise BundleError(f"{member.name}: sha256 {h.hexdigest()} differs from manifest {entry.sha256}")
            seen.add(member.name)
    missing = set(manifest.files) - seen
    if missing:
        raise BundleError(f"bundle lacks files its manifest lists: {sorted(missing)}")
    return manifest
