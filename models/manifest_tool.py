"""Keep models/manifest.json true to the ONNX files beside it.

    python -m models.manifest_tool ocr plate_ocr.onnx --version 2026.11.28 --input 'N,1,64,128' \
        --extra '{"charset": "...", "slots": 8, "temperature": 1.2}'

Each entry: file, version, sha256, input shape and model-specific fields
(classes for the detector, charset/slots/temperature for the OCR). The
recognizer refuses a model whose sha256 differs from this file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from firmware.recognition.manifest import sha256_file
from models import MODELS_DIR


def update(name: str, file: str, version: str, input_shape: list, extra: dict | None = None,
           models_dir: Path = MODELS_DIR) -> dict:
    mpath = models_dir / "manifest.json"
    data = json.loads(mpath.read_text()) if mpath.exists() else {"models": {}}
    entry = data["models"].get(name, {})
    entry.update({"file": file, "version": version, "sha256": sha256_file(models_dir / file), "input": input_shape})
    entry.update(extra or {})
    data["models"][name] = entry
    tmp = mpath.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, mpath)
    return entry


def candidate(out: Path, files: dict[str, Path], models_dir: Path = MODELS_DIR) -> Path:
    """A models folder at `out` holding `models_dir`'s models with some swapped for candidate files
    (`files`: manifest name -> ONNX file), each entry's sha256 made true to its file and the
    reduced-precision variants dropped (they were made from the shipped files): what a benchmark
    reads a trained candidate through, beside the shipped models, without touching them."""
    data = json.loads((models_dir / "manifest.json").read_text())
    unknown = set(files) - set(data["models"])
    if unknown:
        raise ValueError(f"the manifest has no model named {', '.join(sorted(unknown))}")
    out.mkdir(parents=True, exist_ok=True)
    for name, entry in data["models"].items():
        entry.pop("variants", None)
        shutil.copyfile(files.get(name, models_dir / entry["file"]), out / entry["file"])
        entry["sha256"] = sha256_file(out / entry["file"])
        if name in files:  # what the benchmarks print as the model's version, and the size it reads
            entry["version"] = f"candidate {Path(files[name]).name}"
            entry["input"] = _declared_input(out / entry["file"])
    (out / "manifest.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return out


def _declared_input(onnx_path: Path) -> list[int | str]:
    """A candidate file's input shape as the manifest writes it ("N" for a dynamic batch): a candidate
    trained at another crop size is then refused, or read, by that size and not the shipped file's. Read
    through ONNX Runtime, which the benchmarks have anyway (`models.warmstart.onnx_input_shape` would
    pull in PyTorch)."""
    import onnxruntime as ort

    shape = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    return [d if isinstance(d, int) and d > 0 else "N" for d in shape]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("file")
    ap.add_argument("--version", required=True)
    ap.add_argument("--input", required=True, help="comma-separated shape, N for a dynamic batch")
    ap.add_argument("--extra", default="{}", help="JSON object of model-specific fields")
    a = ap.parse_args()
    shape = [d if d == "N" else int(d) for d in a.input.split(",")]
    print(json.dumps(update(a.name, a.file, a.version, shape, json.loads(a.extra)), indent=2))


if __name__ == "__main__":
    main()
