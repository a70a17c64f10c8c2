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
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks import configured  # noqa: E402
from eval_all import ca_holdout_folder, us_val_folder  # noqa: E402
from firmware.config import RecognitionConfig  # noqa: E402
from firmware.evaluation import load_labels  # noqa: E402
from firmware.imageio import read_image  # noqa: E402
from firmware.recognition import detect, ocr  # noqa: E402
from firmware.recognition.manifest import ModelSpec, variant  # noqa: E402
from firmware.recognition.manifest import load as load_manifest  # noqa: E402
from firmware.recognition.onnxrt import OnnxRuntime  # noqa: E402
from models import DATASETS, MODELS_DIR  # noqa: E402
from tensorrt_compare import diff, timeit  # noqa: E402


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


def outputs(specs: dict[str, dict[str, ModelSpec]], crops: list[np.ndarray], frames: list[np.ndarray],
            iters: int) -> dict:
    """Raw outputs of each precision against FP32's, and their speed on one thread, side by side
    (the firmware's ONNX Runtime sessions; tensorrt_compare's timing and differences)."""
    rt = OnnxRuntime(RecognitionConfig(threads=1))
    spec = specs["fp32"]["ocr"]
    t, dec = float(spec.extra.get("temperature", 1.0)), ocr.DECODERS[spec.extra.get("decoder", "slots")]
    x = ocr.preprocess(crops)
    xs = [detect.preprocess(f)[0] for f in frames]
    sess = {p: (rt.load(s["ocr"]), rt.load(s["detector"])) for p, s in specs.items()}
    ref_ocr = sess["fp32"][0].run(x)
    ref_heat = [sess["fp32"][1].run(xi)[:1] for xi in xs]
    ref_reads = [dec(q).plate for q in ocr.softmax(ref_ocr[0], t)]
    out: dict = {}
    for p, (o, d) in sess.items():
        got = o.run(x)
        reads = [dec(q).plate for q in ocr.softmax(got[0], t)]
        out[p] = {
            "ocr_max_abs_logit_diff": round(diff(got, ref_ocr)[0], 4),
            "ocr_reads_equal_to_fp32": f"{sum(a == b for a, b in zip(reads, ref_reads))}/{len(reads)}",
            "detector_max_abs_heat_diff": round(max(diff(d.run(xi)[:1], r)[0] for xi, r in zip(xs, ref_heat)), 4),
        }
    for p, (o, d) in sess.items():
        out[p]["ocr_ms_per_batch_of_32"] = round(timeit(lambda: o.run(x[:32]), iters) * 1e3, 2)
        out[p]["detector_ms_per_frame"] = round(timeit(lambda: d.run(xs[0]), iters) * 1e3, 2)
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
    report: dict = {"sets": {}}
    for p, d in dirs.items():
        print(f"{p}: polewatch eval over {len(sets)} sets", file=sys.stderr, flush=True)
        r = subprocess.run([*configured.polewatch_command(), "eval", *map(str, sets)], capture_output=True,
                           text=True, check=True, env=os.environ | {"POLEWATCH_MODELS_DIR": str(d)})
        for line in r.stdout.splitlines():
            s = json.loads(line)
            row = {k: s[k] for k in ("exact_top1", "detected", "false_detections_per_image") if k in s}
            report["sets"].setdefault(s["set"], {})[p] = row
    _, labels = load_labels(sets[0])
    crops = [read_image(sets[0] / f) for f in list(labels)[:64]]
    frames = [read_image(f) for f in sorted(sets[2].glob("*.jpg"))[:20]]
    report["outputs"] = outputs({p: load_manifest(d) for p, d in dirs.items()}, crops, frames, a.iters)
    text = json.dumps(report, indent=2)
    if a.out:
        a.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
