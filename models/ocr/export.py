"""Export a trained OCR checkpoint to ONNX (opset 17, dynamic batch) and check it.

Given several checkpoints of one run, exports their weight average (the
snapshots of the last part of a cosine schedule lie in one basin; their mean
generalises a little better than any one of them).

    python -m models.ocr.export models/runs/ocr/best.pt models/plate_ocr.onnx
    python -m models.ocr.export models/runs/ocr/step_1[46]000.pt models/plate_ocr.onnx

`--join MEMBER` (repeatable) makes the file a mixture (`net.Mixture`): the
checkpoints given first are one member, each MEMBER another: a shipped ONNX
OCR file, or comma-separated checkpoints to average. The runtime reads it as
one model of the same input and output.

    python -m models.ocr.export models/runs/ft-B2/step_{3,4,5}000.pt models/plate_ocr.onnx \
        --join old/plate_ocr.onnx

`--soup MEMBER` (repeatable) instead averages the weights of the members, each
member counting once (a "model soup": runs fine-tuned from one network stay in
one basin, so their mean is one network again, read at one network's cost):

    python -m models.ocr.export models/runs/ft-C/step_{3,4,5}000.pt models/plate_ocr.onnx \
        --soup old/plate_ocr.onnx
    python -m models.ocr.export models/plate_ocr.onnx new.onnx --soup init/plate_ocr.onnx  # back toward the init

A ctc file souped into a ctc-g run counts as that network with its attention off (`member`): OCR
0.7.0 is run GB1 (ctc-g) souped with 0.6.0 (ctc), the attention at half its trained strength:

    python -m models.ocr.export models/runs/GB1/step_0{3,4,5}000.pt models/plate_ocr.onnx \
        --soup old/plate_ocr.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from firmware.recognition.ocr import OCR_H, OCR_W
from models.ocr.net import ARCHS, Mixture
from models.warmstart import load_shipped_ocr, shipped_arch


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


def from_checkpoints(paths: list[Path]) -> tuple[torch.nn.Module, str]:
    """The network of one run's checkpoints, weights averaged, and its architecture's name."""
    cks = [torch.load(c, map_location="cpu", weights_only=False) for c in paths]
    archs = {ck.get("arch", "slots") for ck in cks}
    if len(archs) != 1:
        raise SystemExit(f"checkpoints of different architectures: {sorted(archs)}")
    arch = archs.pop()
    model = ARCHS[arch]()
    model.load_state_dict(average([ck["model"] for ck in cks]))
    return model, arch


def from_onnx(path: Path, arch: str) -> torch.nn.Module:
    """A shipped OCR file as a network again (batch norm folded into its convolutions)."""
    model = ARCHS[arch]()
    load_shipped_ocr(model, path)
    return model


def member(spec: str, arch: str, like: torch.nn.Module | None = None) -> torch.nn.Module:
    """One member named on the command line: a shipped ONNX OCR file, or comma-separated checkpoints to average,
    as a network of `arch`. With `like` (the first member of a soup) a ctc file joins a ctc-g soup as that network
    with its attention off: `like`'s attention projections and a zero output projection, which halves the
    attention's part in a soup of two (the convolutions, fine-tuned from one network, average as any soup's)."""
    if spec.endswith(".onnx"):
        other = shipped_arch(Path(spec))
        if other == "ctc" and arch == "ctc-g" and like is not None:
            model = from_onnx(Path(spec), "ctc-g")  # its attention starts off: the output projection is zero
            sd, ref = model.state_dict(), like.state_dict()
            for k in sd:
                if k.startswith("attend.") and not k.startswith("attend.o."):
                    sd[k] = ref[k].clone()
            model.load_state_dict(sd)
            return model
        if other != arch:
            raise SystemExit(f"{spec}: architecture {other}, the first member's is {arch}")
        return from_onnx(Path(spec), arch)
    model, other = from_checkpoints([Path(p) for p in spec.split(",")])
    if other != arch:
        raise SystemExit(f"{spec}: architecture {other}, the first member's is {arch}")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, nargs="+",
                    help="one checkpoint, or several to average, or one shipped ONNX file (with --soup or --join)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--join", action="append", default=[], metavar="MEMBER",
                    help="another member of a mixture: an ONNX OCR file or comma-separated checkpoints")
    ap.add_argument("--soup", action="append", default=[], metavar="MEMBER",
                    help="another member whose weights are averaged in (each member counts once)")
    a = ap.parse_args()
    if a.join and a.soup:
        raise SystemExit("--join and --soup: one file is either a mixture or a soup")
    if any(c.suffix == ".onnx" for c in a.checkpoint):  # a shipped file, to soup or join with others
        if len(a.checkpoint) != 1 or not (a.soup or a.join):
            raise SystemExit("a shipped ONNX file comes alone, with --soup or --join (it is exported already)")
        arch = shipped_arch(a.checkpoint[0])
        model = from_onnx(a.checkpoint[0], arch)
    else:
        model, arch = from_checkpoints(a.checkpoint)
    if a.soup:
        model.load_state_dict(average([model.state_dict()] + [member(s, arch, model).state_dict() for s in a.soup]))
    members = [model] + [member(s, arch) for s in a.join]
    export(Mixture(members) if len(members) > 1 else model, a.out)
    print(f"wrote {a.out} from {len(a.checkpoint)} checkpoint(s)"
          + (f", {len(members)} members" if a.join else "") + (f", souped with {len(a.soup)}" if a.soup else ""))


if __name__ == "__main__":
    main()
