"""The model manifest: which ONNX files the recognizer runs, and proof they are intact.

`models/manifest.json` names each model (detector, ocr) with its file, version,
sha256, input shape and classes or charset. The recognizer refuses a file whose
checksum differs (a half-copied update or a tampered model), and the sha256 is
the TensorRT engine cache key. An entry's `variants` name its reduced-precision
copies (fp16, int8) for TensorRT 11, each with its own sha256 (`variant`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ModelMissing(Exception):
    """A model named by the manifest is not on disk."""


class ModelCorrupt(Exception):
    """A model file or the manifest does not match what it claims to be."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    version: str
    sha256: str
    input: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: Path, sha256: str | None, what: str) -> None:
    """A file the manifest names is there and (with `sha256`) is the very file it names."""
    if not path.exists():
        raise ModelMissing(f"{path}: {what} named by the manifest is missing")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ModelCorrupt(f"{path}: sha256 differs from the manifest: the file is damaged or was replaced")


def load(models_dir: Path, verify: bool = True) -> dict[str, ModelSpec]:
    """Read and check `manifest.json` in `models_dir`."""
    mpath = models_dir / "manifest.json"
    if not mpath.exists():
        raise ModelMissing(f"{mpath}: no model manifest (train and export the models, see models/README.md)")
    try:
        raw = json.loads(mpath.read_text())
        entries = raw["models"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelCorrupt(f"{mpath}: unreadable manifest: {exc}") from None
    specs: dict[str, ModelSpec] = {}
    for name, e in entries.items():
        try:
            path = models_dir / e["file"]
            spec = ModelSpec(name, path, str(e["version"]), str(e["sha256"]), list(e["input"]),
                             {k: v for k, v in e.items() if k not in ("file", "version", "sha256", "input")})
        except (KeyError, TypeError) as exc:
            raise ModelCorrupt(f"{mpath}: entry {name!r} lacks {exc}") from None
        check_file(path, spec.sha256 if verify else None, f"model {name!r}")
        specs[name] = spec
    return specs


def variant(spec: ModelSpec, precision: str) -> ModelSpec | None:
    """The model's reduced-precision copy (`models/precision.py`: fp16, or int8 with Q/DQ nodes) as a
    spec of its own, checked against its sha256 like the model; None when the manifest lists none.
    TensorRT 11 builds engines in the ONNX model's own types, so reduced precision needs these copies."""
    entry = spec.extra.get("variants", {}).get(precision)
    if not entry:
        return None
    try:
        path, sha = spec.path.parent / entry["file"], str(entry["sha256"])
    except (KeyError, TypeError) as exc:
        raise ModelCorrupt(f"manifest: {spec.name}'s {precision} variant lacks {exc}") from None
    if entry.get("of", spec.sha256) != spec.sha256:
        raise ModelCorrupt(f"{path}: the {precision} copy was made from another {spec.name} model than "
                           f"{spec.path.name}: run python -m models.precision {precision} again")
    check_file(path, sha, f"{spec.name}'s {precision} copy")
    return ModelSpec(spec.name, path, f"{spec.version}-{precision}", sha, spec.input,
                     {k: v for k, v in spec.extra.items() if k != "variants"})
