"""Unpack a wheel into a release slot's site/ directory without pip.

A slot is a plain directory put on PYTHONPATH by its launcher, so installing a
wheel is unzipping it (the wheel spec's "spread" step for purelib/platlib) and
checking every file against the wheel's RECORD. Doing it ourselves keeps the
install step fast, free of network access and of pip's own state.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath

from ota.errors import BundleError


def _record_hashes(zf: zipfile.ZipFile, dist_info: str) -> dict[str, str]:
    raw = zf.read(f"{dist_info}/RECORD").decode()
    out = {}
    for row in csv.reader(io.StringIO(raw)):
        if len(row) >= 2 and row[1]:
            out[row[0]] = row[1]
    return out


def install_wheel(wheel: Path, site: Path) -> list[str]:
    """Unpack `wheel` into `site`; return the top-level names it installed."""
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{wheel.name}: not a wheel: {exc}") from None
    with zf:
        names = zf.namelist()
        dist_infos = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        if len(dist_infos) != 1:
            raise BundleError(f"{wheel.name}: expected one .dist-info directory, found {sorted(dist_infos)}")
        dist_info = dist_infos.pop()
        try:
            record = _record_hashes(zf, dist_info)
        except KeyError:
            raise BundleError(f"{wheel.name}: no RECORD") from None
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        tops: set[str] = set()
        for info in zf.infolist():
            name = info.filename
            if name.endswith("/"):
                continue
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts:
                raise BundleError(f"{wheel.name}: unsafe path {name!r}")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleError(f"{wheel.name}: symlink {name!r} refused")
            rel = p
            if p.parts[0] == data_dir:
                if len(p.parts) < 3 or p.parts[1] not in ("purelib", "platlib"):
                    continue  # scripts/headers/data: the slot launcher replaces console scripts
                rel = PurePosixPath(*p.parts[2:])
            data = zf.read(info)
            if name != f"{dist_info}/RECORD":
                expected = record.get(name)
                if expected is None:
                    raise BundleError(f"{wheel.name}: {name} not in RECORD")
                algo, _, digest = expected.partition("=")
                if algo != "sha256":
                    raise BundleError(f"{wheel.name}: {name}: RECORD hash {algo} not sha256")
                got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                if got != digest:
                    raise BundleError(f"{wheel.name}: {name} differs from its RECORD hash")
            target = site / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o111:
                target.chmod(0o755)
            tops.add(rel.parts[0])
        return sorted(tops)
