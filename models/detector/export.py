"""Export a detector checkpoint to ONNX (opset 17, static 1x1x384x640) and check it.

    .venv/bin/python -m models.detector.export [--checkpoint models/runs/detector/best.pt]

Batch norm is folded into the convolutions; the graph holds only Conv, Relu, Add, Mul, Sub,
Resize (nearest) and Sigmoid, which ONNX Runtime and TensorRT 8.6/10 parse without plugins.
The export is checked against PyTorch on a random input before it replaces the shipped file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import torch

from firmware.recognition.detect import DETECTOR_INPUT
from models.detector.net import ExportWrapper, PlateNet, count_macs

ALLOWED_OPS = {"Conv", "Relu", "Add", "Mul", "Sub", "Resize", "Sigmoid", "Constant", "Identity"}


def export(checkpoint: Path, out: Path, box_gain: tuple[float, float] = (1.0, 1.0)) -> dict:
    """`box_gain` scales every box's width and height (models.detector.framing: keep the OCR's framing)."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    net = PlateNet()
    net.load_state_dict(ck["model"])
    net.eval()
    with torch.no_grad():  # the size head predicts log sizes: a gain is a bias
        net.box.bias[2] += float(np.log(box_gain[0]))
        net.box.bias[3] += float(np.log(box_gain[1]))
    wrapper = ExportWrapper(net).eval()
    x = torch.rand(1, 1, *DETECTOR_INPUT)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(wrapper, (x,), str(tmp), input_names=["image"], output_names=["heatmap", "box"],
                      opset_version=17, do_constant_folding=True, dynamo=False)
    model = onnx.load(str(tmp))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    if not ops <= ALLOWED_OPS:
        raise SystemExit(f"unexpected ONNX ops {sorted(ops - ALLOWED_OPS)}")
    model.producer_name = "polewatch"
    model.doc_string = f"Polewatch plate detector, step {ck['step']}, see models/cards/plate_detector.md"
    onnx.save(model, str(tmp))

    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    heat, box = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        th, tb = wrapper(x)
    diff = max(float(np.abs(heat - th.numpy()).max()), float(np.abs(box - tb.numpy()).max()))
    if diff > 1e-3:
        raise SystemExit(f"ONNX Runtime and PyTorch disagree by {diff}")
    tmp.replace(out)
    data = out.read_bytes()
    return {
        "file": str(out),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "step": ck["step"],
        "train_args": {k: ck.get("args", {}).get(k) for k in ("steps", "batch", "crop", "lr", "warmup", "threads")},
        "best_score": ck["best"],
        "ops": sorted(ops),
        "inputs": {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input},
        "outputs": {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output},
        "gmacs": round(count_macs(net, DETECTOR_INPUT) / 1e9, 3),
        "params": sum(p.numel() for p in net.parameters()),
        "max_abs_diff_vs_torch": diff,
        "box_gain": [round(float(g), 4) for g in box_gain],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("models/runs/detector/best.pt"))
    ap.add_argument("--out", type=Path, default=Path("models/plate_detector.onnx"))
    ap.add_argument("--match-framing", type=Path, default=None, metavar="ONNX",
                    help="scale the boxes to the framing of this detector (the one the shipped OCR trained behind)")
    args = ap.parse_args()
    if args.match_framing and args.match_framing.resolve() == args.out.resolve():
        raise SystemExit(f"--match-framing {args.match_framing} is the file the export writes: copy the old detector first")
    info = export(args.checkpoint, args.out)
    if args.match_framing:
        from models.detector.framing import framing_gain, training_scenes

        scenes = training_scenes()
        gain = framing_gain(args.out, args.match_framing, scenes)
        info = export(args.checkpoint, args.out, (gain["width_gain"], gain["height_gain"]))
        info["framing"] = {"before": gain, "after": framing_gain(args.out, args.match_framing, scenes),
                           "reference": str(args.match_framing)}
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
