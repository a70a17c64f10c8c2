"""Export a trained OCR checkpoint to ONNX (opset 17, dynamic batch) and check it.

    python -m models.ocr.export models/runs/ocr/best.pt models/plate_ocr.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from firmware.recognition.ocr import OCR_H, OCR_W
from models.ocr.net import ARCHS


def export(model: torch.nn.Module, out: Path) -> None:
    model = model.eval()
    dummy = torch.zeros(1, 1, OCR_H, OCR_W)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(model, dummy, str(tmp), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    import onnx

    m = onnx.load(str(tmp))
    onnx.checker.check_model(m)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((4, 1, OCR_H, OCR_W), dtype=np.float32)
    ref = model(torch.from_numpy(x)).detach().numpy()
    got = sess.run(None, {"image": x})[0]
    err = float(np.abs(ref - got).max())
    if err > 1e-3:
        raise RuntimeError(f"ONNX output differs from PyTorch by {err}")
    tmp.replace(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    model = ARCHS[ck.get("arch", "slots")]()
    model.load_state_dict(ck["model"])
    export(model, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
