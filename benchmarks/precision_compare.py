"""What the reduced-precision copies read, side by side with the FP32 models (ONNX Runtime, CPU).

    python benchmarks/precision_compare.py [--models-dir models] [--precisions fp32,fp16,int8]
                                           [--datasets ../shared/datasets] [--out results.json]

TensorRT 11 runs the fp16 and int8 copies that `models/precision.py` makes
(manifest `variants`); ONNX Runtime runs the same files on the CPU, so what a
copy costs in reads is measured here, without a GPU: for each precision, a
models folder whose manifest names the copies, `polewatch eval` over
us-crops-dev's validation half, crops-ar, scenes-ca's hold-out half,
scenes-eu and scenes-br (none of them calibration images), and beside it the
raw outputs against FP32 (largest logit and heatmap difference, OCR reads that
agree with FP32's) and ONNX Runtime's median time per OCR batch and per
detector frame on one thread. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_all import ca_holdout_folder, us_val_folder  # noqa: E402
from firmware.evaluation import load_labels  # noqa: E402
from firmware.imageio import read_image  # noqa: E402
from firmware.recognition import detect, ocr  # noqa: E402
from firmware.recognition.manifest import load as load_manifest  # noqa: E402
from firmware.recognition.manifest import variant  # noqa: E402
from models import DATASETS, MODELS_DIR  # noqa: E402


def promoted(models_dir: Path, precision: str, dst: Path) -> Path:
    """A models folder whose manifest names each model's `precision` copy as the model itself."""
    dst.mkdir(parents=True, exist_ok=True)
    data = json.loads((models_dir / "manifest.json").read_text())
    for name, spec in load_manifest(models_dir).items():
        entry = data["models"][name]
        copy = spec if precision == "fp32" else variant(spec, precision)
        if copy is None:
            raise SystemExit(f"{models_dir}: {name} has no {precision} copy (python -m models.precision {precision})")
        entry.update(file=copy.path.name, sha256=copy.sha256, version=copy.version)
        entry.pop("variants", None)
        link = dst / copy.path.name
        if not link.exists():
            os.symlink(copy.path.resolve(), link)
    (dst / "manifest.json").write_text(json.dumps(data, indent=2))
    return dst


def session(path: Path):
    import onnxruntime as ort

    so = ort.InferenceSession
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return so(str(path), opts, providers=["CPUExecutionProvider"])


def median_ms(fn, iters: int) -> float:
    fn()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return round(float(np.median(ts)) * 1e3, 2)


def outputs(models: dict[str, dict[str, Path]], crops: list[np.ndarray], frames: list[np.ndarray], temperature: float,
            decoder, iters: int) -> dict:
    """Raw outputs of each precision against FP32's, and their speed on one thread, side by side."""
    x = ocr.preprocess(crops)
    xs = [detect.preprocess(f)[0] for f in frames]
    sess = {p: (session(f["ocr"]), session(f["detector"])) for p, f in models.items()}
    ref_ocr = sess["fp32"][0].run(None, {"image": x})[0]
    ref_reads = [decoder(p).plate for p in ocr.softmax(ref_ocr, temperature)]
    ref_det = [sess["fp32"][1].run(None, {"image": xi}) for xi in xs]
    out: dict = {}
    for p, (o, d) in sess.items():
        logits = o.run(None, {"image": x})[0]
        reads = [decoder(q).plate for q in ocr.softmax(logits, temperature)]
        heat = [d.run(None, {"image": xi}) for xi in xs]
        out[p] = {
            "ocr_max_abs_logit_diff": round(float(np.abs(logits - ref_ocr).max()), 4),
            "ocr_reads_equal_to_fp32": f"{sum(a == b for a, b in zip(reads, ref_reads))}/{len(reads)}",
            "detector_max_abs_heat_diff": round(max(float(np.abs(h[0] - r[0]).max()) for h, r in zip(heat, ref_det)), 4),
        }
    for p, (o, d) in sess.items():
        out[p]["ocr_ms_per_batch_of_32"] = median_ms(lambda: o.run(None, {"image": x[:32]}), iters)
        out[p]["detector_ms_per_frame"] = median_ms(lambda: d.run(None, {"image": xs[0]}), iters)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--datasets", type=Path, default=DATASETS)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    datasets = a.datasets.resolve()
    precisions = a.precisions.split(",")
    if "fp32" not in precisions:
        precisions.insert(0, "fp32")
    tmp = Path(tempfile.mkdtemp(prefix="pw-precision-"))
    sets = [us_val_folder(datasets / "us-crops-dev", tmp / "us-crops-dev-val"), datasets / "crops-ar",
            ca_holdout_folder(datasets / "scenes-ca", tmp / "scenes-ca-holdout"), datasets / "scenes-eu",
            datasets / "scenes-br"]
    dirs = {p: promoted(a.models_dir, p, tmp / p) for p in precisions}
    exe = shutil.which("polewatch") or str(Path(sys.executable).parent / "polewatch")
    report: dict = {"sets": {}}
    for p, d in dirs.items():
        print(f"{p}: polewatch eval over {len(sets)} sets", file=sys.stderr, flush=True)
        r = subprocess.run([exe, "eval", *map(str, sets)], capture_output=True, text=True, check=True,
                           env=os.environ | {"POLEWATCH_MODELS_DIR": str(d)})
        for line in r.stdout.splitlines():
            s = json.loads(line)
            row = {k: s[k] for k in ("exact_top1", "detected", "false_detections_per_image") if k in s}
            report["sets"].setdefault(s["set"], {})[p] = row
    spec = load_manifest(a.models_dir)["ocr"]
    _, labels = load_labels(sets[0])
    crops = [read_image(sets[0] / f) for f in list(labels)[:64]]
    frames = [read_image(f) for f in sorted(sets[2].glob("*.jpg"))[:20]]
    files = {p: {n: d / json.loads((d / "manifest.json").read_text())["models"][n]["file"] for n in ("ocr", "detector")}
             for p, d in dirs.items()}
    report["outputs"] = outputs(files, crops, frames, float(spec.extra.get("temperature", 1.0)),
                                ocr.DECODERS[spec.extra.get("decoder", "slots")], a.iters)
    text = json.dumps(report, indent=2)
    if a.out:
        a.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
