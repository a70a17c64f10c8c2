"""Reduced-precision copies of the shipped models, for TensorRT 11 and beyond.

    python -m models.precision [--models-dir models] [--datasets ../shared/datasets] fp16 int8

TensorRT 11 builds strongly typed networks only: an engine runs in the types its
ONNX model holds, and the FP16 and INT8 builder flags (and the INT8 calibrator)
are gone. Reduced precision therefore has to be in the model itself:

- fp16: every weight and activation in half precision, inputs and outputs kept
  float32 (onnxruntime's float16 converter, `keep_io_types`), so the runtime's
  buffers and pre- and post-processing do not change;
- int8: explicit quantization, QuantizeLinear/DequantizeLinear pairs around each
  convolution with symmetric int8 scales (what TensorRT accepts), weights per
  output channel, activation ranges calibrated on real frames and crops
  (onnxruntime's `quantize_static`, QDQ format).

Each copy is written beside its model as `NAME.fp16.onnx` / `NAME.int8.onnx`
and recorded in the model's manifest entry under `variants` with its sha256,
so the recognizer checks it like the model itself. The calibration images are
never the validation sets the figures are measured on (us-crops-dev's
validation half, scenes-ca's hold-out half, crops-ar, scenes-eu, scenes-br):
scenes-ro (day and night dash-cam frames), the detector-training half of
scenes-ca and negatives for the detector; crops-br, crops-eu and
us-crops-dev's training half for the OCR. `benchmarks/precision_compare.py`
measures what each copy reads against the FP32 model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from drivers.camera.base import IMAGE_SUFFIXES
from models import DATASETS, MODELS_DIR

PRECISIONS = ("fp16", "int8")


def variant_file(file: str, precision: str) -> str:
    """plate_ocr.onnx -> plate_ocr.fp16.onnx"""
    stem = file[: -len(".onnx")] if file.endswith(".onnx") else file
    return f"{stem}.{precision}.onnx"


def _images(folder: Path, limit: int, keep=lambda name: True, step: int = 1) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and keep(p.name))
    return files[::step][:limit]


def calibration_files(name: str, datasets: Path) -> list[Path]:
    """The real images the int8 copy of model `name` is calibrated on (none from a validation set)."""
    from models import us_fold
    from models.detector.data import ca_half

    if name == "detector":
        files = _images(datasets / "scenes-ro", 160, step=3)
        files += _images(datasets / "scenes-ca", 100, lambda f: ca_half(f) == "train")
        files += _images(datasets / "negatives", 40, step=25)
    else:
        files = _images(datasets / "crops-br", 200, step=16)
        files += _images(datasets / "crops-eu", 100, step=16)
        files += _images(datasets / "us-crops-dev", 180, lambda f: us_fold(f) == "train")
    if not files:
        raise SystemExit(f"no calibration images for {name} under {datasets}")
    return files


def calibration_inputs(name: str, files: list[Path]) -> list[np.ndarray]:
    """Model inputs preprocessed exactly as the recognizer does it (one frame, or OCR batches of 16)."""
    import cv2

    from firmware.recognition import detect, ocr

    images = [im for im in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files) if im is not None]
    if name == "detector":
        return [detect.preprocess(im)[0] for im in images]
    x = ocr.preprocess(images)
    return [x[i: i + 16] for i in range(0, len(x), 16)]


def to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def to_int8(src: Path, dst: Path, inputs: list[np.ndarray], method: str = "percentile") -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(inputs)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {input_name: x}

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        # TensorRT takes symmetric int8 only (zero point 0)
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                       "CalibPercentile": 99.999})


def make(models_dir: Path, precisions: list[str], datasets: Path, method: str = "percentile",
         names: tuple[str, ...] = ("detector", "ocr")) -> dict:
    """Write the reduced-precision copies and record them in the manifest; returns the manifest."""
    from firmware.recognition.manifest import sha256_file

    mpath = models_dir / "manifest.json"
    data = json.loads(mpath.read_text())
    for name in names:
        entry = data["models"][name]
        src = models_dir / entry["file"]
        variants = entry.setdefault("variants", {})
        for precision in precisions:
            file = variant_file(entry["file"], precision)
            dst = models_dir / file
            print(f"{name}: {precision} -> {dst}", file=sys.stderr, flush=True)
            if precision == "fp16":
                to_fp16(src, dst)
                variants["fp16"] = {"file": file, "sha256": sha256_file(dst)}
            else:
                files = calibration_files(name, datasets)
                print(f"  calibrating on {len(files)} images ({method})", file=sys.stderr, flush=True)
                to_int8(src, dst, calibration_inputs(name, files), method)
                variants["int8"] = {"file": file, "sha256": sha256_file(dst), "calibration": method,
                                    "calibration_images": len(files)}
            variants[precision]["of"] = entry["sha256"]  # the FP32 model it was made from
    tmp = mpath.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, mpath)
    return data


def main() -> None:
    try:
        import onnx  # noqa: F401  (the converters need it; the appliance does not)
    except ImportError:
        raise SystemExit("models.precision needs the onnx package: pip install -e '.[train]'") from None
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("precisions", nargs="+", choices=PRECISIONS)
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--datasets", type=Path, default=DATASETS)
    ap.add_argument("--calibration", choices=("minmax", "percentile", "entropy"), default="percentile",
                    help="how int8 activation ranges are set from the calibration images")
    a = ap.parse_args()
    make(a.models_dir, a.precisions, a.datasets, a.calibration)


if __name__ == "__main__":
    main()
