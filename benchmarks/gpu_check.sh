#!/usr/bin/env bash
# The one prepared check to run when a GPU machine is lent (docs/recognition.md, "TensorRT"):
# record the machine (GPU, driver, TensorRT, CUDA bindings, ONNX Runtime providers), then build
# the TensorRT engines from models/ and compare them with ONNX Runtime in fp16, fp32 and int8
# (benchmarks/tensorrt_compare.py). Results land in $OUT (default /tmp/gpu-check).
#   DATA=DIR   real inputs for the comparison: DIR/crops (labels.csv) and DIR/frames
#   .whl/      wheels to install first (scripts/device-wheels.sh: pydantic, which the image lacks)
set -u
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
# shellcheck source=scripts/device-wheels.sh
. scripts/device-wheels.sh
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv; $PY -V; } 2>&1 | tee "$OUT/env.txt"
install_device_wheels
$PY - <<'PYEOF' 2>&1 | tee -a "$OUT/env.txt"
import importlib
for m in ("tensorrt", "cuda.bindings.runtime", "onnxruntime", "pydantic", "cv2", "numpy"):
    try:
        print(m, getattr(importlib.import_module(m), "__version__", "present"))
    except Exception as exc:
        print(m, "ABSENT:", exc)
import onnxruntime
print("onnxruntime providers", onnxruntime.get_available_providers())
PYEOF
{ echo "libnvinfer in ldconfig:"; ldconfig -p | grep -i -E "nvinfer|nvonnxparser";
  echo "libnvinfer files:"; timeout 30 find /usr /opt /lib -name 'libnvinfer*' 2>/dev/null | head; } | tee -a "$OUT/env.txt"
rc=0
for p in fp16 fp32 int8; do
    $PY benchmarks/tensorrt_compare.py --precision "$p" ${DATA:+--data "$DATA"} > "$OUT/trt_$p.json" 2> "$OUT/trt_$p.err"
    r=$?; echo "tensorrt_compare $p: exit $r"; tail -n 5 "$OUT/trt_$p.err"; cat "$OUT/trt_$p.json"
    [ $r -ne 0 ] && rc=$r
done
exit $rc
