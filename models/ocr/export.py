"""Export a trained OCR checkpoint to ONNX (opset 17, dynamic batch) and check it.

Given several checkpoints of one run, exports their weight average (the
snapshots of the last part of a cosine schedule lie in one basin; their mean
generalises a little better than any one of them).

    python -m models.ocr.export models/runs/ocr/best.pt models/plate_ocr.onnx
    python -m models.ocr.export models/runs/ocr/step_1[46]000.pt models/plate_ocr.onnx
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


def average(states: list[dict]) -> dict:
    """The element-wise mean of several state dicts of one architecture (integer buffers from the last)."""
    out = {}
    for k, v in states[-1].items():
        out[k] = torch.stack([s[k].float() for s in states]).mean(0) if v.is_floating_point() else v
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path, nargs="+", help="one checkpoint, or several to average")
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    cks = [torch.load(c, map_location="cpu", weights_only=False) for c in a.checkpoint]
    archs = {ck.get("arch", "slots") for ck in cks}
    if len(archs) != 1:
        raise SystemExit(f"checkpoints of different architectures: {sorted(archs)}")
    model = ARCHS[archs.pop()]()
    model.load_state_dict(average([ck["model"] for ck in cks]))
    export(model, a.out)
    print(f"wrote {a.out} from {len(cks)} checkpoint(s)")


if __name__ == "__main__":
    main()
