"""The plate OCR network: a small CNN and one attention-pooled classifier per slot.

Each of the SLOTS learned queries attends over the 8x16 feature map (with a
learned position embedding) and classifies one character or the pad symbol,
so reading order, including stacked characters, is learned rather than
assumed left-to-right. About 0.4 M parameters and 50 M multiply-adds for a
64x128 grey crop: a couple of milliseconds on one CPU core.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from firmware.recognition.ocr import CHARSET, OCR_H, OCR_W, SLOTS


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class PlateOCR(nn.Module):
    def __init__(self, width: int = 40, dim: int = 128, slots: int = SLOTS, classes: int = len(CHARSET) + 1) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            conv_bn(1, 32, 2),            # 32 x W/2
            conv_bn(32, width, 2),        # 16 x W/4
            Residual(width),
            conv_bn(width, 96, 2),        # 8 x W/8
            Residual(96),
            nn.Conv2d(96, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
        )
        fh, fw = OCR_H // 8, OCR_W // 8
        self.pos = nn.Parameter(torch.randn(1, dim, fh, fw) * 0.02)
        self.keys = nn.Conv2d(dim, 64, 1)
        self.queries = nn.Parameter(torch.randn(slots, 64) * 0.1)
        # Reading-order prior: slot s starts out looking at the s-th eighth of the width
        # (both rows, for stacked characters); content-based attention refines it.
        cols = torch.arange(fw).float().repeat(fh)                       # hw
        centres = (torch.arange(slots).float() + 0.5) * fw / slots      # slots
        self.bias = nn.Parameter(-((cols[None] - centres[:, None]) ** 2) / (2 * 1.5 ** 2))
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x) + self.pos                       # N, C, h, w
        k = self.keys(f).flatten(2)                            # N, 64, hw
        v = f.flatten(2).transpose(1, 2)                       # N, hw, C
        att = torch.softmax(torch.einsum("sd,ndp->nsp", self.queries, k) * 0.125 + self.bias, dim=-1)  # N, S, hw
        slots = torch.bmm(att, v)                              # N, S, C
        return self.head(slots)                                # N, S, classes (logits)


class ColumnAttention(nn.Module):
    """Self-attention across the CTC columns, added to them (residual). The convolutions see a
    character and its neighbours; whether a round glyph is an O or a 0 is a matter of its width
    against the plate's other digits (the font and its squeeze set both), which a column can only
    learn by looking along the whole plate. The output projection starts at zero, so a network
    warm-started from a plain ctc file begins exactly where that file is."""

    def __init__(self, ch: int, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.dim = heads, dim
        self.q, self.k, self.v = nn.Conv1d(ch, dim, 1), nn.Conv1d(ch, dim, 1), nn.Conv1d(ch, dim, 1)
        self.o = nn.Conv1d(dim, ch, 1)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        n, _, t = f.shape
        h, dh = self.heads, self.dim // self.heads
        q = self.q(f).reshape(n, h, dh, t)
        k = self.k(f).reshape(n, h, dh, t)
        v = self.v(f).reshape(n, h, dh, t)
        att = torch.softmax(torch.matmul(q.transpose(2, 3), k) * (1.0 / math.sqrt(dh)), dim=-1)  # n, h, t, t
        mixed = torch.matmul(v, att.transpose(2, 3)).reshape(n, self.dim, t)                      # n, dim, t
        return f + self.o(mixed)


class PlateCTC(nn.Module):
    """CTC variant: the same kind of backbone keeps one column per 4 input pixels
    (32 for the 128-wide crop) and emits a label (or blank) per column. Alignment-free,
    so a plate's length and position on the crop never push characters into the wrong
    slot (the slot model's typical error: a doubled or dropped character); stacked pairs
    come out top first. `widen` scales every channel count (1.5: the `ctc-l` experiment).
    `upsample=2` splits each column into two before the context layers (64 columns for
    the 128-wide crop, `ctc-2x`): a pair of small characters stacked in one column of
    the plate needs two output frames, one per character, and at 4 pixels a column a
    narrow pair gets fewer than two. `attend` puts a `ColumnAttention` between the
    backbone and the context layers (`ctc-g`)."""

    def __init__(self, classes: int = len(CHARSET) + 1, widen: float = 1.0, upsample: int = 1,
                 attend: bool = False) -> None:
        super().__init__()
        c1, c2, c3, c4 = (int(round(c * widen)) for c in (32, 48, 64, 128))
        self.backbone = nn.Sequential(
            conv_bn(1, c1, 2),            # 32 x W/2
            conv_bn(c1, c2, 2),           # 16 x W/4
            conv_bn(c2, c2),
            nn.Sequential(nn.Conv2d(c2, c3, 3, (2, 1), 1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(inplace=True)),  # 8 x W/4
            Residual(c3),
            nn.Sequential(nn.Conv2d(c3, c4, 3, (2, 1), 1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(inplace=True)),  # 4 x W/4
            nn.Sequential(nn.Conv2d(c4, c4, (OCR_H // 16, 1), bias=False), nn.BatchNorm2d(c4), nn.ReLU(inplace=True)),  # 1 x W/4
        )
        self.up: nn.Module = nn.Identity()
        if upsample > 1:  # starts as nearest-neighbour upsampling (each column copied), then learns
            self.up = nn.ConvTranspose1d(c4, c4, upsample, upsample, bias=False)
            with torch.no_grad():
                self.up.weight.zero_()
                self.up.weight[torch.arange(c4), torch.arange(c4)] = 1.0
        self.attend: nn.Module = ColumnAttention(c4) if attend else nn.Identity()
        self.context = nn.Sequential(
            nn.Conv1d(c4, c4, 3, 1, 1, bias=False), nn.BatchNorm1d(c4), nn.ReLU(inplace=True),
            nn.Conv1d(c4, c4, 3, 1, 1, bias=False), nn.BatchNorm1d(c4), nn.ReLU(inplace=True),
            nn.Dropout(0.1), nn.Conv1d(c4, classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.attend(self.up(self.backbone(x).squeeze(2)))  # N, C, T
        return self.context(f).transpose(1, 2)   # N, T, classes (logits; class PAD is the CTC blank)


ARCHS = {"slots": PlateOCR, "ctc": PlateCTC, "ctc-l": lambda: PlateCTC(widen=1.5),
         "ctc-2x": lambda: PlateCTC(upsample=2), "ctc-g": lambda: PlateCTC(attend=True)}


class Mixture(nn.Module):
    """Several OCR networks read as one: the mean of their per-column probabilities.

    Members trained apart (another seed, another order of the same data) err on
    different crops; their mean is right more often than either. The output is
    the mixture's log-probabilities, which are logits to the runtime (softmax
    gives the mixture back), so the firmware reads it as one model of the same
    shape. Written out (max, exp, sum, log) rather than as logsumexp, ops every
    ONNX runtime and TensorRT parser knows. Members must share the output frames
    (fine-tuned from one network, their CTC columns line up)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(m(x), -1) for m in self.members])  # M, N, T, classes
        top = logp.max(0, keepdim=True).values
        return (torch.log(torch.exp(logp - top).sum(0)) + top[0]) - math.log(len(self.members))
