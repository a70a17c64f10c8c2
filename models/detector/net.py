"""PlateNet: a small anchor-free (CenterNet-style) plate detector, trained from scratch.

Plain 3x3 convolutions, batch norm, ReLU, nearest upsampling and additions only, so that
ONNX Runtime and TensorRT 8.6/10 both run it without plugins. A 5-level backbone (stride 32
for context) with a light top-down path back to stride 4, where small plates still cover a
few cells. Outputs follow firmware/recognition/detect.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cbr(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class Residual(nn.Module):
    """Two 3x3 convolutions with a skip: depth without the vanishing gradients."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = cbr(c, c)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


class PlateNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (16, 32, 48, 64, 96), neck: int = 32) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        self.stem = cbr(1, w1, 3, 2)  # /2
        self.s2 = nn.Sequential(cbr(w1, w2, 3, 2), cbr(w2, w2))  # /4
        self.s3 = nn.Sequential(cbr(w2, w3, 3, 2), Residual(w3))  # /8
        self.s4 = nn.Sequential(cbr(w3, w4, 3, 2), Residual(w4))  # /16
        self.s5 = nn.Sequential(cbr(w4, w5, 3, 2), Residual(w5))  # /32
        self.l2, self.l3 = cbr(w2, neck, 1), cbr(w3, neck, 1)
        self.l4, self.l5 = cbr(w4, neck, 1), cbr(w5, neck, 1)
        self.m4, self.m3, self.m2 = cbr(neck, neck), cbr(neck, neck), cbr(neck, neck)
        self.head = cbr(neck, neck)
        self.heat = nn.Conv2d(neck, 1, 1)
        self.box = nn.Conv2d(neck, 4, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1: stable focal loss at the start
        nn.init.zeros_(self.box.weight)
        with torch.no_grad():
            self.box.bias.copy_(torch.tensor([0.5, 0.5, 2.0, 0.7]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grey [N,1,H,W] in [0,1] -> (heatmap logits [N,1,H/4,W/4], box [N,4,H/4,W/4])."""
        x = (x - 0.45) * 4.0
        c2 = self.s2(self.stem(x))
        c3 = self.s3(c2)
        c4 = self.s4(c3)
        c5 = self.s5(c4)
        p4 = self.m4(self.l4(c4) + F.interpolate(self.l5(c5), scale_factor=2.0, mode="nearest"))
        p3 = self.m3(self.l3(c3) + F.interpolate(p4, scale_factor=2.0, mode="nearest"))
        p2 = self.m2(self.l2(c2) + F.interpolate(p3, scale_factor=2.0, mode="nearest"))
        h = self.head(p2)
        return self.heat(h), self.box(h)


class ExportWrapper(nn.Module):
    """What ships: sigmoid applied inside the graph so the runtime gets probabilities."""

    def __init__(self, net: PlateNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, box = self.net(image)
        return torch.sigmoid(logits), box


def count_macs(net: nn.Module, size: tuple[int, int]) -> int:
    """Multiply-accumulates of the convolutions for one [1,1,H,W] input (FLOPs ~= 2 x MACs)."""
    total = 0

    def hook(m: nn.Conv2d, _inp, out) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += int(out.numel()) * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, *size))
    net.train(was_training)
    for h in hs:
        h.remove()
    return total
