"""Warm-start a PyTorch network from the ONNX model it shipped as.

The checkpoints of earlier sessions live in git-ignored run folders and may be
gone; the committed ONNX files are not. Export folds each batch norm into the
convolution before it, so the ONNX initializers are one (weight, bias) pair per
folded convolution, numbered in the order the forward pass calls them, plus the
named weights of convolutions without batch norm (the heads). Loading puts the
folded weights into each convolution, makes its batch norm the identity plus
the folded bias, and checks that the network now gives the ONNX model's
outputs. Training must then keep batch norm frozen (`train_mode`): in training
mode it would normalise by batch statistics the folded weights never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_CONV = (nn.Conv1d, nn.Conv2d)


def _call_order(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """Convolutions and batch norms in the order one forward pass first calls them."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod) if mod not in order else None)
             for m in model.modules() if isinstance(m, _CONV + _BN)]
    model.eval()
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    return order


def onnx_input_shape(onnx_path: Path) -> list[int | str]:
    """The first input's declared shape (a name for dynamic axes): a fully convolutional
    network fine-tuned at a new input width still checks against the width it shipped at."""
    import onnx

    dims = onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]


def shipped_arch(onnx_path: Path) -> str:
    """The `models.ocr.net.ARCHS` name of a shipped OCR file's network: `ctc-g` when it carries the
    column attention's weights (named, as convolutions without batch norm are), else `ctc`."""
    import onnx

    names = [i.name for i in onnx.load(str(onnx_path)).graph.initializer]
    return "ctc-g" if any(n.startswith("attend.") or ".attend." in n for n in names) else "ctc"


def load_shipped_ocr(model: nn.Module, onnx_path: Path) -> None:
    """`load_folded_onnx` for an OCR file (one network or a mixture), checked on an example of the
    file's own input shape: it may be narrower than `OCR_W`, the network being fully convolutional."""
    load_folded_onnx(model, onnx_path, torch.rand(2, *onnx_input_shape(onnx_path)[1:]))


def load_folded_onnx(model: nn.Module, onnx_path: Path, example: torch.Tensor,
                     outputs: Callable[[nn.Module, torch.Tensor], list[np.ndarray]] | None = None,
                     tolerance: float = 1e-3) -> None:
    """Load `onnx_path`'s weights into `model` (same architecture) and check the outputs match."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    m = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    folded = sorted((k for k in inits if k.startswith("onnx::Conv_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    order = _call_order(model, example)
    pairs = [(c, b) for c, b in zip(order, order[1:]) if isinstance(c, _CONV) and isinstance(b, _BN)]
    if len(folded) != 2 * len(pairs):
        raise ValueError(f"{onnx_path}: {len(folded)} folded tensors for {len(pairs)} convolution + batch norm "
                         "pairs; not this architecture")
    names = {id(mod): name for name, mod in model.named_modules()}
    sd = model.state_dict()
    for (conv, bn), i in zip(pairs, range(0, len(folded), 2)):
        w, b = inits[folded[i]], inits[folded[i + 1]]
        c, n = names[id(conv)], names[id(bn)]
        if tuple(sd[c + ".weight"].shape) != w.shape:
            raise ValueError(f"{onnx_path}: {folded[i]} has shape {w.shape}, {c} needs {tuple(sd[c + '.weight'].shape)}")
        sd[c + ".weight"] = torch.from_numpy(w.copy())
        sd[n + ".weight"] = torch.ones(len(b))
        sd[n + ".bias"] = torch.from_numpy(b.copy())
        sd[n + ".running_mean"] = torch.zeros(len(b))
        sd[n + ".running_var"] = torch.full((len(b),), 1.0 - bn.eps)
    for name, arr in inits.items():
        for key in (name, name.removeprefix("net.")):  # export wrappers prefix the network's names
            if not name.startswith("onnx::") and key in sd:
                sd[key] = torch.from_numpy(arr.copy())
    model.load_state_dict(sd)
    model.eval()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: example.numpy()})
    with torch.no_grad():
        got = outputs(model, example) if outputs else [model(example).numpy()]
    err = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    if err > tolerance:
        raise ValueError(f"{onnx_path}: warm-started network differs from the ONNX model by {err}")


def train_mode(model: nn.Module, frozen_bn: bool) -> None:
    """Training mode; with `frozen_bn` (a warm-started model) batch norm stays in
    evaluation mode, because its folded statistics must stay put."""
    model.train()
    if frozen_bn:
        for mod in model.modules():
            if isinstance(mod, _BN):
                mod.eval()
